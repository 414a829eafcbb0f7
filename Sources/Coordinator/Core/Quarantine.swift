import AgentFlowCore
import Foundation
import Planner
import Store

/// Why a stored job is not resumed (its rows fail a check, or it crashed the coordinator).
struct QuarantineReason: Error, CustomStringConvertible {
    var description: String
}

/// Poison jobs: a job whose stored rows cannot be trusted, or that crashed the last coordinator,
/// is ended `failed` with the reason ("quarantined: …") instead of being resumed, and the
/// coordinator goes on with every other job. The database is a file an operator (or an older
/// version) may have written anything into; every number read back is range-checked here with
/// the limits that applied when it came in, so nothing read back can trap later.
extension CoordinatorCore {
    /// Ends a job without resuming it: its state `failed`, the reason saying why; its queued and
    /// dispatched attempts are released (cancelled, charged nothing: their rows are not trusted
    /// enough to charge from) and its unfinished subtasks abandoned. A worker still running one
    /// of its attempts is told to stop when it re-registers (the attempt is not live).
    mutating func quarantine(_ stored: StoredJob, reason: String, now: WallInstant) {
        stats.quarantinedJobs += 1
        var r = stored.record
        r.state = .failed
        r.reason = "quarantined: \(reason)"
        r.endedAt = now
        persist(.insertJob(r))
        for var a in stored.attempts where a.state == .queued || a.state == .dispatched {
            a.state = .cancelled
            a.endedAt = now
            a.detail = "cancelled: its job was quarantined"
            persist(.attempt(a))
        }
        for var s in stored.subtasks where s.state != .succeeded && s.state != .abandoned {
            s.state = .abandoned
            persist(.subtask(s))
        }
        note(.jobState(from: stored.record.state, to: .failed))
        note(.quarantined(job: r.id, reason: r.reason, at: now))
    }

    /// What is wrong with a stored job's rows, as a thrown ``QuarantineReason``.
    static func checkStoredJob(_ record: JobRecord, workflow: Workflow, subtasks: [SubtaskRecord], attempts: [AttemptRecord], models: [ModelSpec]) throws {
        func fail(_ message: String) -> QuarantineReason { QuarantineReason(description: "stored job \(Limits.printable(record.id)): \(message)") }
        if let t = record.limitTokens, let p = Limits.budgetTokens(t) { throw fail(p) }
        if let u = record.limitUSD, !(1...Int64(Limits.maxBudgetUSD * 1e9)).contains(u.value) { throw fail("the USD limit \(u.value) nano-dollars is out of range") }
        if record.limitTokens == nil && record.limitUSD == nil { throw fail("it has no budget") }
        if !(0...(record.limitTokens ?? Limits.maxBudgetTokens)).contains(record.spentTokens) { throw fail("spent tokens \(record.spentTokens) are out of range") }
        if record.spentUSD < .zero || record.spentUSD > (record.limitUSD ?? NanoUSD(Int64.max / 4)) { throw fail("spent USD \(record.spentUSD.value) nano-dollars is out of range") }
        if !record.submittedAt.isFinite || !record.deadline.isFinite || Limits.seconds(record.deadline.seconds(since: record.submittedAt), "the deadline") != nil {
            throw fail("its submission time and deadline (\(record.submittedAt.secondsSince1970), \(record.deadline.secondsSince1970)) are not a deadline of up to 30 days")
        }
        if let p = Limits.priority(record.priority) { throw fail(p) }
        if let m = record.minSuccess, let p = Limits.probability(m, "min-success") { throw fail(p) }
        if models.isEmpty { throw fail("none of its models is in the cluster") }
        let ids = Set(workflow.subtasks.map(\.id))
        for s in subtasks {
            if !ids.contains(s.id) { throw fail("a subtask row \(Limits.printable(s.id)) is not in its workflow") }
            if s.attempts < 0 || s.attempts > Int.max / 2 || s.tokens < 0 || s.usd < .zero {
                throw fail("subtask \(Limits.printable(s.id)) has out-of-range counts")
            }
        }
        for a in attempts where a.state == .queued || a.state == .dispatched {
            let name = "attempt \(Limits.printable(a.id.description))"
            if !ids.contains(a.id.subtask) { throw fail("\(name) is for a subtask not in its workflow") }
            guard let model = models.first(where: { $0.name == a.model }) else { throw fail("\(name) is on model \(Limits.printable(a.model)), not one of the job's") }
            if a.id.n < 1 { throw fail("\(name) has number \(a.id.n)") }
            if let p = Limits.attemptTokens(a.tokenCap, "its token cap") { throw fail("\(name): \(p)") }
            let worst = NanoUSD(usd: model.worstCaseUSD(tokens: a.tokenCap))
            if !(0...a.tokenCap).contains(a.reserved.tokens) || a.reserved.usd < .zero || a.reserved.usd > worst {
                throw fail("\(name) holds a reservation (\(a.reserved.tokens) tokens, \(a.reserved.usd.value) nano-dollars) its cap does not allow")
            }
            if !a.deadline.isFinite { throw fail("\(name) has no finite deadline") }
        }
    }
}

#if DEBUG
extension CrashGuard {
    /// Fault injection for the poison-job test, in debug builds only: the coordinator traps
    /// when it records a result of a job of the workflow named by `AGENTFLOW_FAULT_TRAP_WORKFLOW`.
    static let trapWorkflow = ProcessInfo.processInfo.environment["AGENTFLOW_FAULT_TRAP_WORKFLOW"]

    static func faultPoint(workflow: String) {
        if let trapWorkflow, trapWorkflow == workflow { fatalError("injected fault: a result of a job of workflow '\(workflow)'") }
    }
}
#else
extension CrashGuard {
    @inline(__always) static func faultPoint(workflow: String) {}
}
#endif
