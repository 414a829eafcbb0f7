import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Job lifecycle and timers: ending jobs, why a job is stuck, the loop's timers.
extension Coordinator {
    // MARK: - Job lifecycle

    func end(_ job: JobRun, _ state: JobState, reason: String, now: Double) throws {
        guard !job.isTerminal else { return }
        job.record.state = state
        job.record.reason = reason
        job.record.endedAt = now
        for id in Array(job.live.keys) { try cancelAttempt(job, id, reason: reason, now: now) }
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
        let failing = workers.sorted { $0.key < $1.key }.filter { models.contains($0.value.info.model) && $0.value.breaker.trips > 0 }
        return failing.map { "; worker \($0.key)'s model server keeps failing (\($0.value.breaker.problem ?? "no detail"))" }.joined()
    }



    /// Nothing runs and the planner launched nothing: say why the job cannot go on.
    func endStuck(_ job: JobRun, now: Double) throws {
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
            try end(job, .budgetExhausted,
                    reason: "what is left of the budget (\(left.joined(separator: ", "))) cannot cover another attempt; \(job.done.count) of \(job.planNodes.count) subtasks passed",
                    now: now)
        } else if let failed = job.workflow.subtasks.first(where: { s in
            (s.maxAttempts.map { job.subtasks[s.id]!.attempts >= $0 } ?? false) && job.subtasks[s.id]!.state != .succeeded
        }) {
            try end(job, .failed, reason: "subtask '\(failed.id)' used all \(failed.maxAttempts!) attempts without passing", now: now)
        } else {
            try end(job, .infeasible,
                    reason: "planner \(job.planner.name) launches nothing more: it expects no attempt that fits the remaining budget and time to help; \(job.done.count) of \(job.planNodes.count) subtasks passed",
                    now: now)
        }
    }



    /// Timers: heartbeats, dead workers, job deadlines, unclaimed attempts after a restart,
    /// then planning and dispatch.
    func tick() throws {
        let now = time.now, mono = monotonicNow
        if mono >= nextHeartbeat {
            for w in workers.values where w.alive { send(.heartbeat, to: w.identity) }
            nextHeartbeat = mono + options.heartbeat
        }
        for (name, w) in workers where w.alive && mono - w.lastSeen > deadAfter {
            try declareDead(name, reason: "worker \(name) silent for \(formatDuration(mono - w.lastSeen))", now: now)
        }
        for (name, var w) in workers where (w.breaker.suspendedUntil ?? .infinity) <= mono {
            // The cooldown is over: one more round of attempts tries the backend again.
            w.breaker.suspendedUntil = nil
            workers[name] = w
            noteBreaker(name, opened: false, breaker: w.breaker)
            if w.alive { try saveWorkerState(name, w, state: "alive") }
            for job in jobs.values where !job.isTerminal { job.touch() }
        }
        // The silent-attempt scan walks every live attempt (queued ones too: 20,000 at the start
        // of `bench dispatch`); once per heartbeat is enough for a timeout of TTL + grace, and
        // running it every loop iteration was a third of the coordinator's time there.
        let scanSilent = mono >= nextSilentScan
        if scanSilent { nextSilentScan = mono + options.heartbeat }
        for job in jobs.values {
            for id in job.unclaimed {
                if let c = job.live[id]?.claimBy, mono >= c { try loseAttempt(id, reason: "no worker claimed it after the coordinator restarted", now: now) }
            }
            // An attempt its worker has said nothing about (no progress, no result) for its whole
            // time-to-live plus a grace period is reclaimed: charged in full, re-planned, and its
            // worker told to stop, so no reservation is held forever.
            for (id, a) in scanSilent ? Array(job.live) : [] where a.record.state == .dispatched && a.unclaimedAfter(now: mono, grace: reclaimGrace) {
                if let w = a.record.worker, let worker = workers[w], worker.alive {
                    send(.cancel(id: id), to: worker.identity)
                    workers[w]?.running.remove(id)
                }
                try loseAttempt(id, reason: "its worker said nothing about it for \(formatDuration(mono - a.heardAt)) past its deadline", now: now)
            }
            if !job.isTerminal && now >= job.record.deadline {
                try end(job, .deadlineExceeded,
                        reason: "deadline passed with \(job.done.count) of \(job.planNodes.count) subtasks done" + backendTrouble(for: job),
                        now: now)
            }
        }
        try endJobsWhoseBackendsAreDown(now: now)
        if jobs.values.contains(where: { $0.waitingForSlot }), workers.values.contains(where: { $0.free > 0 }) {
            for job in jobs.values where job.waitingForSlot {
                job.waitingForSlot = false
                job.touch()
            }
        }
        for job in jobs.values where job.needsPlanning && !job.isTerminal {
            do {
                try CrashGuard.working(on: job.record.id) { try plan(job, now: now) }
            } catch let error as SQLiteError {
                throw error
            } catch {
                // A workflow that makes planning throw ends this job, not the coordinator.
                try end(job, .failed, reason: "planning failed: \(error)", now: now)
            }
        }
        try dispatchQueued(now: now)
        preemptForJobsAtRisk(now: now)
        refreshGauges(now: now)
        // Keep the most recently finished jobs at hand for status queries; older ones are read
        // back from the store when asked for.
        for (id, job) in jobs where job.isTerminal && job.live.isEmpty && !recentlyFinished.contains(id) {
            recentlyFinished.append(id)
        }
        // A job dropped from memory has its last row queued for the commit first.
        writeDirtyJobRows()
        while recentlyFinished.count > 64 {
            let id = recentlyFinished.removeFirst()
            if let job = jobs[id], job.isTerminal && job.live.isEmpty { jobs[id] = nil }
        }
    }
}
