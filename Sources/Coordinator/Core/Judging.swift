import AgentFlowCore
import Foundation
import Store

/// A judge attempt's subject: the attempt that passed its own checks and what it produced,
/// held until the verdict.
struct Judging {
    var judged: AttemptID
    /// The judged attempt's model, tokens and run time (its observation for the estimates waits
    /// for the verdict).
    var model: String
    var tokens: Int
    var seconds: Double
    var output: String?
    var outputs: OutputBundle?
}

/// Judges (`judge: {model, rubric, pass}`, DESIGN.md §3): when an attempt of a judged subtask
/// passes its own checks, the subtask is not done yet. A judge attempt — reserved and charged
/// like any attempt, at the judge model's prices, its tokens in the ledger under role `judge` —
/// goes to a worker of the judge model with the result's files as its workspace; the subtask
/// succeeds with the judged result only on a passing verdict. A failing verdict, a garbage
/// reply (the worker fails it), a lost judge or a budget that cannot pay for one leave the
/// subtask to be tried again, never passed. Judge attempts do not count against `maxAttempts`.
extension CoordinatorCore {
    /// Token cap of one judge attempt (the result, the rubric and two short verdicts fit).
    static let judgeTokenCap = 4096
    /// A judge attempt's detail until it reports: how a restarted coordinator recognises one.
    static let judgeDetailPrefix = "judge of #"

    static func isJudgeAttempt(_ record: AttemptRecord) -> Bool {
        record.detail.hasPrefix(judgeDetailPrefix)
    }

    mutating func startJudge(_ job: JobRun, _ a: LiveAttempt, _ judge: JudgeSpec, record rec: AttemptRecord, charged: Amount,
                             outcome: AttemptOutcome, tokens: Int, seconds: Double, now: WallInstant) {
        let sid = a.record.id.subtask
        guard let m = job.models.firstIndex(where: { $0.name == judge.model }), !job.isTerminal else {
            finishAttempt(job, a, record: rec, charged: charged, success: false, output: nil, now: now)
            return
        }
        let model = job.models[m]
        let amount = Amount(tokens: Self.judgeTokenCap, usd: NanoUSD(usd: model.worstCaseUSD(tokens: Self.judgeTokenCap)))
        var sub = job.subtasks[sid]!
        let id = AttemptID(job: job.record.id, subtask: sid, n: sub.attempts + 1)
        do {
            // The tenant's period budget too (TenantBudgets.swift), like every attempt's.
            if let short = tenantShortfall(job, amount) { throw TenantShortfall(description: short) }
            try job.ledger.reserve(amount, for: id)
            reserveForTenant(job, amount, id)
        } catch {
            var judgedRecord = rec
            judgedRecord.detail += "; not judged: the budget cannot pay for the judge (\(error))"
            persist(.attempt(judgedRecord))
            observe(job, subtask: sid, model: a.spec.model, passed: false, tokens: tokens, seconds: seconds)
            finishAttempt(job, a, record: judgedRecord, charged: charged, success: false, output: nil, now: now)
            return
        }
        sub.attempts += 1
        job.subtasks[sid] = sub
        job.judgeAttempts[sid, default: 0] += 1
        var judgeRecord = AttemptRecord(id: id, model: model.name, state: .queued, tokenCap: Self.judgeTokenCap, reserved: amount,
                                        deadline: job.record.deadline, createdAt: now)
        judgeRecord.detail = "\(Self.judgeDetailPrefix)\(a.record.id.n)"
        job.judging[id] = Judging(judged: a.record.id, model: a.spec.model, tokens: tokens, seconds: seconds, output: outcome.output,
                                  outputs: Self.checkedOutputs(outcome.outputs))
        // Added before the judged attempt is settled, so its subtask stays in flight.
        job.add(LiveAttempt(record: judgeRecord, spec: job.spec(for: judgeRecord), node: a.node, model: m))
        persist(.attempt(judgeRecord))
        noteQueued(judgeRecord, now: now)
        var judgedRecord = rec
        judgedRecord.detail += "; judged by #\(id.n) on \(model.name)"
        persist(.attempt(judgedRecord))
        finishAttempt(job, a, record: judgedRecord, charged: charged, success: false, output: nil, now: now)
    }

    mutating func finishJudge(_ job: JobRun, _ a: LiveAttempt, _ judged: Judging, record rec: AttemptRecord, charged: Amount,
                              outcome: AttemptOutcome, now: WallInstant) {
        let passed = outcome.end == .succeeded && outcome.judgement?.passed == true
        var rec = rec
        rec.detail = "\(Self.judgeDetailPrefix)\(judged.judged.n): \(rec.detail)"
        persist(.attempt(rec))
        if outcome.end == .succeeded || outcome.end == .failed {
            // The judged attempt's observation includes its judge: what planning expects of an
            // attempt of a judged subtask (``JudgePlanning``).
            let judgedModel = job.models.first { $0.name == judged.model }
            let judgeTokens = judgedModel.map { JudgePlanning.observedTokens(judgeTokens: rec.tokensIn + rec.tokensOut, judge: job.models[a.model], judged: $0,
                                                                                      usd: job.record.limitUSD != nil) }
                ?? rec.tokensIn + rec.tokensOut
            observe(job, subtask: a.record.id.subtask, model: judged.model, passed: passed, tokens: judged.tokens + judgeTokens,
                    seconds: judged.seconds + max(now.seconds(since: a.record.dispatchedAt ?? now), 0))
        }
        finishAttempt(job, a, record: rec, charged: charged, success: passed, output: judged.output, now: now, outputs: judged.outputs,
                      model: judged.model)
    }
}

extension JobRun {
    /// A judge attempt's dispatch: the judged subtask's prompt and kind, the rubric, and the
    /// result's files as its workspace.
    func judgeSpec(for a: AttemptRecord, subtask: Subtask, judging: Judging) -> AttemptSpec {
        var spec = AttemptSpec(id: a.id, model: a.model, prompt: subtask.prompt, verify: nil, inputs: [:], tokenCap: a.tokenCap,
                               scaffold: scaffold, simulated: subtask.estimate(for: a.model), seed: attemptSeed(a.id))
        var work = AttemptWork(kind: subtask.kind, actions: [],
                               judge: JudgeTask(rubric: subtask.judge?.rubric ?? "", pass: subtask.judge?.pass ?? 1, judged: judging.judged))
        if let blob = judging.outputs?.blob {
            work.inputs = [AttemptInput(name: "result", sha256: blob.sha256, size: blob.data.count, at: "", readOnly: false)]
            work.blobs = [blob]
        }
        spec.work = work
        spec.priority = record.priority == 0 ? nil : record.priority
        return spec
    }
}
