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
        let now = self.now.wall
        let name = workerName(identity)
        if case .register(let info, let running, let finished, let queued) = message {
            if let reason = refusal(info, key: key, identity: identity, keys: keys) {
                send(.rejected(reason: reason), to: identity)
                return
            }
            register(info, identity: identity, running: running, finished: finished, queued: queued ?? [], now: now, key: key)
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
    func registrationProblem(_ registration: WorkerInfo) -> String? {
        if registration.version != wireVersion { return "wire version \(registration.version) is not \(wireVersion)" }
        let worker = registration.worker
        if let p = Limits.name(worker.name, "the worker name") { return p }
        if let p = Limits.name(worker.host, "the host name") { return p }
        if !(1...Limits.maxSlots).contains(worker.slots) { return "slots must be from 1 to \(Limits.maxSlots), got \(worker.slots)" }
        if worker.gpus.count > Limits.maxGPUs || worker.gpus.contains(where: { $0 < 0 || $0 > 1 << 20 }) {
            return "gpus must be at most \(Limits.maxGPUs) non-negative ids"
        }
        if worker.freeMemory < 0 { return "free memory must not be negative, got \(worker.freeMemory)" }
        if cluster.model(worker.model) == nil { return "model \(Limits.printable(worker.model)) is not in the cluster's models" }
        return nil
    }

    mutating func register(_ registration: WorkerInfo, identity: Data, running: [AttemptID], finished: [AttemptReport], queued: [AttemptID] = [],
                           now: WallInstant, key: String? = nil) {
        if let problem = registrationProblem(registration) {
            stats.refusedRequests += 1
            send(.rejected(reason: problem), to: identity)
            return
        }
        let worker = registration.worker
        let previous = workers[worker.name]
        if let previous, previous.alive, previous.identity != identity {
            if self.now.mono - previous.lastSeen <= deadAfter {
                // Another live process holds the name: refuse this one, say why, charge nothing.
                stats.refusedRequests += 1
                send(.rejected(reason: "a worker named '\(worker.name)' is already connected from host \(previous.record.host); "
                               + "this one is refused (start it with another --name)"), to: identity)
                return
            }
            // The holder went silent: it is dead, this is its successor.
            declareDead(worker.name, reason: "worker \(worker.name) was replaced by a new process", now: now)
        }
        // A re-registration replaces the old entry; attempts it no longer runs are lost.
        var entry = WorkerEntry(record: worker, identity: identity, lastSeen: self.now.mono, lastSeenWall: self.now.wall, alive: true, running: [], key: key,
                                draining: drainedNames.contains(worker.name))
        // Running ones hold its slots; queued ones (prefetched, not started: listed apart, in the
        // order it will start them) keep their reservations and wait, as before the reconnect.
        var listed = Set<AttemptID>()
        for (id, isQueued) in running.prefix(Limits.maxSlots).map({ ($0, false) }) + queued.prefix(Limits.maxSlots * Limits.maxPrefetch).map({ ($0, true) }) {
            // A repeat (a broken or hostile list) counts once.
            guard listed.insert(id).inserted else { continue }
            if let job = jobs[id.job], var a = job.live[id], a.record.state == .dispatched,
               a.record.worker == worker.name {
                a.claimBy = nil
                a.heardAt = self.now.mono
                a.record.worker = worker.name
                a.startedAt = isQueued ? nil : (a.startedAt ?? now)
                job.live[id] = a
                job.unclaimed.remove(id)
                if isQueued { entry.queued.append(id) } else { entry.running.insert(id) }
            } else {
                // Not live any more (ended, lost, or never ours): stop it (a queued one is
                // dropped unstarted and reported cancelled; its result is then ignored).
                send(.cancel(id: id), to: identity)
            }
        }
        workers[worker.name] = entry
        if let previous, previous.alive {
            // What it held before and lists neither way is lost: charged in full, since it may
            // have run (a dispatch can cross the reconnect).
            for id in previous.running.union(previous.queued).subtracting(listed) where !finished.contains(where: { $0.id == id }) {
                loseAttempt(id, reason: "worker \(worker.name) re-registered without it", now: now)
            }
        }
        persist(.worker(worker, state: .alive, lastSeen: now))
        send(.welcome(heartbeat: options.heartbeat.seconds, liveness: options.liveness), to: identity)
        for report in finished.prefix(4 * Limits.maxSlots) {
            record(report, from: worker.name, now: now)
            out.acks[identity, default: []].append(report.id)
        }
        touchAll()
    }

    mutating func declareDead(_ name: String, reason: String, now: WallInstant) {
        guard var worker = workers[name], worker.alive else { return }
        worker.alive = false
        // Queued ones too: the worker may have started them after its last message.
        let lost = Array(worker.running) + worker.queued
        worker.running = []
        worker.queued = []
        workers[name] = worker
        persist(.worker(worker.record, state: .dead, lastSeen: worker.lastSeenWall))
        for id in lost { loseAttempt(id, reason: reason, now: now) }
        touchAll()
    }

    /// Feeds the worker's breaker; an opened breaker is persisted (`agentflow workers` shows it)
    /// and every job re-plans without that worker's slots.
    mutating func noteBackend(_ name: String, _ outcome: AttemptOutcome, now: WallInstant) {
        guard var w = workers[name] else { return }
        let tokens = outcome.usage.prefix(16).reduce(0) { $0 + min(max(0, $1.input), 1 << 40) + min(max(0, $1.output), 1 << 40) }
        let opened = w.breaker.record(end: outcome.end, tokens: tokens, detail: outcome.detail, now: self.now.mono)
        workers[name] = w
        if opened {
            noteBreaker(name, opened: true, breaker: w.breaker)
            saveWorkerState(w, state: .suspended)
            touchAll()
        }
    }

    mutating func saveWorkerState(_ w: WorkerEntry, state: WorkerState) {
        persist(.worker(w.record, state: state, lastSeen: w.lastSeenWall))
    }

}

extension CoordinatorCore {
    /// Why a registration is refused, or nil to admit it: the key must own the name when names
    /// are bound to keys, and a name alive under another key stays with that key.
    func refusal(_ registration: WorkerInfo, key: String?, identity: Data, keys: WorkerKeyBook?) -> String? {
        let worker = registration.worker
        if workerName(identity) != worker.name {
            return "the connection's routing id '\(String(decoding: identity, as: UTF8.self))' does not belong to worker name '\(worker.name)'"
        }
        let book = keys ?? WorkerKeyBook()
        if !book.allows(key: key, name: worker.name) {
            guard let key else { return "worker names are bound to CURVE keys here and this connection has none" }
            let owned = book.patterns(of: key)
            return "key \(key) may not register as '\(worker.name)'"
                + (owned.isEmpty ? " (it owns no worker name: enrol it with agentflow keys enroll NAME)" : " (it owns: \(owned.joined(separator: ", ")))")
        }
        if let previous = workers[worker.name], previous.alive, previous.identity != identity,
           let old = previous.key, let key, old != key {
            return "worker name '\(worker.name)' is in use by a live worker with another key (\(old)); pick another name or stop that worker"
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
