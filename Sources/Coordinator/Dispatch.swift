import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Dispatch: which queued attempt goes to which free worker slot.
extension Coordinator {
    /// The cross-job policy: the order in which jobs with queued attempts get free slots.
    /// Higher priority first, then older, then by id (a total order: dispatch is deterministic).
    func jobsInDispatchOrder() -> [JobRun] {
        jobs.values.filter { !$0.isTerminal && $0.hasQueued }.sorted {
            ($0.record.priority, -$0.record.submittedAt) != ($1.record.priority, -$1.record.submittedAt)
                ? ($0.record.priority, -$0.record.submittedAt) > ($1.record.priority, -$1.record.submittedAt)
                : $0.record.id < $1.record.id
        }
    }

    /// Sends queued attempts to free slots of their model, jobs in `jobsInDispatchOrder()`.
    /// Each dispatch is persisted in this iteration's transaction; its message leaves after the
    /// commit. The attempt carries a time-to-live (seconds until its deadline), not a clock time.
    func dispatchQueued(now: Double) throws {
        let active = jobsInDispatchOrder()
        guard !active.isEmpty else { return }
        var freeByModel: [String: [String]] = [:]
        for (name, w) in workers.sorted(by: { $0.key < $1.key }) where w.free > 0 { freeByModel[w.info.model, default: []].append(name) }
        for job in active {
            var skipped: [AttemptID] = []
            while job.hasQueued {
                let id = job.queue[job.queueHead]
                job.queueHead += 1
                guard var a = job.live[id], var names = freeByModel[a.spec.model], let name = names.first, var w = workers[name] else {
                    skipped.append(id)
                    if freeByModel.isEmpty { break }
                    continue
                }
                a.record.state = .dispatched
                a.record.worker = name
                a.record.dispatchedAt = now
                a.heardAt = monotonicNow
                a.ttl = max(0, a.record.deadline - now)
                a.spec.ttl = a.ttl
                job.live[id] = a
                w.running.insert(id)
                workers[name] = w
                if w.free == 0 { names.removeFirst() }
                freeByModel[a.spec.model] = names.isEmpty ? nil : names
                try store.markDispatched(id, worker: name, at: now)
                send(.dispatch(a.spec), to: w.identity)
                noteDispatch(a, worker: name, now: now)
                stats.dispatched += 1
                if options.recordRoundTrips { dispatchTimes[id] = monotonicNow }
            }
            // Attempts whose model has no free slot keep their place at the front.
            if !skipped.isEmpty {
                job.queue.replaceSubrange(job.queueHead..<job.queueHead, with: skipped)
            }
        }
    }
}
