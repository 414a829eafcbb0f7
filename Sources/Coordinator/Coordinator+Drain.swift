import AgentFlowCore
import Foundation
import Wire

extension Coordinator {
    /// `agentflow drain WORKER` / `undrain`: the worker gets no new attempts (or gets them again);
    /// what it runs goes on. Remembered by name, so a re-registration keeps it drained.
    func setDrained(_ name: String, _ drained: Bool) -> ClientReply {
        guard var w = workers[name] else {
            let known = workers.keys.sorted()
            return .error(code: 4, message: "no worker '\(name)'" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
        }
        if drained { drainedNames.insert(name) } else { drainedNames.remove(name) }
        w.draining = drained
        workers[name] = w
        if !drained { for job in jobs.values where !job.isTerminal { job.touch() } }
        return .workers([workerReport(w)])
    }

    func workerReport(_ w: WorkerEntry) -> WorkerReport {
        WorkerReport(name: w.info.name, host: w.info.host, gpus: w.info.gpus, model: w.info.model, slots: w.info.slots,
                     busy: w.running.count, freeMemory: w.info.freeMemory,
                     state: !w.alive ? "dead" : w.draining ? "draining" : w.breaker.suspendedUntil != nil ? "suspended" : "alive",
                     lastSeen: isoTime(w.lastSeenWall), problem: w.breaker.problem ?? "", gpuName: w.info.gpuName ?? "")
    }
}
