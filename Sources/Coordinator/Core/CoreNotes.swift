import AgentFlowCore
import Foundation
import Observability
import Planner
import Store
import Wire

/// What happened, for operators: the shell turns each note into a log line, an event in the
/// job's window (the HTTP events stream) and metrics (``Telemetry/apply(_:)``), after the
/// commit. The core only says what happened; it holds no logger or metric.
public enum CoreNote: Sendable {
    case submitted(job: String, workflow: String, planner: String, deadline: WallInstant, at: WallInstant, state: JobState, reason: String, budget: BudgetReport)
    /// A job's state changed (`from` nil: a new job).
    case jobState(from: JobState?, to: JobState)
    /// An attempt changed state (queued, cancelled before dispatch, finished, lost), with its
    /// job's budget at that moment.
    case attempt(AttemptRecord, budget: BudgetReport?, at: WallInstant)
    case dispatched(AttemptRecord, worker: String, model: String, waited: Double, at: WallInstant)
    /// A finished attempt: how it ended and its tokens per role as the worker reported them
    /// (range-checked), for the counters.
    case result(AttemptRecord, worker: String, end: AttemptEnd, roles: [RoleCount], tenant: String)
    case lost(AttemptRecord, reason: String, tenant: String)
    /// A worker's breaker opened (until, wall clock) or went half-open.
    case breaker(worker: String, opened: Bool, trips: Int, problem: String, until: WallInstant?)
    case decision(job: String, planner: String, launches: Int, samples: Int, milliseconds: Double?)
    case jobEnded(job: String, workflow: String, tenant: String, state: JobState, reason: String, tokens: Int, usd: NanoUSD, seconds: Double, at: WallInstant,
                  budget: BudgetReport)
    /// A stored job was ended `failed` instead of resumed.
    case quarantined(job: String, reason: String, at: WallInstant)
    /// A running attempt was cancelled to give its slot to a job at risk.
    case preempted(model: String)
    /// Once a second: each running job's budget left, deadline and success estimate; every
    /// worker's slots, liveness and breaker.
    case gauges(jobs: [CoordinatorMetrics.RunningJob], workers: [CoordinatorMetrics.WorkerGauges])
    /// Once a second: every tenant's period spend, usage, share and jobs (`TenantBudgets.swift`).
    case tenants([CoordinatorMetrics.TenantState])
    /// A client request refused for want of a right (`ScopedRequests.swift`).
    case refused(RefusalMetrics.Right)
}

/// Tokens of one role, as counted for the metrics.
public struct RoleCount: Sendable, Equatable {
    public var role: String
    public var tokens: Int
}

/// The notes, at the points where things happen. The scheduling code calls these and nothing else.
extension CoordinatorCore {
    func budgetReport(_ job: JobRun) -> BudgetReport {
        let r = job.record
        let reserved = job.ledger.reserved
        return BudgetReport(limitTokens: r.limitTokens, limitUSD: r.limitUSD?.usd, spentTokens: job.ledger.spent.tokens,
                            spentUSD: job.ledger.spent.usd.usd, reservedTokens: reserved.tokens, reservedUSD: reserved.usd.usd)
    }

    /// An attempt changed state: its event, then the job's budget.
    mutating func attemptEvent(_ rec: AttemptRecord, now: WallInstant) {
        var budget: BudgetReport?
        if let job = jobs[rec.id.job] { budget = budgetReport(job) }
        note(.attempt(rec, budget: budget, at: now))
    }

    mutating func noteSubmitted(_ job: JobRun) {
        let r = job.record
        note(.jobState(from: nil, to: r.state))
        note(.submitted(job: r.id, workflow: job.workflow.name, planner: r.planner, deadline: r.deadline, at: r.submittedAt,
                        state: r.state, reason: r.reason, budget: budgetReport(job)))
    }

    /// Reserved and queued for a slot.
    mutating func noteQueued(_ rec: AttemptRecord, now: WallInstant) {
        attemptEvent(rec, now: now)
    }

    /// Dropped before it reached a worker; its reservation is released.
    mutating func noteCancelledQueued(_ rec: AttemptRecord, now: WallInstant) {
        attemptEvent(rec, now: now)
    }

    mutating func noteDispatch(_ a: LiveAttempt, worker: String, now: WallInstant) {
        note(.dispatched(a.record, worker: worker, model: a.spec.model, waited: max(0, now.seconds(since: a.record.createdAt)), at: now))
    }

    mutating func noteResult(_ rec: AttemptRecord, worker: String, outcome: AttemptOutcome, now: WallInstant) {
        note(.result(rec, worker: worker, end: outcome.end,
                     roles: outcome.usage.map { RoleCount(role: $0.role.rawValue, tokens: min(max(0, $0.input), 1 << 40) + min(max(0, $0.output), 1 << 40)) },
                     tenant: jobs[rec.id.job]?.tenant ?? ""))
        attemptEvent(rec, now: now)
    }

    mutating func noteLoss(_ rec: AttemptRecord, reason: String) {
        note(.lost(rec, reason: reason, tenant: jobs[rec.id.job]?.tenant ?? ""))
        attemptEvent(rec, now: rec.endedAt ?? now.wall)
    }

    mutating func noteBreaker(_ worker: String, opened: Bool, breaker: BackendBreaker) {
        note(.breaker(worker: worker, opened: opened, trips: breaker.trips, problem: breaker.problem ?? "",
                      until: breaker.suspendedUntil.map { now.wall + ($0 - now.mono) }))
    }

    mutating func noteDecision(_ job: JobRun, launches: [Launch], milliseconds: Double?) {
        if let milliseconds { stats.planning.record(milliseconds / 1000) }
        note(.decision(job: job.record.id, planner: job.planner.name, launches: launches.count, samples: launches.reduce(0) { $0 + $1.samples },
                       milliseconds: milliseconds))
    }

    mutating func noteJobEnd(_ job: JobRun) {
        let r = job.record
        let at = r.endedAt ?? now.wall
        // The per-job gauges go with the job at once.
        nextGaugesAt = WallInstant(secondsSince1970: 0)
        note(.jobEnded(job: r.id, workflow: job.workflow.name, tenant: job.tenant, state: r.state, reason: r.reason, tokens: r.spentTokens, usd: r.spentUSD,
                       seconds: (r.endedAt?.secondsSince1970 ?? 0) - r.submittedAt.secondsSince1970, at: at, budget: budgetReport(job)))
    }

    /// Jobs with per-job gauges at most: admitted jobs first, then the nearest deadlines. Queued
    /// jobs are counted by `agentflow_jobs{state="queued"}`; a series per queued job made
    /// `/metrics` grow with the queue, and each new series cost the registry a copy of all the
    /// others (at 10,000 queued jobs the loop stopped for minutes, heartbeats unanswered).
    public static let jobGaugeLimit = 500

    /// Gauges, at most once a second: the budget left, deadline and success estimate of up to
    /// ``jobGaugeLimit`` unfinished jobs (estimates for the 100 first); every worker's slots,
    /// liveness and breaker.
    mutating func readGauges(now: WallInstant) {
        guard now >= nextGaugesAt else { return }
        nextGaugesAt = now.adding(seconds: 1)
        // The first `jobGaugeLimit` in (queued last, deadline, id) order, by partial selection:
        // sorting every unfinished job once a second was 3% of the loop at 10,000 queued.
        let running = jobs.values.lazy.filter { !$0.isTerminal }.smallest(Self.jobGaugeLimit) {
            ($0.record.state == .queued ? 1 : 0, $0.record.deadline, $0.record.id) < ($1.record.state == .queued ? 1 : 0, $1.record.deadline, $1.record.id)
        }
        var runningJobs: [CoordinatorMetrics.RunningJob] = []
        for (i, job) in running.enumerated() {
            let b = budgetReport(job)
            let used = [b.limitUSD.map { (b.spentUSD + b.reservedUSD) / max($0, 1e-12) },
                        b.limitTokens.map { Double(b.spentTokens + b.reservedTokens) / Double(max($0, 1)) }].compactMap { $0 }.max()
            runningJobs.append(CoordinatorMetrics.RunningJob(
                id: job.record.id, tenant: job.tenant, remainingUSD: b.limitUSD.map { $0 - b.spentUSD - b.reservedUSD },
                remainingTokens: b.limitTokens.map { $0 - b.spentTokens - b.reservedTokens }, budgetUsedRatio: used,
                deadlineRemainingSeconds: job.record.deadline.seconds(since: now), deadlineTotalSeconds: job.record.deadline.seconds(since: job.record.submittedAt),
                successEstimate: i < 100 ? successEstimate(job, now: now) : nil))
        }
        var states: [CoordinatorMetrics.WorkerGauges] = []
        for (name, w) in workers {
            let unavailable = !w.alive || w.breaker.suspendedUntil != nil
            // Running attempts hold slots; prefetched ones (queued at the worker) hold none.
            let busy = w.running.count
            var cause: CoordinatorMetrics.BreakerCause?
            if backendFailing(w) {
                switch BackendProblem.kind(w.breaker.problem ?? "") {
                case .unreachable: cause = .unreachable
                case .refusedKey: cause = .refusedKey
                case .other: cause = .errors
                }
            }
            states.append(CoordinatorMetrics.WorkerGauges(
                name: name, model: w.record.model, busy: busy, free: unavailable ? 0 : max(0, w.record.slots - busy),
                unavailable: unavailable ? max(0, w.record.slots - busy) : 0, up: w.alive, breakerOpen: cause, queued: w.queued.count))
        }
        note(.gauges(jobs: runningJobs, workers: states))
    }
}

extension Sequence {
    /// The `k` least elements in ascending order (as `sorted(by:).prefix(k)` for a strict order),
    /// in one pass over a bounded sorted buffer: an element that does not beat the `k`th costs
    /// one comparison.
    func smallest(_ k: Int, by less: (Element, Element) -> Bool) -> [Element] {
        guard k > 0 else { return [] }
        var kept: [Element] = []
        kept.reserveCapacity(k)
        for e in self {
            if kept.count == k {
                guard less(e, kept[k - 1]) else { continue }
                kept.removeLast()
            }
            // After any equal elements: the earlier one stays first, as a stable sort keeps it.
            var lo = 0, hi = kept.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if less(e, kept[mid]) { hi = mid } else { lo = mid + 1 }
            }
            kept.insert(e, at: lo)
        }
        return kept
    }
}
