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
        let grace = deadAfter * 2 + 1
        let mono = monotonicNow
        for record in try readStore().activeJobs() {
            let workflow: Workflow
            do {
                workflow = try Workflow.parse(yaml: record.yaml, file: record.file, knownModels: cluster.modelNames)
            } catch {
                var r = record
                r.state = .failed
                r.reason = "cannot resume: \(error)"
                r.endedAt = now
                persist(.insertJob(r))
                continue
            }
            let planner = (try? makeLivePlanner(record.planner, seed: record.seed)) ?? SequentialPlanner(samples: 1)
            let job = JobRun(record: record, workflow: workflow, cluster: cluster, planner: planner)
            loadBook(for: workflow.name)
            for s in try readStore().subtasks(of: record.id) {
                job.subtasks[s.id] = s
                if s.state == .succeeded, let i = job.nodeIndex[s.id] { job.done.insert(i) }
            }
            job.recomputeReady()
            let attempts = try readStore().attempts(of: record.id)
            // Preempted attempts stay out of maxAttempts, and their subtasks are not preempted again.
            for a in attempts where a.state == .cancelled && a.detail.hasPrefix(Self.preemptedDetail) {
                job.preemptedAttempts[a.id.subtask, default: 0] += 1
                job.preemptedSubtasks.insert(a.id.subtask)
            }
            for a in attempts where a.state == .queued || a.state == .dispatched {
                guard let node = job.nodeIndex[a.id.subtask], let m = job.models.firstIndex(where: { $0.name == a.model }) else { continue }
                try? job.ledger.reserve(a.reserved, for: a.id)
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
}
