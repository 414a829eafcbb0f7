import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// The coordinator's running state of the cross-job policy.
struct FleetBook {
    /// The last full dispatch round's order of the jobs with attempts waiting (best first), with
    /// the view and fleet score each was ranked by; a job planned since is inserted where the
    /// policy puts it (`FleetScheduling.place`), so ranking a new job is a binary search, not a
    /// sort of every waiting job.
    var order: [JobRun] = []
    var orderViews: [FleetJobView] = []
    /// Fleet scores as of `orderAt` (aging shifts every waiting job's score alike).
    var orderScores: [Double] = []
    var orderAt = WallInstant(secondsSince1970: 0)
    /// Monotonic time before which a round that can dispatch nothing need not rank every job.
    var nextIdleRound = MonotonicInstant.origin
    /// Model → mean seconds of one attempt (moving average over finished attempts).
    var attemptSeconds: [String: Double] = [:]
    /// As of the last full round, for the fleet policy's admission test: per model, the queued
    /// attempts of admitted (`running`) jobs, and the free and total slots of live workers.
    var admittedQueued: [String: Int] = [:]
    var slots: [String: (free: Int, total: Int)] = [:]
    /// As of the last full round, per model served by a live worker: seconds a newly queued
    /// attempt would wait for a slot (the fleet score's delay for a job passed over).
    var queueDelay: [String: Double] = [:]
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

    /// Where the policy would insert `job`, not in the kept order, found by binary search against
    /// the views and scores the order was ranked by.
    func place(of job: JobRun, now: WallInstant) -> (index: Int, view: FleetJobView, score: Double) {
        let view = fleetView(job, now: now)
        let policy = options.policy
        // The job's score shifted back to when the order was ranked.
        let score = policy.kind == .fleet ? policy.fleetScore(view, now: now.secondsSince1970) - now.seconds(since: fleet.orderAt) * policy.agingPerSecond : 0
        var low = 0, high = fleet.order.count
        while low < high {
            let mid = (low + high) / 2
            if policy.precedes(fleet.orderViews[mid], fleet.orderScores.isEmpty ? 0 : fleet.orderScores[mid], view, score) {
                low = mid + 1
            } else {
                high = mid
            }
        }
        return (low, view, score)
    }

    /// Puts a job not in the kept order where the policy ranks it (a job being planned), and
    /// gives it its place in the attempts-ahead index between its neighbours.
    mutating func enterOrder(_ job: JobRun, now: WallInstant) {
        guard !tally.ahead.contains(job) else { return }
        let p = place(of: job, now: now)
        fleet.order.insert(job, at: p.index)
        fleet.orderViews.insert(p.view, at: p.index)
        if options.policy.kind == .fleet { fleet.orderScores.insert(p.score, at: p.index) }
        tally.ahead.insert(job, after: p.index > 0 ? fleet.order[p.index - 1] : nil,
                           before: p.index + 1 < fleet.order.count ? fleet.order[p.index + 1] : nil)
    }

    /// Queued attempts per model name of the unfinished jobs ranked ahead of `job`: for a job in
    /// the kept order, those of the jobs before it now (`AheadIndex`: kept as attempts enter and
    /// leave the queue, so dispatch rounds between full rounds leave it current); otherwise
    /// counted where the policy would insert it.
    func queuedAhead(of job: JobRun) -> [String: Int] {
        if let ahead = tally.ahead.ahead(of: job) { return ahead }
        return queuedAhead(of: job, at: place(of: job, now: self.now.wall).index)
    }

    /// The queued attempts of the jobs before `index` in the kept order, summed over the shorter
    /// side: those jobs, or every queued attempt (`FleetTally`) less the job's own and those of
    /// the jobs from `index` on (none for a new job under `fifo`).
    func queuedAhead(of job: JobRun, at index: Int) -> [String: Int] {
        if index <= fleet.order.count - index {
            var ahead: [String: Int] = [:]
            for other in fleet.order[..<index] where other !== job && !other.isTerminal {
                for (model, n) in other.queuedByModel { ahead[model, default: 0] += n }
            }
            return ahead
        }
        var ahead = tally.queued
        func drop(_ counts: [String: Int]) {
            for (model, n) in counts { if let c = ahead[model] { ahead[model] = c > n ? c - n : nil } }
        }
        if !job.isTerminal { drop(job.queuedByModel) }
        for other in fleet.order[index...] where other !== job && !other.isTerminal { drop(other.queuedByModel) }
        return ahead
    }

    /// The capacity a job's planner should expect: per model, its share of the slots serving it
    /// (the slots over the unfinished jobs that may use the model, at least one) less what it
    /// already has queued or running — or, when more, the slots that stand idle with no attempt
    /// of any job waiting for them (work-conserving: a share does not hold a job back from
    /// capacity nobody wants) — and the seconds a new attempt would queue before it starts.
    /// A job never sees zero slots only because other jobs hold them: it plans, queues and waits.
    func contentionAware(_ models: [PlanModel], for job: JobRun) -> (models: [PlanModel], wait: [Double]) {
        assert(tally.agrees(with: jobs.values), "the fleet tally disagrees with the jobs")
        assert(tally.ahead.agrees(with: fleet.order), "the attempts-ahead index disagrees with the kept order")
        var out = models
        if options.plansBlind {
            for i in out.indices { out[i].freeSlots = out[i].totalSlots }
            return (out, [Double](repeating: 0, count: models.count))
        }
        let own = ownAttempts(job)
        let ahead = queuedAhead(of: job)
        var wait = [Double](repeating: 0, count: models.count)
        for i in out.indices {
            guard let total = out[i].totalSlots, total > 0 else { continue }
            let name = out[i].name
            // Fleet-wide counts, kept as jobs and attempts come and go (FleetTally.swift).
            let competing = max(1, tally.competing[name] ?? 0)
            let share = max(1, total / competing)
            let free = out[i].freeSlots ?? total
            let waiting = tally.queued[name] ?? 0
            out[i].freeSlots = max(0, share - (i < own.count ? own[i] : 0), free - waiting)
            let queuedMine = job.queuedByModel[name] ?? 0
            let beyond = (ahead[name] ?? 0) + queuedMine + 1 - free
            wait[i] = beyond > 0 ? Double(beyond) * attemptSeconds(name) / Double(total) : 0
        }
        return (out, wait)
    }

    /// What the policy knows of a job with attempts waiting (its outlook only where the fleet
    /// policy or preemption reads it; the wait before it would start only where admission does).
    func fleetView(_ job: JobRun, now: WallInstant, outlook withOutlook: Bool = false) -> FleetJobView {
        let since = min(now, job.oldestQueuedAt ?? now)
        let outlook: FleetOutlook
        if options.policy.kind == .fleet || withOutlook {
            outlook = cachedOutlook(job, now: now)
        } else {
            outlook = .finished(horizon: job.record.deadline.seconds(since: now))
        }
        let admitted = job.record.state != .queued
        return FleetJobView(id: job.record.id, tenant: job.tenant, priority: job.record.priority, submittedAt: job.record.submittedAt.secondsSince1970,
                            deadline: job.record.deadline.secondsSince1970, waitingSince: since.secondsSince1970, outlook: outlook, admitted: admitted,
                            startWait: admitted || options.policy.admissionThreshold == nil ? 0 : startWait(job),
                            queueDelay: options.policy.kind == .fleet ? queueDelay(job) : nil)
    }

    /// Seconds a job's attempts would wait if passed over now: the queueing delay in front of the
    /// soonest of the models it has queued for, as of the last full round (`nil` when no live
    /// worker serves any of them, or before the first round: the policy's default delay).
    func queueDelay(_ job: JobRun) -> Double? {
        var best: Double?
        for model in job.queuedByModel.keys {
            guard let d = fleet.queueDelay[model] else { continue }
            best = min(best ?? d, d)
        }
        return best
    }

    /// Seconds a job not yet admitted would wait for its first slot behind the admitted jobs'
    /// queued attempts (as of the last full round), on the soonest of the models it has queued
    /// for: the attempts beyond the free slots, served `total` at a time, each for the model's
    /// mean attempt length. Infinite when no live worker serves any of them.
    func startWait(_ job: JobRun) -> Double {
        var best = Double.infinity
        for model in job.queuedByModel.keys {
            guard let s = fleet.slots[model], s.total > 0 else { continue }
            let beyond = (fleet.admittedQueued[model] ?? 0) + 1 - s.free
            best = min(best, beyond > 0 ? Double(beyond) * attemptSeconds(model) / Double(s.total) : 0)
        }
        return best
    }

    /// Refreshes, at a full round, what the fleet score and the admission test read: per model,
    /// the live workers' free and total slots, the queueing delay in front of it (the attempts
    /// waiting for it — queued here, and held queued at workers with prefetch — beyond the free
    /// slots, served `total` at a time, each for the model's mean attempt length) and, only when
    /// the policy admits, the admitted jobs' queued attempts (O(models + workers), plus
    /// O(active jobs) when admitting).
    mutating func noteRoundCounts(_ active: [JobRun]) {
        guard options.policy.kind == .fleet else { return }
        var slots: [String: (free: Int, total: Int)] = [:]
        var held: [String: Int] = [:]
        for w in workers.values where w.alive && w.breaker.suspendedUntil == nil && !drainedNames.contains(w.record.name) {
            let s = slots[w.record.model] ?? (0, 0)
            slots[w.record.model] = (s.free + w.free, s.total + w.record.slots)
            held[w.record.model, default: 0] += w.queued.count
        }
        fleet.slots = slots
        var delay: [String: Double] = [:]
        for (model, queued) in tally.queued {
            guard let s = slots[model], s.total > 0 else { continue }
            let beyond = queued + (held[model] ?? 0) - s.free
            delay[model] = beyond > 0 ? Double(beyond) * attemptSeconds(model) / Double(s.total) : 0
        }
        fleet.queueDelay = delay
        guard options.policy.admissionThreshold != nil else { return }
        var queued: [String: Int] = [:]
        for job in active where job.record.state != .queued {
            for (model, n) in job.queuedByModel { queued[model, default: 0] += n }
        }
        fleet.admittedQueued = queued
    }

    /// How old a job's outlook may be before the policy recomputes it. The outlook walks every
    /// node of the job and applies the workflow's learned estimates, so recomputing it for
    /// every job on every loop iteration made it most of the loop's work (41% of the
    /// coordinator's CPU in `agentflow bench dispatch`); attempts last seconds, so a quarter of
    /// a second of staleness does not change an order.
    static let outlookMaxAge: Duration = .milliseconds(250)

    func cachedOutlook(_ job: JobRun, now: WallInstant) -> FleetOutlook {
        let mono = self.now.mono
        if let c = job.outlookCache, mono >= c.at, mono - c.at < Self.outlookMaxAge { return c.outlook }
        let state = learnedPlanState(job, now: now, models: job.models.map {
            PlanModel(name: $0.name, priceInput: $0.priceInput, priceOutput: $0.priceOutput)
        })
        let outlook = FleetOutlook.estimate(state, wait: job.models.map { _ in 0 }, order: job.topologicalOrder)
        job.outlookCache = (mono, outlook)
        return outlook
    }

    /// After a dispatch round: every job that still has attempts waiting says why, with the
    /// attempts of jobs ahead of it under the policy on the same model.
    mutating func noteWaiting(_ order: [JobRun], now: WallInstant) {
        var queuedSoFar: [String: Int] = [:]
        var served: Set<String> = []
        for w in workers.values where w.alive && w.breaker.suspendedUntil == nil && !drainedNames.contains(w.record.name) {
            served.insert(w.record.model)
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
        tally.ahead.rebuild(order)
    }

    /// Between full rounds: the jobs whose attempts began waiting since the last one say why,
    /// counting the attempts of the jobs the kept order puts ahead of them.
    mutating func noteNewlyWaiting() {
        guard !tally.enteredQueue.isEmpty else { return }
        let entered = tally.enteredQueue
        tally.enteredQueue.removeAll()
        var served: Set<String> = []
        for w in workers.values where w.alive && w.breaker.suspendedUntil == nil && !drainedNames.contains(w.record.name) {
            served.insert(w.record.model)
        }
        var seen = Set<ObjectIdentifier>()
        for job in entered where !job.isTerminal && seen.insert(ObjectIdentifier(job)).inserted {
            guard let model = job.queuedByModel.keys.min() else { continue }
            enterOrder(job, now: now.wall)
            setWaitReason(job, served.contains(model)
                ? "waiting for a slot of model \(model); \(queuedAhead(of: job)[model] ?? 0) attempts ahead"
                : "waiting for a worker serving model \(model)")
        }
    }

    /// Why a job's attempts wait (its view changes with it).
    mutating func setWaitReason(_ job: JobRun, _ reason: String?) {
        guard job.waitReason != reason else { return }
        job.waitReason = reason
        if reason != nil { reasonSweep[ObjectIdentifier(job)] = job }
        dirtyViews.insert(job.record.id)
    }

    /// The estimated probability that a job finishes within budget and deadline under the
    /// current load: its outlook with the queueing delay in front of each of its models.
    func successEstimate(_ job: JobRun, now: WallInstant) -> Double? {
        guard !job.isTerminal else { return nil }
        let models = planModels(for: job)
        let capacity = contentionAware(models, for: job)
        return FleetOutlook.estimate(learnedPlanState(job, now: now, models: models), wait: capacity.wait, order: job.topologicalOrder).success
    }

    /// The job's plan state with the workflow's learned estimates applied to its nodes.
    func learnedPlanState(_ job: JobRun, now: WallInstant, models: [PlanModel]) -> PlanState {
        var state = job.planState(now: now, models: models)
        state.nodes = books.learnedNodes(job, models: models)
        return state
    }

    /// `agentflow queue`: per model, the jobs with attempts waiting for its slots, in the
    /// policy's order (from the last dispatch round), with their estimate and why they wait.
    func queueEntries(now: WallInstant) -> [QueueEntry] {
        var out: [QueueEntry] = []
        var rank: [String: Int] = [:]
        for (place, job) in fleet.order.enumerated() where rank[job.record.id] == nil { rank[job.record.id] = place }
        let waiting = jobs.values.filter { !$0.isTerminal && $0.hasQueued }
            .sorted { (rank[$0.record.id] ?? Int.max, $0.record.id) < (rank[$1.record.id] ?? Int.max, $1.record.id) }
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
