import AgentFlowCore
import Foundation
import Planner
import Store

/// Restarting: every unfinished job rebuilt from the rows the shell read from the store.
extension CoordinatorCore {
    /// Attempts that were dispatched wait for their worker to re-register and claim them;
    /// unclaimed ones are charged as lost after a grace period. Queued attempts keep their
    /// reservation and are dispatched again. A job whose rows do not parse or fail a check, or
    /// that the last coordinator crashed on, is quarantined (`Quarantine.swift`) instead, and the
    /// others resume.
    mutating func restart(_ rows: RestartRows) {
        let now = self.now.wall
        for (name, book) in rows.books { books.adopt(book, for: name) }
        for stored in rows.jobs {
            if let crashed = rows.crashed, crashed.job == stored.record.id {
                quarantine(stored, reason: "the coordinator died of signal \(crashed.signal) while handling this job; it is not resumed", now: now)
                continue
            }
            let guarded = CrashGuard.enter(stored.record.id)
            defer { CrashGuard.leave(restoring: guarded) }
            do {
                try resumeJob(stored, now: now)
            } catch {
                // One job's rows that do not parse or fail a check end that job, not the coordinator.
                quarantine(stored, reason: "cannot resume: \(error)", now: now)
            }
        }
        restoreTenants(rows.tenants)
    }

    /// Rebuilds one job; throws when its stored rows cannot be trusted (see `checkStoredJob`).
    mutating func resumeJob(_ stored: StoredJob, now: WallInstant) throws {
        let record = stored.record
        let grace = deadAfter * 2 + .seconds(1)
        let mono = self.now.mono
        let workflow = try stored.workflow.get()
        let planner = (try? options.makePlanner(record.planner, record.seed)) ?? SequentialPlanner(samples: 1)
        let candidates = ((workflow.models ?? cluster.models.map(\.name)) + JobRun.judgeModels(workflow)).compactMap { cluster.model($0) }
        try Self.checkStoredJob(record, workflow: workflow, subtasks: stored.subtasks, attempts: stored.attempts, models: candidates)
        let job = JobRun(record: record, workflow: workflow, cluster: cluster, planner: planner)
        for s in stored.subtasks {
            job.subtasks[s.id] = s
            if s.state == .succeeded, let i = job.nodeIndex[s.id] { job.done.insert(i) }
        }
        job.outputBundles = stored.outputs
        job.recomputeReady()
        // Preempted attempts stay out of maxAttempts, and their subtasks are not preempted again.
        for a in stored.attempts where a.state == .cancelled && a.detail.hasPrefix(Self.preemptedDetail) {
            job.preemptedAttempts[a.id.subtask, default: 0] += 1
            job.preemptedSubtasks.insert(a.id.subtask)
        }
        for a in stored.attempts where Self.isJudgeAttempt(a) {
            job.judgeAttempts[a.id.subtask, default: 0] += 1
        }
        for a in stored.attempts where a.state == .queued || a.state == .dispatched {
            if a.state == .queued && Self.isJudgeAttempt(a) {
                // What it was to judge was in the old process's memory: dropped, nothing spent;
                // its subtask is tried again.
                var dropped = a
                dropped.state = .cancelled
                dropped.endedAt = now
                dropped.detail += ": dropped in a coordinator restart (the result it was to judge is gone)"
                persist(.attempt(dropped))
                continue
            }
            guard let node = job.nodeIndex[a.id.subtask], let m = job.models.firstIndex(where: { $0.name == a.model }) else { continue }
            do {
                try job.ledger.reserve(a.reserved, for: a.id)
            } catch {
                // Reservations that do not fit the limit (or repeat) mean the rows disagree with the ledger.
                throw QuarantineReason(description: "stored job \(Limits.printable(record.id)): attempt \(a.id): \(error)")
            }
            var live = LiveAttempt(record: a, spec: job.spec(for: a), node: node, model: m)
            if a.state == .dispatched {
                live.claimBy = mono + grace
                live.heardAt = mono
                // Started or queued at its worker: its registration says which (register).
                live.startedAt = a.dispatchedAt ?? now
                live.ttl = .clampedSeconds(a.deadline.seconds(since: now))
                job.unclaimed.insert(a.id)
            }
            job.add(live)
        }
        if let old = jobs[record.id] {
            tally.ended(old)
            holding.forget(old)
        }
        jobs[record.id] = job
        holding.track(job)
        if !job.isTerminal { markForPlanning(job) }
        deadlines.push(record.deadline, job: record.id)
        if !job.unclaimed.isEmpty { claimWaiting.insert(record.id) }
        if job.isTerminal { endedPending.insert(record.id) }
        tally.track(job)
        dirtyViews.insert(record.id)
    }
}
