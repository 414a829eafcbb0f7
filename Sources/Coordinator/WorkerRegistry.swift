import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// A worker as the coordinator tracks it.
struct WorkerEntry {
    var info: WorkerInfo
    var identity: Data
    var lastSeen: Double
    var alive: Bool
    var running: Set<AttemptID>
    var breaker = BackendBreaker()
    /// The CURVE public key it registered with (nil without CURVE).
    var key: String? = nil
    /// No new attempts: the worker is shutting down, or `agentflow drain` said so.
    var draining = false
    var free: Int { alive && !draining && breaker.suspendedUntil == nil ? max(0, info.slots - running.count) : 0 }
}

/// The worker registry: registrations, messages from registered workers, deaths, breaker state.
extension Coordinator {
    func handle(_ message: WorkerMessage, from identity: Data, key: String? = nil) throws {
        let now = time.now
        let name = workerName(identity)
        if case .register(let info, let running, let finished) = message {
            if let reason = refusal(info, key: key, identity: identity) {
                send(.rejected(reason: reason), to: identity)
                return
            }
            try register(info, identity: identity, running: running, finished: finished, now: now, key: key)
            return
        }
        // Only the connection that registered a name speaks for it.
        guard var worker = workers[name], worker.alive, worker.identity == identity else {
            // A worker we do not know (we restarted, or declared it dead): ask it to register.
            send(.reregister, to: identity)
            return
        }
        worker.lastSeen = now
        workers[name] = worker
        switch message {
        case .register: break
        case .heartbeat: break
        case .progress(let id, let tokens):
            if let job = jobs[id.job], var a = job.live[id] {
                a.progressTokens = min(tokens, a.record.tokenCap)
                job.live[id] = a
            }
        case .result(let report):
            try record(report, from: name, now: now)
            pendingAcks[identity, default: []].append(report.id)
        case .goodbye:
            try declareDead(name, reason: "worker \(name) shut down", now: now)
        case .draining:
            worker.draining = true
            workers[name] = worker
        }
    }

    func register(_ info: WorkerInfo, identity: Data, running: [AttemptID], finished: [AttemptReport], now: Double, key: String? = nil) throws {
        guard info.version == wireVersion else {
            send(.rejected(reason: "wire version \(info.version) is not \(wireVersion)"), to: identity)
            return
        }
        guard cluster.model(info.model) != nil else {
            send(.rejected(reason: "model '\(info.model)' is not in the cluster's models"), to: identity)
            return
        }
        // A re-registration replaces the old entry; attempts it no longer runs are lost.
        let previous = workers[info.name]
        var entry = WorkerEntry(info: info, identity: identity, lastSeen: now, alive: true, running: [], key: key, draining: drainedNames.contains(info.name))
        for id in running {
            if let job = jobs[id.job], var a = job.live[id], a.record.state == .dispatched,
               a.record.worker == info.name {
                a.claimBy = nil
                a.record.worker = info.name
                job.live[id] = a
                job.unclaimed.remove(id)
                entry.running.insert(id)
            } else {
                // Not live any more (ended, lost, or never ours): stop it.
                send(.cancel(id: id), to: identity)
            }
        }
        workers[info.name] = entry
        if let previous {
            for id in previous.running.subtracting(entry.running) where !finished.contains(where: { $0.id == id }) {
                try loseAttempt(id, reason: "worker \(info.name) re-registered without it", now: now)
            }
        }
        try store.save(WorkerRecord(name: info.name, host: info.host, gpus: info.gpus, model: info.model, slots: info.slots,
                                    freeMemory: info.freeMemory, state: "alive", lastSeen: now))
        send(.welcome(heartbeat: options.heartbeat, liveness: options.liveness), to: identity)
        for report in finished {
            try record(report, from: info.name, now: now)
            pendingAcks[identity, default: []].append(report.id)
        }
        for job in jobs.values where !job.isTerminal { job.touch() }
    }

    func declareDead(_ name: String, reason: String, now: Double) throws {
        guard var worker = workers[name], worker.alive else { return }
        worker.alive = false
        let lost = worker.running
        worker.running = []
        workers[name] = worker
        try store.save(WorkerRecord(name: name, host: worker.info.host, gpus: worker.info.gpus, model: worker.info.model,
                                    slots: worker.info.slots, freeMemory: worker.info.freeMemory, state: "dead", lastSeen: worker.lastSeen))
        for id in lost { try loseAttempt(id, reason: reason, now: now) }
        for job in jobs.values where !job.isTerminal { job.touch() }
    }

    /// Feeds the worker's breaker; an opened breaker is persisted (`agentflow workers` shows it)
    /// and every job re-plans without that worker's slots.
    func noteBackend(_ name: String, _ outcome: AttemptOutcome, now: Double) throws {
        guard var w = workers[name] else { return }
        let tokens = outcome.usage.reduce(0) { $0 + max(0, $1.input) + max(0, $1.output) }
        let opened = w.breaker.record(end: outcome.end, tokens: tokens, detail: outcome.detail, now: now)
        workers[name] = w
        if opened {
            noteBreaker(name, opened: true, breaker: w.breaker)
            try saveWorkerState(name, w, state: "suspended")
            for job in jobs.values where !job.isTerminal { job.touch() }
        }
    }

    func saveWorkerState(_ name: String, _ w: WorkerEntry, state: String) throws {
        try store.save(WorkerRecord(name: name, host: w.info.host, gpus: w.info.gpus, model: w.info.model, slots: w.info.slots,
                                    freeMemory: w.info.freeMemory, state: state, lastSeen: w.lastSeen))
    }

}
