import AgentFlowCore
import Foundation
import Logging
import Observability
import Planner
import Store
import Wire

/// What the coordinator tells operators at the points where things happen: one log line per
/// dispatch, result, loss, breaker change, planner decision and job end (job/attempt/worker as
/// metadata), an event in the job's window (the HTTP events stream), and its metrics. The
/// scheduling code calls these and nothing else.
extension Coordinator {
    static let logger = Logger(label: "agentflow.coordinator")
    var log: Logger { Self.logger }

    func budgetReport(_ job: JobRun) -> BudgetReport {
        let r = job.record
        let reserved = job.ledger.reserved
        return BudgetReport(limitTokens: r.limitTokens, limitUSD: r.limitUSD?.usd, spentTokens: job.ledger.spent.tokens,
                            spentUSD: job.ledger.spent.usd.usd, reservedTokens: reserved.tokens, reservedUSD: reserved.usd.usd)
    }

    /// An attempt changed state: its event, then the job's budget.
    func attemptEvent(_ rec: AttemptRecord, now: Double) {
        telemetry.append(rec.id.job, kind: "attempt", at: now, attempt: rec)
        if let job = jobs[rec.id.job] { telemetry.append(rec.id.job, kind: "budget", at: now, budget: budgetReport(job)) }
    }

    func noteSubmitted(_ job: JobRun) {
        log.info("job submitted", metadata: [
            "job": "\(job.record.id)", "workflow": "\(job.workflow.name)", "planner": "\(job.record.planner)",
            "deadline": "\(isoTime(job.record.deadline))",
        ])
        telemetry.append(job.record.id, kind: "job", at: job.record.submittedAt, state: job.record.state.rawValue, reason: job.record.reason)
        telemetry.append(job.record.id, kind: "budget", at: job.record.submittedAt, budget: budgetReport(job))
    }

    /// Reserved and queued for a slot.
    func noteQueued(_ rec: AttemptRecord, now: Double) {
        attemptEvent(rec, now: now)
    }

    /// Dropped before it reached a worker; its reservation is released.
    func noteCancelledQueued(_ rec: AttemptRecord, now: Double) {
        attemptEvent(rec, now: now)
    }

    func noteDispatch(_ a: LiveAttempt, worker: String, now: Double) {
        log.info("dispatch", metadata: [
            "job": "\(a.record.id.job)", "attempt": "\(a.record.id)", "worker": "\(worker)", "model": "\(a.spec.model)",
            "cap": .stringConvertible(a.record.tokenCap),
        ])
        telemetry.metrics.dispatched(queueWait: now - a.record.createdAt)
        telemetry.append(a.record.id.job, kind: "attempt", at: now, attempt: a.record)
    }

    func noteResult(_ rec: AttemptRecord, worker: String, outcome: AttemptOutcome, now: Double) {
        log.info("result", metadata: [
            "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(worker)", "model": "\(rec.model)",
            "outcome": "\(outcome.end.rawValue)", "tokens": .stringConvertible(rec.tokensIn + rec.tokensOut),
            "usd": "\(String(format: "%.9f", rec.usd.usd))",
            "seconds": "\(String(format: "%.3f", now - (rec.dispatchedAt ?? now)))",
        ])
        countAttempt(model: rec.model, outcome: outcome.end.rawValue, tenant: jobs[rec.id.job]?.tenant ?? "", usd: rec.usd.usd,
                     roles: outcome.usage.map { ($0.role.rawValue, min(max(0, $0.input), 1 << 40) + min(max(0, $0.output), 1 << 40)) }, clampedTo: rec.tokensIn + rec.tokensOut)
        attemptEvent(rec, now: now)
    }

    func noteLoss(_ rec: AttemptRecord, reason: String) {
        log.warning("lost", metadata: [
            "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(rec.worker ?? "")", "model": "\(rec.model)",
            "charged_tokens": .stringConvertible(rec.tokensOut), "reason": "\(reason)",
        ])
        countAttempt(model: rec.model, outcome: "lost", tenant: jobs[rec.id.job]?.tenant ?? "", usd: rec.usd.usd, roles: [("agent", rec.tokensOut)], clampedTo: rec.tokensOut)
        attemptEvent(rec, now: rec.endedAt ?? time.now)
    }

    /// Attempts and spend counters. Per-role tokens are the worker's report, scaled down to
    /// what was charged if it reported more than its cap allowed.
    func countAttempt(model: String, outcome: String, tenant: String, usd: Double, roles: [(String, Int)], clampedTo charged: Int) {
        let reported = roles.reduce(0) { $0 + $1.1 }
        var left = charged
        var charges: [(role: String, tokens: Int)] = []
        for (role, tokens) in roles where tokens > 0 && left > 0 {
            // Scaled in floating point: tokens × charged can exceed Int for a hostile report.
            let n = reported > charged ? min(left, Int(Double(tokens) * Double(charged) / Double(max(reported, 1)))) : tokens
            left -= n
            charges.append((role, n))
        }
        telemetry.metrics.attemptEnded(model: model, outcome: outcome, tenant: tenant, usd: usd, roleTokens: charges)
    }

    func noteMalformed(socket: String) {
        stats.malformedMessages += 1
        telemetry.metrics.malformedMessage(socket: socket)
    }

    func noteBreaker(_ worker: String, opened: Bool, breaker: BackendBreaker) {
        if opened {
            log.warning("breaker open", metadata: [
                "worker": "\(worker)", "trips": .stringConvertible(breaker.trips), "problem": "\(breaker.problem ?? "")",
                "until": "\(breaker.suspendedUntil.map { isoTime(time.now + $0 - monotonicNow) } ?? "")",
            ])
        } else {
            log.notice("breaker half-open", metadata: ["worker": "\(worker)", "trips": .stringConvertible(breaker.trips)])
        }
    }

    func noteDecision(_ job: JobRun, launches: [Launch], milliseconds: Double?) {
        let samples = launches.reduce(0) { $0 + $1.samples }
        if let milliseconds {
            stats.planning.record(milliseconds / 1000)
            telemetry.metrics.plannerDecided(seconds: milliseconds / 1000)
        }
        // Decisions that launch nothing (most seq:K re-plans after a result) are debug detail.
        log.log(level: launches.isEmpty ? .debug : .info, "planner decision", metadata: [
            "job": "\(job.record.id)", "planner": "\(job.planner.name)", "launches": .stringConvertible(launches.count), "samples": .stringConvertible(samples),
            "ms": "\(milliseconds.map { String(format: "%.2f", $0) } ?? "0")",
        ])
    }

    func noteJobEnd(_ job: JobRun) {
        let level: Logger.Level = job.record.state == .succeeded ? .info : .notice
        log.log(level: level, "job end", metadata: [
            "job": "\(job.record.id)", "workflow": "\(job.workflow.name)", "state": "\(job.record.state.rawValue)",
            "reason": "\(job.record.reason)", "tokens": .stringConvertible(job.record.spentTokens),
            "usd": "\(String(format: "%.9f", job.record.spentUSD.usd))",
            "seconds": "\(String(format: "%.3f", (job.record.endedAt ?? 0) - job.record.submittedAt))",
        ])
        let at = job.record.endedAt ?? time.now
        telemetry.metrics.jobEnded(state: job.record.state.rawValue, tenant: job.tenant)
        telemetry.nextRefresh = 0
        telemetry.append(job.record.id, kind: "job", at: at, state: job.record.state.rawValue, reason: job.record.reason)
        telemetry.append(job.record.id, kind: "budget", at: at, budget: budgetReport(job))
    }

    /// Gauges, at most once a second: jobs per state; each running job's budget left, deadline
    /// and success estimate (estimates for the 100 with the nearest deadlines); every worker's
    /// slots, liveness and breaker.
    func refreshGauges(now: Double) {
        guard now >= telemetry.nextRefresh else { return }
        telemetry.nextRefresh = now + 1
        if let counts = try? readStore().jobCountsByState() {
            telemetry.metrics.jobCounts(counts, states: JobState.allCases.map(\.rawValue))
        }
        let running = jobs.values.filter { !$0.isTerminal }.sorted { ($0.record.deadline, $0.record.id) < ($1.record.deadline, $1.record.id) }
        telemetry.metrics.runningJobs(running.enumerated().map { i, job in
            let b = budgetReport(job)
            let used = [b.limitUSD.map { (b.spentUSD + b.reservedUSD) / max($0, 1e-12) },
                        b.limitTokens.map { Double(b.spentTokens + b.reservedTokens) / Double(max($0, 1)) }].compactMap { $0 }.max()
            return CoordinatorMetrics.RunningJob(
                id: job.record.id, tenant: job.tenant, remainingUSD: b.limitUSD.map { $0 - b.spentUSD - b.reservedUSD },
                remainingTokens: b.limitTokens.map { $0 - b.spentTokens - b.reservedTokens }, budgetUsedRatio: used,
                deadlineRemainingSeconds: job.record.deadline - now, deadlineTotalSeconds: job.record.deadline - job.record.submittedAt,
                successEstimate: i < 100 ? successEstimate(job, now: now) : nil)
        })
        telemetry.metrics.workers(workers.map { name, w in
            let unavailable = !w.alive || w.breaker.suspendedUntil != nil
            let busy = w.running.count
            var cause: CoordinatorMetrics.BreakerCause?
            if backendFailing(w) {
                switch BackendProblem.kind(w.breaker.problem ?? "") {
                case .unreachable: cause = .unreachable
                case .refusedKey: cause = .refusedKey
                case .other: cause = .errors
                }
            }
            return CoordinatorMetrics.WorkerState(
                name: name, model: w.info.model, busy: busy, free: unavailable ? 0 : max(0, w.info.slots - busy),
                unavailable: unavailable ? max(0, w.info.slots - busy) : 0, up: w.alive, breakerOpen: cause)
        })
    }
}
