import AgentFlowCore
import Foundation
import Logging
import Observability
import Store
import Wire

/// The core's notes turned into log lines (job/attempt/worker as metadata), job events and metrics.
extension Telemetry {
    public func apply(_ notes: [CoreNote]) {
        for n in notes { apply(n) }
    }

    func apply(_ n: CoreNote) {
        switch n {
        case .submitted(let job, let workflow, let planner, let deadline, let at, let state, let reason, let budget):
            log.info("job submitted", metadata: [
                "job": "\(job)", "workflow": "\(workflow)", "planner": "\(planner)", "deadline": "\(isoTime(deadline))",
            ])
            append(job, kind: "job", at: at, state: state.rawValue, reason: reason)
            append(job, kind: "budget", at: at, budget: budget)
        case .jobState(let from, let to):
            if let from { jobCounts[from, default: 0] -= 1 }
            jobCounts[to, default: 0] += 1
            recordJobCounts()
        case .attempt(let rec, let budget, let at):
            append(rec.id.job, kind: "attempt", at: at, attempt: rec)
            if let budget { append(rec.id.job, kind: "budget", at: at, budget: budget) }
        case .dispatched(let rec, let worker, let model, let waited, let at):
            log.info("dispatch", metadata: [
                "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(worker)", "model": "\(model)",
                "cap": .stringConvertible(rec.tokenCap),
            ])
            metrics.dispatched(queueWait: .clampedSeconds(waited))
            append(rec.id.job, kind: "attempt", at: at, attempt: rec)
        case .result(let rec, let worker, let end, let roles, let tenant):
            let ran = (rec.endedAt ?? .init(secondsSince1970: 0)).seconds(since: rec.dispatchedAt ?? rec.endedAt ?? .init(secondsSince1970: 0))
            log.info("result", metadata: [
                "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(worker)", "model": "\(rec.model)",
                "outcome": "\(end.rawValue)", "tokens": .stringConvertible(rec.tokensIn + rec.tokensOut),
                "usd": "\(String(format: "%.9f", rec.usd.usd))",
                "seconds": "\(String(format: "%.3f", ran))",
            ])
            countAttempt(model: rec.model, outcome: end.rawValue, tenant: tenant, usd: rec.usd.usd, roles: roles, clampedTo: rec.tokensIn + rec.tokensOut)
        case .lost(let rec, let reason, let tenant):
            log.warning("lost", metadata: [
                "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(rec.worker ?? "")", "model": "\(rec.model)",
                "charged_tokens": .stringConvertible(rec.tokensOut), "reason": "\(reason)",
            ])
            countAttempt(model: rec.model, outcome: "lost", tenant: tenant, usd: rec.usd.usd, roles: [RoleCount(role: "agent", tokens: rec.tokensOut)],
                         clampedTo: rec.tokensOut)
        case .breaker(let worker, let opened, let trips, let problem, let until):
            if opened {
                log.warning("breaker open", metadata: [
                    "worker": "\(worker)", "trips": .stringConvertible(trips), "problem": "\(problem)", "until": "\(until.map(isoTime) ?? "")",
                ])
            } else {
                log.notice("breaker half-open", metadata: ["worker": "\(worker)", "trips": .stringConvertible(trips)])
            }
        case .decision(let job, let planner, let launches, let samples, let milliseconds):
            if let milliseconds { metrics.plannerDecided(.clampedSeconds(milliseconds / 1000)) }
            // Decisions that launch nothing (most seq:K re-plans after a result) are debug detail.
            log.log(level: launches == 0 ? .debug : .info, "planner decision", metadata: [
                "job": "\(job)", "planner": "\(planner)", "launches": .stringConvertible(launches), "samples": .stringConvertible(samples),
                "ms": "\(milliseconds.map { String(format: "%.2f", $0) } ?? "0")",
            ])
        case .jobEnded(let job, let workflow, let tenant, let state, let reason, let tokens, let usd, let seconds, let at, let budget):
            log.log(level: state == .succeeded ? .info : .notice, "job end", metadata: [
                "job": "\(job)", "workflow": "\(workflow)", "state": "\(state.rawValue)", "reason": "\(reason)",
                "tokens": .stringConvertible(tokens), "usd": "\(String(format: "%.9f", usd.usd))", "seconds": "\(String(format: "%.3f", seconds))",
            ])
            metrics.jobEnded(state: state.rawValue, tenant: tenant)
            traces?.ended(job)
            append(job, kind: "job", at: at, state: state.rawValue, reason: reason)
            append(job, kind: "budget", at: at, budget: budget)
        case .quarantined(let job, let reason, let at):
            log.error("job quarantined", metadata: ["job": "\(Limits.printable(job))", "reason": "\(reason)"])
            metrics.jobQuarantined()
            traces?.ended(job)
            append(job, kind: "job", at: at, state: JobState.failed.rawValue, reason: reason)
        case .preempted(let model):
            metrics.preempted(model: model)
        case .gauges(let jobs, let workers):
            metrics.runningJobs(jobs)
            metrics.workers(workers)
        case .tenants(let tenants):
            metrics.tenants(tenants)
        case .refused(let right):
            refusals.refused(right)
        }
    }

    /// The jobs per state the store holds when the coordinator starts.
    public func countJobs(_ counts: [String: Int]) {
        jobCounts = [:]
        for (state, n) in counts { if let s = JobState(rawValue: state) { jobCounts[s] = n } }
        recordJobCounts()
    }

    func recordJobCounts() {
        var counts: [String: Int] = [:]
        for (state, n) in jobCounts { counts[state.rawValue] = max(0, n) }
        metrics.jobCounts(counts, states: JobState.allCases.map(\.rawValue))
    }

    /// Attempts and spend counters. Per-role tokens are the worker's report, scaled down to
    /// what was charged if it reported more than its cap allowed.
    func countAttempt(model: String, outcome: String, tenant: String, usd: Double, roles: [RoleCount], clampedTo charged: Int) {
        let reported = roles.reduce(0) { $0 + $1.tokens }
        var left = charged
        var charges: [(role: String, tokens: Int)] = []
        for r in roles where r.tokens > 0 && left > 0 {
            // Scaled in floating point: tokens × charged can exceed Int for a hostile report.
            let n = reported > charged ? min(left, Int(Double(r.tokens) * Double(charged) / Double(max(reported, 1)))) : r.tokens
            left -= n
            charges.append((r.role, n))
        }
        metrics.attemptEnded(model: model, outcome: outcome, tenant: tenant, usd: usd, roleTokens: charges)
    }
}
