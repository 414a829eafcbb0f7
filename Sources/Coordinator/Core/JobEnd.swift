import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Ending jobs: every live attempt cancelled, unfinished subtasks abandoned, the row written,
/// and — when nothing more can run — why.
extension CoordinatorCore {
    mutating func end(_ job: JobRun, _ state: JobState, reason: String, now: WallInstant) {
        guard !job.isTerminal else { return }
        setState(job, state)
        job.record.reason = reason
        job.record.endedAt = now
        for id in Array(job.live.keys) { cancelAttempt(job, id, reason: reason, now: now) }
        for (sid, var s) in job.subtasks where s.state != .succeeded {
            s.state = s.state == .running && job.inFlight[job.nodeIndex[sid]!] != nil ? .running : .abandoned
            job.subtasks[sid] = s
            persist(.subtask(s))
        }
        job.record.spentTokens = job.ledger.spent.tokens
        job.record.spentUSD = job.ledger.spent.usd
        persist(.updateJob(job.record))
        noteJobEnd(job)
    }

    /// "; worker gpu0's model server is failing: …" for the job's workers whose breaker is not
    /// closed, so a job that timed out says why.
    func backendTrouble(for job: JobRun) -> String {
        let models = Set(job.models.map(\.name))
        let failing = workers.sorted { $0.key < $1.key }.filter { models.contains($0.value.record.model) && $0.value.breaker.trips > 0 }
        return failing.map { "; worker \($0.key)'s model server keeps failing (\($0.value.breaker.problem ?? "no detail"))" }.joined()
    }

    /// Nothing runs and the planner launched nothing: say why the job cannot go on.
    mutating func endStuck(_ job: JobRun, now: WallInstant) {
        let remaining = job.workflow.subtasks.indices.filter { !job.done.contains($0) }
        let fitsSomething = remaining.contains { i in
            job.models.contains { m in
                let cap = job.workflow.subtasks[i].tokenCap(on: m)
                return job.ledger.fits(Amount(tokens: cap, usd: NanoUSD(usd: m.worstCaseUSD(tokens: cap))))
            }
        }
        if !fitsSomething {
            let a = job.ledger.available
            var left: [String] = []
            if job.record.limitTokens != nil { left.append("\(a.tokens) tokens") }
            if job.record.limitUSD != nil { left.append(String(format: "$%.6f", a.usd.usd)) }
            end(job, .budgetExhausted,
                reason: "what is left of the budget (\(left.joined(separator: ", "))) cannot cover another attempt; \(job.done.count) of \(job.planNodes.count) subtasks passed",
                now: now)
        } else if let failed = job.workflow.subtasks.first(where: { s in
            (s.maxAttempts.map { job.subtasks[s.id]!.attempts >= $0 } ?? false) && job.subtasks[s.id]!.state != .succeeded
        }) {
            end(job, .failed, reason: "subtask '\(failed.id)' used all \(failed.maxAttempts!) attempts without passing", now: now)
        } else {
            end(job, .infeasible,
                reason: "planner \(job.planner.name) launches nothing more: it expects no attempt that fits the remaining budget and time to help; \(job.done.count) of \(job.planNodes.count) subtasks passed",
                now: now)
        }
    }
}
