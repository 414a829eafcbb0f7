import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// The coordinator's running state of the cross-job policy.
struct FleetBook {
    /// Job id → its place in the last dispatch round's order (0 = served first).
    var rank: [String: Int] = [:]
    /// Model → mean seconds of one attempt (moving average over finished attempts).
    var attemptSeconds: [String: Double] = [:]
}

/// Fleet scheduling in the coordinator: each job's share of the slots and the queueing delay
/// ahead of it (what its planner sees), which job's attempt gets a freed slot (the policy), and
/// why a job waits. The policy objects are the Planner module's, shared with `agentflow bench fleet`.
extension CoordinatorCore {
    /// Mean seconds of one attempt of `model` (observed; 30 s before anything finished).
    func attemptSeconds(_ model: String) -> Double { fleet.attemptSeconds[model] ?? 30 }

    /// Records a finished attempt's slot time for the policy (attempt lengths; tenants' usage
    /// is kept in `TenantBudgets.swift`).
    mutating func noteSlotUse(_ job: JobRun, model: String, seconds: Double) {
        guard seconds.isFinite, seconds >= 0 else { return }
        let old = fleet.attemptSeconds[model]
        fleet.attemptSeconds[model] = old.map { 0.9 * $0 + 0.1 * seconds } ?? seconds
    }

    /// Live attempts (queued or running) of `job` per model index.
    func ownAttempts(_ job: JobRun) -> [Int] {
        var own = [Int](repeating: 0, count: job.models.count)
        for a in job.live.values where own.indices.contains(a.model) { own[a.model] += 1 }
        return own
    }

    /// Queued attempts per model name, of jobs the last dispatch round ranked ahead of `job`
    /// (all other jobs' when `job` was not ranked).
    func queuedAhead(of job: JobRun) -> [String: Int] {
        let now = self.now.wall
        var ranks = fleet.rank
        if ranks[job.record.id] == nil {
            // Not ranked yet (just submitted): where the policy would put it among the jobs waiting now.
            let waiting = jobsWithQueuedAttempts().filter { $0 !== job } + [job]
            let order = options.policy.rank(waiting.map { fleetView($0, now: now) }, now: now)
            ranks = [:]
            for (place, j) in order.enumerated() { ranks[waiting[j].record.id] = place }
        }
        let mine = ranks[job.record.id]
        var ahead: [String: Int] = [:]
        for other in jobs.values where other !== job && !other.isTerminal && !other.live.isEmpty {
            if let mine, let theirs = ranks[other.record.id], theirs > mine { continue }
            for (model, n) in other.queuedByModel { ahead[model, default: 0] += n }
        }
        return ahead
    }

    /// The capacity a job's planner should expect: per model, its share of the slots serving it
    /// (the slots over the unfinished jobs that may use the model, at least one) less what it
    /// already has queued or running — or, when more, the slots that stand idle with no attempt
    /// of any job waiting for them (work-conserving: a share does not hold a job back from
    /// capacity nobody wants) — and the seconds a new attempt would queue before it starts.
    /// A job never sees zero slots only because other jobs hold them: it plans, queues and waits.
    func contentionAware(_ models: [PlanModel], for job: JobRun) -> (models: [PlanModel], wait: [Double]) {
        var out = models
        let own = ownAttempts(job)
        let ahead = queuedAhead(of: job)
        var wait = [Double](repeating: 0, count: models.count)
        for i in out.indices {
            guard let total = out[i].totalSlots, total > 0 else { continue }
            let name = out[i].name
            let competing = max(1, jobs.values.filter { !$0.isTerminal && $0.models.contains { $0.name == name } }.count)
            let share = max(1, total / competing)
            let free = out[i].freeSlots ?? total
            let waiting = jobs.values.reduce(0) { $0 + ($1.isTerminal ? 0 : $1.queuedByModel[name] ?? 0) }
            out[i].freeSlots = max(0, share - (i < own.count ? own[i] : 0), free - waiting)
            let queuedMine = job.queuedByModel[name] ?? 0
            let beyond = (ahead[name] ?? 0) + queuedMine + 1 - free
            wait[i] = beyond > 0 ? Double(beyond) * attemptSeconds(name) / Double(total) : 0
        }
        return (out, wait)
    }

    /// What the policy knows of a job with attempts waiting (its outlook only where the fleet
    /// policy or preemption reads it).
    func fleetView(_ job: JobRun, now: Double, outlook withOutlook: Bool = false) -> FleetJobView {
        let since = min(now, job.oldestQueuedAt ?? now)
        let outlook: FleetOutlook
        if options.policy.kind == .fleet || withOutlook {
            outlook = cachedOutlook(job, now: now)
        } else {
            outlook = .finished(horizon: job.record.deadline - now)
        }
        return FleetJobView(id: job.record.id, tenant: job.tenant, priority: job.record.priority, submittedAt: job.record.submittedAt,
                            deadline: job.record.deadline, waitingSince: since, outlook: outlook)
    }

    /// How old a job's outlook may be before the policy recomputes it. The outlook walks every
    /// node of the job and applies the workflow's learned estimates, so recomputing it for
    /// every job on every loop iteration made it most of the loop's work (41% of the
    /// coordinator's CPU in `agentflow bench dispatch`); attempts last seconds, so a quarter of
    /// a second of staleness does not change an order.
    static let outlookMaxAge: Double = 0.25

    func cachedOutlook(_ job: JobRun, now: Double) -> FleetOutlook {
        let mono = self.now.mono
        if let c = job.outlookCache, mono >= c.at, mono - c.at < Self.outlookMaxAge { return c.outlook }
        let state = learnedPlanState(job, now: now, models: job.models.map {
            PlanModel(name: $0.name, priceInput: $0.priceInput, priceOutput: $0.priceOutput)
        })
        let outlook = FleetOutlook.estimate(state, wait: job.models.map { _ in 0 })
        job.outlookCache = (mono, outlook)
        return outlook
    }

    /// After a dispatch round: every job that still has attempts waiting says why, with the
    /// attempts of jobs ahead of it under the policy on the same model.
    mutating func noteWaiting(_ order: [JobRun], now: Double) {
        var queuedSoFar: [String: Int] = [:]
        var served: Set<String> = []
        for w in workers.values where w.alive && w.breaker.suspendedUntil == nil && !drainedNames.contains(w.info.name) {
            served.insert(w.info.model)
        }
        for job in order {
            let mine = job.queuedByModel
            if let (model, _) = mine.sorted(by: { $0.key < $1.key }).first {
                setWaitReason(job, served.contains(model)
                    ? "waiting for a slot of model \(model); \(queuedSoFar[model] ?? 0) attempts ahead"
                    : "waiting for a worker serving model \(model)")
            } else {
                setWaitReason(job, nil)
            }
            for (m, n) in mine { queuedSoFar[m, default: 0] += n }
        }
    }

    /// Why a job's attempts wait (its view changes with it).
    mutating func setWaitReason(_ job: JobRun, _ reason: String?) {
        guard job.waitReason != reason else { return }
        job.waitReason = reason
        dirtyViews.insert(job.record.id)
    }

    /// The estimated probability that a job finishes within budget and deadline under the
    /// current load: its outlook with the queueing delay in front of each of its models.
    func successEstimate(_ job: JobRun, now: Double) -> Double? {
        guard !job.isTerminal else { return nil }
        let models = planModels(for: job)
        let capacity = contentionAware(models, for: job)
        return FleetOutlook.estimate(learnedPlanState(job, now: now, models: models), wait: capacity.wait).success
    }

    /// The job's plan state with the workflow's learned estimates applied to its nodes.
    func learnedPlanState(_ job: JobRun, now: Double, models: [PlanModel]) -> PlanState {
        var state = job.planState(now: now, models: models)
        state.nodes = books[job.workflow.name].map { $0.apply(to: job.planNodes, models: models) } ?? job.planNodes
        return state
    }

    /// `agentflow queue`: per model, the jobs with attempts waiting for its slots, in the
    /// policy's order (from the last dispatch round), with their estimate and why they wait.
    func queueEntries(now: Double) -> [QueueEntry] {
        var out: [QueueEntry] = []
        let waiting = jobs.values.filter { !$0.isTerminal && $0.hasQueued }
            .sorted { (fleet.rank[$0.record.id] ?? Int.max, $0.record.id) < (fleet.rank[$1.record.id] ?? Int.max, $1.record.id) }
        var estimates: [String: Double] = [:]
        for job in waiting { estimates[job.record.id] = successEstimate(job, now: now) ?? 0 }
        let models = Set(waiting.flatMap { $0.queuedByModel.filter { $0.value > 0 }.keys }).sorted()
        for model in models {
            var ahead = 0
            for (place, job) in waiting.enumerated() {
                let queued = job.queuedByModel[model] ?? 0
                guard queued > 0 else { continue }
                let running = job.live.values.filter { $0.record.state == .dispatched && $0.spec.model == model }.count
                out.append(QueueEntry(model: model, place: place + 1, job: job.record.id, tenant: job.tenant, priority: job.record.priority,
                                      queued: queued, running: running, success: estimates[job.record.id] ?? 0,
                                      reason: "waiting for a slot of model \(model); \(ahead) attempts ahead"))
                ahead += queued
            }
        }
        return out
    }
}
