import AgentFlowCore
import Foundation
import Planner
import Wire

/// The client requests the core answers itself: what only its memory holds (workers, the queue)
/// and what changes state (drain, cancel). Read-only queries never reach it.
extension CoordinatorCore {
    mutating func clientRequest(_ request: ClientRequest, route: [Data]) {
        switch request {
        case .workers:
            var reports: [WorkerReport] = []
            for w in workers.values.sorted(by: { $0.record.name < $1.record.name }) { reports.append(workerReport(w)) }
            reply(.workers(reports), to: route)
        case .queue:
            reply(.queue(queueEntries(now: now.wall)), to: route)
        case .tenants:
            reply(.tenants(tenantReports()), to: route)
        case .drain(let name, let drained):
            reply(setDrained(name, drained), to: route)
        case .cancel(let id):
            // Ended, unknown or not: the answer is the job as stored once this batch commits.
            if let job = jobs[id] { end(job, .cancelled, reason: "cancelled by the user", now: now.wall) }
            out.messages.append(.answerFromStore(route: route, .status(job: id)))
        case .submit:
            reply(.error(code: 1, message: "submissions go through the intake"), to: route)
        case .status, .jobs, .attempts, .ledger, .events, .queryJobs, .outputs, .outputBundle, .transcript:
            // The shell's query service answers these from the store.
            out.messages.append(.answerFromStore(route: route, request))
        case .scoped(let scope, let inner):
            scopedRequest(scope, inner, route: route)
        }
    }

    /// `agentflow drain WORKER` / `undrain`: the worker gets no new attempts (or gets them again);
    /// what it runs goes on. Remembered by name, so a re-registration keeps it drained.
    mutating func setDrained(_ name: String, _ drained: Bool) -> ClientReply {
        guard var w = workers[name] else {
            let known = workers.keys.sorted()
            return .error(code: 4, message: "no worker '\(name)'" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
        }
        if drained { drainedNames.insert(name) } else { drainedNames.remove(name) }
        w.draining = drained
        workers[name] = w
        if !drained { touchAll() }
        return .workers([workerReport(w)])
    }

    func workerReport(_ w: WorkerEntry) -> WorkerReport {
        WorkerReport(w.record, busy: w.running.count, state: w.state, lastSeen: isoTime(w.lastSeenWall.secondsSince1970), problem: w.breaker.problem ?? "")
    }
}
