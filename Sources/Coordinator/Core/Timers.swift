import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// The tick: heartbeats, dead workers, job deadlines, unclaimed and silent attempts, then
/// planning and dispatch, then the batch's closing writes and the live views. The shell hands
/// the core a tick at the end of every batch of events and by ``CoreActions/wakeAt`` at the latest.
extension CoordinatorCore {
    mutating func tick() {
        let now = self.now.wall, mono = self.now.mono
        tenantTick()
        if mono >= nextHeartbeat {
            for w in workers.values where w.alive { send(.heartbeat, to: w.identity) }
            nextHeartbeat = mono + options.heartbeat
        }
        for (name, w) in workers where w.alive && mono - w.lastSeen > deadAfter {
            declareDead(name, reason: "worker \(name) silent for \(formatDuration((mono - w.lastSeen).seconds))", now: now)
        }
        for (name, var w) in workers where w.breaker.suspendedUntil.map({ $0 <= mono }) ?? false {
            // The cooldown is over: one more round of attempts tries the backend again.
            w.breaker.suspendedUntil = nil
            workers[name] = w
            slotsFreed += 1
            noteBreaker(name, opened: false, breaker: w.breaker)
            if w.alive { saveWorkerState(w, state: .alive) }
            touchAll()
        }
        // The silent-attempt scan walks every live attempt (queued ones too: 20,000 at the start
        // of `bench dispatch`); once per heartbeat is enough for a timeout of TTL + grace, and
        // running it every loop iteration was a third of the coordinator's time there.
        let scanSilent = mono >= nextSilentScan
        if scanSilent { nextSilentScan = mono + options.heartbeat }
        // Only jobs with attempts waiting for a claim, and only the jobs whose deadline is due,
        // are looked at every iteration; the walk over every job is once per heartbeat.
        for id in claimWaiting.sorted() {
            guard let job = jobs[id] else {
                claimWaiting.remove(id)
                continue
            }
            for id in job.unclaimed {
                if let c = job.live[id]?.claimBy, mono >= c { loseAttempt(id, reason: "no worker claimed it after the coordinator restarted", now: now) }
            }
            if job.unclaimed.isEmpty { claimWaiting.remove(id) }
        }
        if scanSilent {
            // Only dispatched attempts can be silent: a job's `dispatchedIDs`, not its every live
            // attempt (at 10,000 queued jobs this walked some 10,000 queued attempts once a second),
            // and only the jobs that hold one (`HoldingJobs`), not every job. Sorted: reclaiming
            // writes and sends, in an order that does not depend on the set's layout.
            assert(holding.agrees(with: jobs.values), "the jobs holding dispatched attempts disagree with a walk over every job")
            for job in holding.byID.values.sorted(by: { $0.record.id < $1.record.id }) {
                // An attempt its worker has said nothing about (no progress, no result) for its whole
                // time-to-live plus a grace period is reclaimed: charged in full, re-planned, and its
                // worker told to stop, so no reservation is held forever.
                for id in job.dispatchedIDs {
                    // One queued at its worker (prefetched, not started) is not silent: its time
                    // counts from when it takes a slot (leaveWorker).
                    guard let a = job.live[id], a.record.state == .dispatched, a.startedAt != nil,
                          a.unclaimedAfter(now: mono, grace: reclaimGrace) else { continue }
                    if let w = a.record.worker, let worker = workers[w], worker.alive {
                        send(.cancel(id: id), to: worker.identity)
                        leaveWorker(id, w)
                        slotsFreed += 1
                    }
                    loseAttempt(id, reason: "its worker said nothing about it for \(formatDuration((mono - a.heardAt).seconds)) past its deadline", now: now)
                }
            }
        }
        endJobsPastDeadline(now: now)
        endJobsWhoseBackendsAreDown(now: now)
        // A job waiting for a slot plans again once one has freed since it began waiting (not at
        // every tick while some slot it chose not to use stands free: that replanned every waiting
        // job on every loop iteration).
        // (After a sweep at `slotsFreed` S every waiting job began waiting at S or later, so none
        // qualifies until `slotsFreed` moves.)
        if waitSweptAt != slotsFreed, workers.values.contains(where: { $0.free > 0 }) {
            waitSweptAt = slotsFreed
            assert(Set(jobs.values.filter(\.waitingForSlot).map(\.record.id)).isSubset(of: slotWaiters), "a job waits for a slot outside slotWaiters")
            for id in slotWaiters.sorted() {
                guard let job = jobs[id], job.waitingForSlot else {
                    slotWaiters.remove(id)
                    continue
                }
                guard job.waitingSince < slotsFreed else { continue }
                job.waitingForSlot = false
                slotWaiters.remove(id)
                touch(job)
            }
        }
        planMarkedJobs(now: now)
        dispatchQueued(now: now)
        preemptForJobsAtRisk(now: now)
        readGauges(now: now)
        // Keep the most recently finished jobs at hand; older ones are read back from the store.
        for id in endedPending.sorted() {
            guard let job = jobs[id], job.isTerminal else {
                endedPending.remove(id)
                continue
            }
            if job.live.isEmpty && !recentlyFinished.contains(id) {
                recentlyFinished.append(id)
                endedPending.remove(id)
            }
        }
        writeDirtyJobRows()
        writeTenantUsage()
        publishViews()
        while recentlyFinished.count > 64 {
            let id = recentlyFinished.removeFirst()
            if let job = jobs[id], job.isTerminal && job.live.isEmpty {
                tally.ended(job)
                holding.forget(job)
                jobs[id] = nil
                publishedEstimates[id] = nil
                out.forgotten.append(id)
            } else if let job = jobs[id], job.isTerminal {
                endedPending.insert(id)
            }
        }
        out.wakeAt = mono + nextWake()
    }

    /// Plans the jobs marked since the last tick (`planCandidates`), in id order, each at most
    /// once per tick; one marked by another's plan in this pass is planned in it too. No walk
    /// over every job: at 10,000 queued jobs that walk was 12% of the coordinator's time.
    mutating func planMarkedJobs(now: WallInstant) {
        var planned: Set<String> = []
        while case let due = planCandidates.subtracting(planned), !due.isEmpty {
            for id in due.sorted() {
                planCandidates.remove(id)
                planned.insert(id)
                guard let job = jobs[id], job.needsPlanning, !job.isTerminal else { continue }
                let guarded = CrashGuard.enter(id)
                plan(job, now: now)
                CrashGuard.leave(restoring: guarded)
            }
        }
        #if DEBUG
        // Every job that needs a plan was listed: none is left behind by a path that set the
        // flag without `markForPlanning`/`touch` (debug builds only: this is the walk it saves).
        for job in jobs.values where job.needsPlanning && !job.isTerminal {
            assert(planCandidates.contains(job.record.id), "job \(job.record.id) needs planning but is not a candidate")
        }
        #endif
    }

    /// Ends the jobs whose deadline has passed, soonest first, and drops the heap's entries of
    /// jobs that ended otherwise, so its top is the next deadline to come.
    mutating func endJobsPastDeadline(now: WallInstant) {
        while let top = deadlines.first {
            guard let job = jobs[top.job], !job.isTerminal else {
                _ = deadlines.popFirst()
                continue
            }
            guard job.record.deadline == top.at else {
                // Not this job's deadline (any more): keep the one it has.
                _ = deadlines.popFirst()
                deadlines.push(job.record.deadline, job: top.job)
                continue
            }
            guard now >= top.at else { break }
            _ = deadlines.popFirst()
            end(job, .deadlineExceeded,
                reason: "deadline passed with \(job.done.count) of \(job.planNodes.count) subtasks done" + backendTrouble(for: job),
                now: now)
        }
        // Entries of jobs that ended before their deadline wait deep in the heap; rebuild it
        // when they outnumber the live ones.
        if deadlines.count > 2 * jobs.count + 1_024 {
            deadlines.rebuild(jobs.values.filter { !$0.isTerminal }.map { ($0.record.deadline, $0.record.id) })
        }
    }

    /// How long until the next timer: the heartbeat, a cooldown or claim (monotonic), a job
    /// deadline (wall clock: the span to it, from the wall reading, counted on the monotonic one).
    func nextWake() -> Duration {
        let now = self.now.wall, mono = self.now.mono
        var wait = nextHeartbeat - mono
        // `tick` left the soonest deadline of an unfinished job on top.
        if let soonest = deadlines.first, !soonest.at.secondsSince1970.isNaN { wait = min(wait, .clampedSeconds(soonest.at.seconds(since: now))) }
        for w in workers.values { if let until = w.breaker.suspendedUntil { wait = min(wait, until - mono) } }
        for id in claimWaiting {
            guard let job = jobs[id] else { continue }
            for id in job.unclaimed { if let c = job.live[id]?.claimBy { wait = min(wait, c - mono) } }
        }
        return max(.zero, min(wait, options.heartbeat))
    }
}
