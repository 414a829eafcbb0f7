import AgentFlowCore
import Foundation
import Planner
import Store

/// Resuming after a restart: every unfinished job rebuilt from the store.
extension Coordinator {
    // MARK: - Resuming after a restart

    /// Rebuilds every unfinished job from SQLite. Attempts that were dispatched wait for their
    /// worker to re-register and claim them; unclaimed ones are charged as lost after a grace
    /// period. Queued attempts keep their reservation and are dispatched again.
    func resume() throws {
        let now = time.now
        // The job the last coordinator on this database crashed on (socket shell only: the
        // simulator's store is its own), quarantined instead of resumed.
        let suspect = context == nil ? nil : CrashGuard.suspect(database: options.database)
        for record in try readStore().activeJobs() {
            if let suspect, suspect.job == record.id {
                try quarantine(record, reason: "the coordinator died of signal \(suspect.signal) while handling this job; it is not resumed", now: now)
                continue
            }
            do {
                try CrashGuard.working(on: record.id) { try resumeJob(record, now: now) }
            } catch let error as SQLiteError {
                throw error
            } catch {
                // One job's rows that do not parse or fail a check end that job, not the coordinator.
                try quarantine(record, reason: "cannot resume: \(error)", now: now)
            }
        }
    }

    /// Rebuilds one job; throws when its stored rows cannot be trusted (see `checkStoredJob`).
    func resumeJob(_ record: JobRecord, now: Double) throws {
        let grace = deadAfter * 2 + 1
        let mono = monotonicNow
        let workflow = try Workflow.parse(yaml: record.yaml, file: record.file, knownModels: cluster.modelNames)
        let planner = (try? makeLivePlanner(record.planner, seed: record.seed)) ?? SequentialPlanner(samples: 1)
        let subtaskRows = try readStore().subtasks(of: record.id)
        let attempts = try readStore().attempts(of: record.id)
        let candidates = (workflow.models ?? cluster.models.map(\.name)).compactMap { cluster.model($0) }
        try checkStoredJob(record, workflow: workflow, subtasks: subtaskRows, attempts: attempts, models: candidates)
        let job = JobRun(record: record, workflow: workflow, cluster: cluster, planner: planner)
        loadBook(for: workflow.name)
        for s in subtaskRows {
            job.subtasks[s.id] = s
            if s.state == .succeeded, let i = job.nodeIndex[s.id] { job.done.insert(i) }
        }
        job.recomputeReady()
        // Preempted attempts stay out of maxAttempts, and their subtasks are not preempted again.
        for a in attempts where a.state == .cancelled && a.detail.hasPrefix(Self.preemptedDetail) {
            job.preemptedAttempts[a.id.subtask, default: 0] += 1
            job.preemptedSubtasks.insert(a.id.subtask)
        }
        for a in attempts where a.state == .queued || a.state == .dispatched {
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
                live.ttl = max(0, a.deadline - now)
                job.unclaimed.insert(a.id)
            }
            job.add(live)
        }
        jobs[record.id] = job
    }
}
