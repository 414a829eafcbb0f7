import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Dispatch: which queued attempt goes to which free worker slot.
extension CoordinatorCore {
    /// Jobs with queued attempts, by id (the policy orders them; a total order keeps dispatch
    /// deterministic).
    func jobsWithQueuedAttempts() -> [JobRun] {
        jobs.values.filter { !$0.isTerminal && $0.hasQueued }.sorted { $0.record.id < $1.record.id }
    }

    /// Sends queued attempts to free slots of their model (the least loaded worker first, see
    /// Placement.swift), one slot at a time, to the job the
    /// cross-job policy (`fifo`, `edf` or `fleet`, see `FleetPolicy`) puts first; then says why
    /// the others wait. Each dispatch is persisted in this iteration's transaction; its message
    /// leaves after the commit. The attempt carries a time-to-live (seconds until its deadline),
    /// not a clock time.
    mutating func dispatchQueued(now: WallInstant) {
        // A job with nothing queued waits for nothing, unless its tenant's period budget holds it back.
        // (The queue counts, not `hasQueued`: that looks an attempt up per job, every iteration.)
        // Only jobs that got a reason or whose queue emptied are looked at, not every job.
        for job in tally.leftQueue where job.waitReason != nil { reasonSweep[ObjectIdentifier(job)] = job }
        tally.leftQueue.removeAll()
        for (key, job) in reasonSweep {
            guard jobs[job.record.id] === job, job.waitReason != nil, job.queuedByModel.isEmpty || job.isTerminal else {
                reasonSweep[key] = nil
                continue
            }
            if !job.waitingForSlot && job.queuedByModel.isEmpty { setWaitReason(job, tenantBook.blocked[job.record.id]) }
            if job.waitReason == nil { reasonSweep[key] = nil }
        }
        guard !tally.queued.isEmpty else {
            tally.enteredQueue.removeAll()
            return
        }
        var freeByModel: [String: [String]] = [:]
        // A worker takes attempts for its free slots and, with prefetch, that many per slot more
        // to hold queued (WorkerEntry.room). Not with preemption: an attempt committed to wait
        // behind a worker's running one could not be preempted for (the policy gives a job at
        // risk the slot a victim frees, and a prefetched attempt would take it first).
        let prefetch = options.preemption == nil ? options.prefetch : 0
        for (name, w) in workers.sorted(by: { $0.key < $1.key }) where w.room(prefetch: prefetch) > 0 { freeByModel[w.record.model, default: []].append(name) }
        // A full round ranks every job with attempts waiting, keeps that order (what a new job's
        // queueing delay and `agentflow queue` read), refreshes the admission counts and says why
        // each job waits: O(waiting jobs), so it runs at most every 0.25 s per 1,000 of them.
        // Between full rounds, a round with a free slot for some queued attempt ranks only the
        // jobs that can use one (FleetTally.waiting) — the policy's order is a strict total order
        // and fair share picks among the tenants with an eligible job, so it serves the slots as
        // a full round would, without walking the jobs that wait for busy models (10,000 of
        // them made every dispatch cost ~55 ms in `bench dispatch --queued 10000`); with no
        // free slot for any, it only tells the jobs that queued since why they wait.
        let fullRound = self.now.mono >= fleet.nextIdleRound
        if !fullRound {
            noteNewlyWaiting()
            guard freeByModel.keys.contains(where: { tally.queued[$0] != nil }) else { return }
        }
        let active = fullRound ? jobsWithQueuedAttempts() : tally.jobsWaiting(for: freeByModel.keys).filter { !$0.isTerminal && $0.hasQueued }
        guard !active.isEmpty else { return }
        if fullRound {
            tally.enteredQueue.removeAll()
            noteRoundCounts(active)
        } else if options.policy.admissionThreshold == nil {
            // The slots and queueing delays the fleet score reads: O(models + workers) without
            // admission (which counts the admitted jobs' attempts: full rounds only).
            noteRoundCounts(active)
        }
        let views = active.map { fleetView($0, now: now) }
        var order = options.policy.dispatchOrder(views, now: now.secondsSince1970, usage: fairShareUsage(now: now))
        if fullRound {
            fleet.order = order.ranked.map { active[$0] }
            fleet.orderViews = order.ranked.map { views[$0] }
            fleet.orderScores = options.policy.kind == .fleet ? order.ranked.map { options.policy.fleetScore(views[$0], now: now.secondsSince1970) } : []
            fleet.orderAt = now
            fleet.nextIdleRound = self.now.mono + .clampedSeconds(0.25 * max(1, Double(active.count) / 1_000))
        }
        // Queued attempts per job and model, kept as attempts leave the queue.
        var queued: [[String: Int]] = active.map { job in
            assert(job.queueCountsAreConsistent, "job \(job.record.id): queued/dispatched counts disagree with its live attempts")
            return job.queuedByModel
        }
        // A job can take a slot while it has an attempt queued for a model with a free one; only
        // those stay in the order this round (this only turns false as slots fill).
        func eligible(_ k: Int) -> Bool { queued[k].keys.contains { freeByModel[$0] != nil } }
        order.keep(where: eligible)
        while !freeByModel.isEmpty {
            guard let j = order.next(where: eligible) else { break }
            let job = active[j]
            // The job's oldest queued attempt whose model has a free slot (read in place: a
            // `live[id]` read per queued attempt looked at copied the attempt, spec and all).
            var found: Dictionary<AttemptID, LiveAttempt>.Index?
            if job.hasQueued {
                for k in job.queueHead..<job.queue.count {
                    guard let i = job.live.index(forKey: job.queue[k]), job.live.values[i].record.state == .queued,
                          freeByModel[job.live.values[i].spec.model] != nil else { continue }
                    found = i
                    break
                }
            }
            guard let slot = found else {
                queued[j] = [:]
                continue
            }
            let id = job.live.keys[slot]
            var a = job.live.values[slot]
            guard var names = freeByModel[a.spec.model], let pick = chooseWorker(names), workers[names[pick]] != nil else { break }
            let name = names[pick]
            a.record.state = .dispatched
            a.record.worker = name
            a.record.dispatchedAt = now
            a.heardAt = self.now.mono
            // DESIGN §6: an attempt carries min(job deadline, planned end), as a time-to-live.
            a.record.deadline = attemptDeadline(job, a, now: now)
            a.ttl = .clampedSeconds(a.record.deadline.seconds(since: now))
            a.spec.ttl = a.ttl
            // With prefetch the attempt may wait at the worker: its ttl counts from its start
            // there, and the job's time left bounds when it may start and how long it may run.
            if prefetch > 0 { a.spec.jobTTL = .clampedSeconds(job.record.deadline.seconds(since: now)) }
            a.spec.transcriptBytes = options.transcripts.perAttempt
            if options.traces {
                let m = job.models[a.model]
                a.spec.trace = TraceContext(traceparent: TraceIDs.traceparent(attempt: id), priceInput: m.priceInput, priceOutput: m.priceOutput)
            }
            // It starts at once on a free slot, else waits queued at the worker (no slot yet).
            let room = workers[name]!.assign(id, sequence: stats.dispatched + 1, prefetch: prefetch)
            a.startedAt = room.started ? now : nil
            job.live.values[slot] = a
            job.dispatched(a)
            if room.left == 0 { names.remove(at: pick) }
            freeByModel[a.spec.model] = names.isEmpty ? nil : names
            queued[j][a.spec.model, default: 1] -= 1
            if queued[j][a.spec.model] == 0 { queued[j][a.spec.model] = nil }
            // What this round gave the tenant, in the same units as its usage (TenantBudgets.swift).
            order.charge(j, seconds: expectedUsage(job, a, worker: name))
            persist(.dispatched(id, worker: name, at: now, deadline: a.record.deadline))
            send(.dispatch(a.spec), to: workers[name]!.identity)
            noteDispatch(a, worker: name, now: now)
            stats.dispatched += 1
            if options.recordRoundTrips { dispatchTimes[id] = self.now.mono }
            // The planner's clock for a batch starts when its first attempt runs, not when it queued.
            if let l = job.launchedAt[a.node], !job.batchRunning.contains(a.node) {
                job.launchedAt[a.node] = (l.model, now)
                job.batchRunning.insert(a.node)
            }
            if job.record.state == .queued {
                // Admitted: the job runs from its first slot on.
                setState(job, .running)
                job.record.startedAt = now
                persist(.updateJob(job.record))
            }
        }
        if fullRound { noteWaiting(fleet.order, now: now) }
    }
}

extension CoordinatorCore {
    /// The sooner of the job's deadline and the attempt's planned end: its dispatch plus
    /// ``Deadlines/plannedAllowance(expectedSeconds:)`` of what its (subtask, model) pair is
    /// expected to take — learned from finished attempts of the workflow where there are any.
    func attemptDeadline(_ job: JobRun, _ a: LiveAttempt, now: WallInstant) -> WallInstant {
        let node = job.planNodes[a.node]
        let prior = node.estimates.indices.contains(a.model) ? node.estimates[a.model] : nil
        let expected = books[job.workflow.name].map { $0.estimate(subtask: node.id, model: a.spec.model, prior: prior).seconds }
            ?? prior?.seconds ?? Deadlines.minimumAllowance
        return Deadlines.attemptDeadline(job: job.record.deadline, plannedEnd: now.adding(seconds: Deadlines.plannedAllowance(expectedSeconds: expected)))
    }
}
