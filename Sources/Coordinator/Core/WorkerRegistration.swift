import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Workers: registrations (and who may register a name), messages from registered workers,
/// deaths, breaker state.
///
/// A worker is known by its name and by the connection it registered from. Messages from any
/// other connection using that name get `reregister`, and registering is refused while the
/// registered one is alive: two processes started with one `--name` never share an entry.
extension CoordinatorCore {
    mutating func workerMessage(_ message: WorkerMessage, from identity: Data, key: String?, keys: WorkerKeyBook?) {
        let now = self.now.wall.secondsSince1970
        let name = workerName(identity)
        if case .register(let info, let running, let finished) = message {
            if let reason = refusal(info, key: key, identity: identity, keys: keys) {
                send(.rejected(reason: reason), to: identity)
                return
            }
            register(info, identity: identity, running: running, finished: finished, now: now, key: key)
            return
        }
        // Only the connection that registered a name speaks for it.
        guard var worker = workers[name], worker.alive, worker.identity == identity else {
            // A worker we do not know (we restarted, or declared it dead): ask it to register.
            send(.reregister, to: identity)
            return
        }
        worker.lastSeen = self.now.mono
        worker.lastSeenWall = self.now.wall
        workers[name] = worker
        switch message {
        case .register: break
        case .heartbeat: break
        case .progress(let id, let tokens):
            if let job = jobs[id.job], var a = job.live[id], a.record.worker == name {
                a.progressTokens = min(max(0, tokens), a.record.tokenCap)
                a.heardAt = self.now.mono
                job.live[id] = a
                dirtyViews.insert(id.job)
            }
        case .result(let report):
            record(report, from: name, now: now)
            out.acks[identity, default: []].append(report.id)
        case .goodbye:
            declareDead(name, reason: "worker \(name) shut down", now: now)
        case .draining:
            worker.draining = true
            workers[name] = worker
        case .fetchBlobs(let id, let hashes):
            serveBlobs(hashes, for: id, to: identity, worker: name)
        case .transcript(let id, let entries):
            transcript(id, entries, from: name)
        case .serverLoad(let load):
            worker.serverLoad = load.clamped
            worker.serverLoadAt = self.now.mono
            workers[name] = worker
        }
    }

    /// Why a registration is refused, or nil: every field is range-checked here, once.
    func registrationProblem(_ info: WorkerInfo) -> String? {
        if info.version != wireVersion { return "wire version \(info.version) is not \(wireVersion)" }
        if let p = Limits.name(info.name, "the worker name") { return p }
        if let p = Limits.name(info.host, "the host name") { return p }
        if !(1...Limits.maxSlots).contains(info.slots) { return "slots must be from 1 to \(Limits.maxSlots), got \(info.slots)" }
        if info.gpus.count > Limits.maxGPUs || info.gpus.contains(where: { $0 < 0 || $0 > 1 << 20 }) {
            return "gpus must be at most \(Limits.maxGPUs) non-negative ids"
        }
        if info.freeMemory < 0 { return "free memory must not be negative, got \(info.freeMemory)" }
        if cluster.model(info.model) == nil { return "model \(Limits.printable(info.model)) is not in the cluster's models" }
        return nil
    }

    mutating func register(_ info: WorkerInfo, identity: Data, running: [AttemptID], finished: [AttemptReport], now: Double, key: String? = nil) {
        if let problem = registrationProblem(info) {
            stats.refusedRequests += 1
            send(.rejected(reason: problem), to: identity)
            return
        }
        let previous = workers[info.name]
        if let previous, previous.alive, previous.identity != identity {
            if self.now.mono - previous.lastSeen <= deadAfter {
                // Another live process holds the name: refuse this one, say why, charge nothing.
                stats.refusedRequests += 1
                send(.rejected(reason: "a worker named '\(info.name)' is already connected from host \(previous.info.host); "
                               + "this one is refused (start it with another --name)"), to: identity)
                return
            }
            // The holder went silent: it is dead, this is its successor.
            declareDead(info.name, reason: "worker \(info.name) was replaced by a new process", now: now)
        }
        // A re-registration replaces the old entry; attempts it no longer runs are lost.
        var entry = WorkerEntry(info: info, identity: identity, lastSeen: self.now.mono, lastSeenWall: self.now.wall, alive: true, running: [], key: key,
                                draining: drainedNames.contains(info.name))
        for id in running.prefix(Limits.maxSlots) {
            if let job = jobs[id.job], var a = job.live[id], a.record.state == .dispatched,
               a.record.worker == info.name {
                a.claimBy = nil
                a.heardAt = self.now.mono
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
        if let previous, previous.alive {
            for id in previous.running.subtracting(entry.running) where !finished.contains(where: { $0.id == id }) {
                loseAttempt(id, reason: "worker \(info.name) re-registered without it", now: now)
            }
        }
        persist(.worker(WorkerRecord(name: info.name, host: info.host, gpus: info.gpus, model: info.model, slots: info.slots,
                                    freeMemory: info.freeMemory, state: "alive", lastSeen: now)))
        send(.welcome(heartbeat: options.heartbeat.seconds, liveness: options.liveness), to: identity)
        for report in finished.prefix(4 * Limits.maxSlots) {
            record(report, from: info.name, now: now)
            out.acks[identity, default: []].append(report.id)
        }
        touchAll()
    }

    mutating func declareDead(_ name: String, reason: String, now: Double) {
        guard var worker = workers[name], worker.alive else { return }
        worker.alive = false
        let lost = worker.running
        worker.running = []
        workers[name] = worker
        persist(.worker(WorkerRecord(name: name, host: worker.info.host, gpus: worker.info.gpus, model: worker.info.model,
                                    slots: worker.info.slots, freeMemory: worker.info.freeMemory, state: "dead", lastSeen: worker.lastSeenWall.secondsSince1970)))
        for id in lost { loseAttempt(id, reason: reason, now: now) }
        touchAll()
    }

    /// Feeds the worker's breaker; an opened breaker is persisted (`agentflow workers` shows it)
    /// and every job re-plans without that worker's slots.
    mutating func noteBackend(_ name: String, _ outcome: AttemptOutcome, now: Double) {
        guard var w = workers[name] else { return }
        let tokens = outcome.usage.prefix(16).reduce(0) { $0 + min(max(0, $1.input), 1 << 40) + min(max(0, $1.output), 1 << 40) }
        let opened = w.breaker.record(end: outcome.end, tokens: tokens, detail: outcome.detail, now: self.now.mono)
        workers[name] = w
        if opened {
            noteBreaker(name, opened: true, breaker: w.breaker)
            saveWorkerState(name, w, state: "suspended")
            touchAll()
        }
    }

    mutating func saveWorkerState(_ name: String, _ w: WorkerEntry, state: String) {
        persist(.worker(WorkerRecord(name: name, host: w.info.host, gpus: w.info.gpus, model: w.info.model, slots: w.info.slots,
                                    freeMemory: w.info.freeMemory, state: state, lastSeen: w.lastSeenWall.secondsSince1970)))
    }

}

extension CoordinatorCore {
    /// Why a registration is refused, or nil to admit it: the key must own the name when names
    /// are bound to keys, and a name alive under another key stays with that key.
    func refusal(_ info: WorkerInfo, key: String?, identity: Data, keys: WorkerKeyBook?) -> String? {
        if workerName(identity) != info.name {
            return "the connection's routing id '\(String(decoding: identity, as: UTF8.self))' does not belong to worker name '\(info.name)'"
        }
        let book = keys ?? WorkerKeyBook()
        if !book.allows(key: key, name: info.name) {
            guard let key else { return "worker names are bound to CURVE keys here and this connection has none" }
            let owned = book.patterns(of: key)
            return "key \(key) may not register as '\(info.name)'"
                + (owned.isEmpty ? " (it owns no worker name: enrol it with agentflow keys enroll NAME)" : " (it owns: \(owned.joined(separator: ", ")))")
        }
        if let previous = workers[info.name], previous.alive, previous.identity != identity,
           let old = previous.key, let key, old != key {
            return "worker name '\(info.name)' is in use by a live worker with another key (\(old)); pick another name or stop that worker"
        }
        return nil
    }

    /// The name a ROUTER identity belongs to: workers connect as `NAME#SUFFIX`, a suffix unique to
    /// the process, so a second process cannot take over a live worker's connection.
    func workerName(_ identity: Data) -> String {
        let text = String(decoding: identity, as: UTF8.self)
        guard let hash = text.lastIndex(of: "#") else { return text }
        return String(text[..<hash])
    }
}
