import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Planning: which attempts to launch for a job, and reserving budget for them.
extension CoordinatorCore {
    /// Models the job may use, with the slots alive workers offer for each.
    func planModels(for job: JobRun) -> [PlanModel] {
        job.models.map { m in
            let serving = workers.values.filter { $0.alive && $0.breaker.suspendedUntil == nil && $0.record.model == m.name }
            return PlanModel(name: m.name, priceInput: m.priceInput, priceOutput: m.priceOutput,
                             freeSlots: serving.reduce(0) { $0 + $1.free }, totalSlots: serving.reduce(0) { $0 + $1.record.slots })
        }
    }

    /// Decides what to launch for a job: at once for cheap planners (`seq:K`); for MCPP, a
    /// `PlanRequest` the shell hands to the planning thread after the commit. Decisions are
    /// applied by `apply`.
    mutating func plan(_ job: JobRun, now: WallInstant) {
        job.needsPlanning = false
        guard !job.isTerminal, !job.planning else { return }
        if job.done.count == job.planNodes.count {
            end(job, .succeeded, reason: "all \(job.planNodes.count) subtasks passed", now: now)
            return
        }
        // The planner only acts on ready nodes; with none, there is nothing to decide.
        if job.ready.isEmpty && !job.live.isEmpty && job.record.minSuccess == nil { return }
        var models = planModels(for: job)
        // Prefer models someone serves; if none is served yet, plan anyway and wait for workers.
        let served = Set(models.indices.filter { (models[$0].totalSlots ?? 0) > 0 })
        if served.isEmpty {
            for i in models.indices { models[i].freeSlots = nil; models[i].totalSlots = nil }
        }
        enterOrder(job, now: now)
        let capacity = contentionAware(models, for: job)
        var state = job.planState(now: now, models: capacity.models)
        state.queueWait = capacity.wait
        state.nodes = job.nodes(servedBy: served.isEmpty ? Set(models.indices) : served)
        if job.planner is SequentialPlanner {
            // Cheap: decided at once, in this batch.
            let d = PlanRequest(job: job.record.id, version: job.version, planner: job.planner, state: state, wantCompletion: false).decide()
            noteDecision(job, launches: d.launches, milliseconds: d.milliseconds)
            apply(job, launches: d.launches, completion: nil, version: job.version, now: now)
            return
        }
        state.estimateBook = books[job.workflow.name]
        for (node, l) in job.launchedAt where job.inFlight[node] != nil {
            state.inFlightDetail[node] = InFlightDetail(model: l.model, elapsed: now.seconds(since: l.at))
        }
        job.planning = true
        out.plans.append(PlanRequest(job: job.record.id, version: job.version, planner: job.planner, state: state,
                                        wantCompletion: job.record.minSuccess != nil))
    }

    /// A planner's decision: reserve and queue what it launches.
    mutating func planned(_ d: PlanDecision) {
        guard let job = jobs[d.job] else { return }
        noteDecision(job, launches: d.launches, milliseconds: d.milliseconds)
        job.planning = false
        if d.version != job.version { markForPlanning(job) }
        let guarded = CrashGuard.enter(job.record.id)
        defer { CrashGuard.leave(restoring: guarded) }
        apply(job, launches: d.launches, completion: d.completion, version: d.version, now: now.wall)
    }

    /// Reserves budget for a decision's launches and queues the attempts. Launches for nodes
    /// that are no longer ready (the job moved on while the planner thought) are dropped.
    mutating func apply(_ job: JobRun, launches: [Launch], completion: Double?, version: Int, now: WallInstant, fallback: Bool = false) {
        guard !job.isTerminal else { return }
        if let min = job.record.minSuccess, let p = completion, p < min {
            end(job, .infeasible, reason: String(format: "estimated completion probability %.3f is below --min-success %.3f", p, min), now: now)
            return
        }
        var launchedAny = false
        var tenantShort: String?
        for launch in launches where job.ready.contains(launch.node) && job.models.indices.contains(launch.model) {
            let subtask = job.workflow.subtasks[launch.node]
            let model = job.models[launch.model]
            let cap = subtask.tokenCap(on: model)
            let amount = Amount(tokens: cap, usd: NanoUSD(usd: model.worstCaseUSD(tokens: cap)))
            var sub = job.subtasks[subtask.id]!
            // A planner's sample count is clamped: one launch never loops more than this.
            for _ in 0..<min(max(1, launch.samples), Limits.maxSamples) {
                if let max = subtask.maxAttempts, job.attemptsCounted(sub) >= max { break }
                let id = AttemptID(job: job.record.id, subtask: subtask.id, n: sub.attempts + 1)
                // The tenant's period budget first (TenantBudgets.swift): a job waits for it, never ends for it.
                if let short = tenantShortfall(job, amount) {
                    tenantShort = short
                    break
                }
                do {
                    try job.ledger.reserve(amount, for: id)
                } catch {
                    break
                }
                reserveForTenant(job, amount, id)
                sub.attempts += 1
                sub.state = .running
                let rec = AttemptRecord(id: id, model: model.name, state: .queued, tokenCap: cap, reserved: amount,
                                        deadline: job.record.deadline, createdAt: now)
                job.add(LiveAttempt(record: rec, spec: job.spec(for: rec), node: launch.node, model: launch.model))
                job.launchedAt[launch.node] = (launch.model, now)
                job.batchRunning.remove(launch.node)
                persist(.attempt(rec))
                noteQueued(rec, now: now)
                launchedAny = true
            }
            job.subtasks[subtask.id] = sub
            persist(.subtask(sub))
        }
        if let short = tenantShort {
            blockOnTenantBudget(job, short)
            return
        }
        if launchedAny { unblockTenantBudget(job) }
        if !launchedAny && job.live.isEmpty && version == job.version {
            // A busy fleet never ends a job: with every slot of its models taken by other jobs,
            // it waits and plans again when a slot frees.
            if let busy = busyModel(for: job) {
                setWaitReason(job, "waiting for a slot of model \(busy); every slot is taken by other jobs")
                job.waitingForSlot = true
                job.waitingSince = slotsFreed
                slotWaiters.insert(job.record.id)
                return
            }
            // The planner expects nothing to help (the queue ahead may eat the job's time): without
            // --min-success the job is not dropped; it keeps trying until its deadline or budget ends it.
            if job.record.minSuccess == nil && !fallback {
                let models = planModels(for: job)
                let served = Set(models.indices.filter { (models[$0].totalSlots ?? 0) > 0 })
                var state = job.planState(now: now, models: models)
                state.nodes = job.nodes(servedBy: served.isEmpty ? Set(models.indices) : served)
                let extra = keepTrying(state)
                if !extra.isEmpty {
                    apply(job, launches: extra, completion: nil, version: version, now: now, fallback: true)
                    return
                }
            }
            endStuck(job, now: now)
        }
    }

    /// A model the job could use whose workers are all busy, when the job's budget still covers an
    /// attempt on it (`nil`: the job is not merely waiting for a slot).
    func busyModel(for job: JobRun) -> String? {
        let remaining = job.workflow.subtasks.indices.filter { !job.done.contains($0) }
        for m in job.models {
            // Every slot running another attempt (a suspended or draining worker is not busy).
            let serving = workers.values.filter { $0.alive && $0.record.model == m.name }
            guard !serving.isEmpty, serving.allSatisfy({ $0.running.count >= $0.record.slots }) else { continue }
            let fits = remaining.contains { i in
                let cap = job.workflow.subtasks[i].tokenCap(on: m)
                return job.ledger.fits(Amount(tokens: cap, usd: NanoUSD(usd: m.worstCaseUSD(tokens: cap))))
            }
            if fits { return m.name }
        }
        return nil
    }
}
