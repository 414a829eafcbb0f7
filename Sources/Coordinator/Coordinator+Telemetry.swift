import AgentFlowCore
import CoreMetrics
import Foundation
import Logging
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
        telemetry.dispatchLatency.recordSeconds(max(0, now - a.record.createdAt))
        telemetry.append(a.record.id.job, kind: "attempt", at: now, attempt: a.record)
    }

    func noteResult(_ rec: AttemptRecord, worker: String, outcome: AttemptOutcome, now: Double) {
        log.info("result", metadata: [
            "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(worker)", "model": "\(rec.model)",
            "outcome": "\(outcome.end.rawValue)", "tokens": .stringConvertible(rec.tokensIn + rec.tokensOut),
            "usd": "\(String(format: "%.9f", rec.usd.usd))",
            "seconds": "\(String(format: "%.3f", now - (rec.dispatchedAt ?? now)))",
        ])
        countAttempt(model: rec.model, outcome: outcome.end.rawValue, usd: rec.usd.usd,
                     roles: outcome.usage.map { ($0.role.rawValue, min(max(0, $0.input), 1 << 40) + min(max(0, $0.output), 1 << 40)) }, clampedTo: rec.tokensIn + rec.tokensOut)
        attemptEvent(rec, now: now)
    }

    func noteLoss(_ rec: AttemptRecord, reason: String) {
        log.warning("lost", metadata: [
            "job": "\(rec.id.job)", "attempt": "\(rec.id)", "worker": "\(rec.worker ?? "")", "model": "\(rec.model)",
            "charged_tokens": .stringConvertible(rec.tokensOut), "reason": "\(reason)",
        ])
        countAttempt(model: rec.model, outcome: "lost", usd: rec.usd.usd, roles: [("agent", rec.tokensOut)], clampedTo: rec.tokensOut)
        attemptEvent(rec, now: rec.endedAt ?? time.now)
    }

    /// Attempts and spend counters. Per-role tokens are the worker's report, scaled down to
    /// what was charged if it reported more than its cap allowed.
    func countAttempt(model: String, outcome: String, usd: Double, roles: [(String, Int)], clampedTo charged: Int) {
        telemetry.counter(&telemetry.attemptsTotal, "agentflow_attempts_total", [("model", model), ("outcome", outcome)]).increment()
        let reported = roles.reduce(0) { $0 + $1.1 }
        var left = charged
        for (role, tokens) in roles where tokens > 0 && left > 0 {
            // Scaled in floating point: tokens × charged can exceed Int for a hostile report.
            let n = reported > charged ? min(left, Int(Double(tokens) * Double(charged) / Double(max(reported, 1)))) : tokens
            left -= n
            if n > 0 { telemetry.counter(&telemetry.tokensTotal, "agentflow_spent_tokens_total", [("model", model), ("role", role)]).increment(by: n) }
        }
        if usd > 0 {
            let c = telemetry.usdTotal[model] ?? FloatingPointCounter(label: "agentflow_spent_usd_total", dimensions: [("model", model)],
                                                                       factory: telemetry.metrics.factory)
            telemetry.usdTotal[model] = c
            c.increment(by: usd)
        }
    }

    func noteMalformed(socket: String) {
        stats.malformedMessages += 1
        telemetry.counter(&telemetry.malformed, "agentflow_malformed_messages_total", [("socket", socket)]).increment()
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
            telemetry.plannerDecision.recordSeconds(milliseconds / 1000)
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
        telemetry.nextRefresh = 0
        telemetry.append(job.record.id, kind: "job", at: at, state: job.record.state.rawValue, reason: job.record.reason)
        telemetry.append(job.record.id, kind: "budget", at: at, budget: budgetReport(job))
    }

    /// Gauges, at most once a second: jobs per state, what is left of each running job's
    /// budget, and every worker's slots by state.
    func refreshGauges(now: Double) {
        guard now >= telemetry.nextRefresh else { return }
        telemetry.nextRefresh = now + 1
        if let counts = try? readStore().jobCountsByState() {
            for state in JobState.allCases { telemetry.jobGauges[state.rawValue]?.record(counts[state.rawValue] ?? 0) }
        }
        var running: Set<String> = []
        for (id, job) in jobs where !job.isTerminal {
            running.insert(id)
            let b = budgetReport(job)
            if let limit = b.limitUSD {
                let g = telemetry.remainingUSD[id] ?? Gauge(label: "agentflow_budget_remaining_usd", dimensions: [("job", id)], factory: telemetry.metrics.factory)
                telemetry.remainingUSD[id] = g
                g.record(max(0, limit - b.spentUSD - b.reservedUSD))
            }
            if let limit = b.limitTokens {
                let g = telemetry.remainingTokens[id] ?? Gauge(label: "agentflow_budget_remaining_tokens", dimensions: [("job", id)], factory: telemetry.metrics.factory)
                telemetry.remainingTokens[id] = g
                g.record(max(0, limit - b.spentTokens - b.reservedTokens))
            }
        }
        for id in Set(telemetry.remainingUSD.keys).subtracting(running) { telemetry.remainingUSD.removeValue(forKey: id)?.destroy() }
        for id in Set(telemetry.remainingTokens.keys).subtracting(running) { telemetry.remainingTokens.removeValue(forKey: id)?.destroy() }
        for (name, w) in workers {
            let unavailable = !w.alive || w.breaker.suspendedUntil != nil
            let busy = w.running.count
            let values = [("busy", busy), ("free", unavailable ? 0 : max(0, w.info.slots - busy)),
                          ("unavailable", unavailable ? max(0, w.info.slots - busy) : 0)]
            for (state, value) in values {
                let key = "\(name)|\(state)"
                let g = telemetry.slotGauges[key] ?? Gauge(label: "agentflow_worker_slots", dimensions: [("worker", name), ("model", w.info.model), ("state", state)],
                                                           factory: telemetry.metrics.factory)
                telemetry.slotGauges[key] = g
                g.record(value)
            }
        }
    }
}
