import AgentFlowCore
import Foundation
import Wire
import Worker

/// Collects what the `sim` backend reports for one attempt (it reports synchronously: the
/// outcome at once, with the delay to deliver it after).
final class OutcomeCollector: AttemptEvents, @unchecked Sendable {
    // Only the simulator's single thread touches it.
    var finished: (outcome: AttemptOutcome, after: Double)?
    func progress(_ id: AttemptID, tokens: Int) {}
    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) { finished = (outcome, seconds) }
}

/// A simulated worker process: the real worker's protocol (register with what it runs and the
/// results it holds, heartbeat, reconnect when the coordinator is silent, never run an attempt
/// id twice, keep results until acknowledged) over the simulated network, and the `sim`
/// backend's model of success, tokens and latency. It can crash (losing everything; it comes
/// back as a new process), freeze (silent and deaf for a while), or be an impostor that
/// reuses a live worker's name.
final class SimWorker {
    struct Running {
        var finishAt: Double
        var outcome: AttemptOutcome
        var handle: any AttemptHandle
        var collector: OutcomeCollector
    }

    let name: String
    let model: String
    let slots: Int
    let seed: UInt64
    let heartbeat: Double
    let liveness: Int
    private(set) var incarnation = 0
    private(set) var identity: Data
    var up = true
    var frozenUntil: Double?
    /// When a crashed worker comes back; nil: it does not (an impostor that went away).
    var restartAt: Double?
    var running: [AttemptID: Running] = [:]
    var unacked: [AttemptID: AttemptReport] = [:]
    var seen: Set<AttemptID> = []
    var lastHeard: Double
    var nextHeartbeat: Double
    var registered = false
    /// Every result message sent, for the hostile peer's replays.
    var sentResults: [AttemptReport] = []

    init(name: String, model: String, slots: Int, seed: UInt64, heartbeat: Double, liveness: Int, incarnation: Int, now: Double) {
        self.name = name
        self.model = model
        self.slots = slots
        self.seed = seed
        self.heartbeat = heartbeat
        self.liveness = liveness
        self.incarnation = incarnation
        identity = Data("\(name)#\(incarnation)".utf8)
        lastHeard = now
        nextHeartbeat = now
    }

    var info: WorkerInfo {
        WorkerInfo(name: name, host: "sim-\(name)", gpus: [0], model: model, slots: slots, freeMemory: 1 << 30)
    }

    var registerMessage: WorkerMessage {
        .register(info: info, running: running.keys.sorted { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) },
                  finished: unacked.values.sorted { ($0.id.job, $0.id.subtask, $0.id.n) < ($1.id.job, $1.id.subtask, $1.id.n) })
    }

    /// A new process with the same name: nothing survives.
    func restart(incarnation: Int, now: Double) {
        self.incarnation = incarnation
        identity = Data("\(name)#\(incarnation)".utf8)
        up = true
        frozenUntil = nil
        restartAt = nil
        running = [:]
        unacked = [:]
        seen = []
        registered = false
        lastHeard = now
        nextHeartbeat = now
    }

    func crash(restartAt: Double?) {
        up = false
        self.restartAt = restartAt
        running = [:]
        unacked = [:]
    }

    var active: Bool { up && frozenUntil == nil }

    /// The next moment it has something to do.
    func nextTimer() -> Double? {
        if !up { return restartAt }
        if let f = frozenUntil { return f }
        var t = nextHeartbeat
        for r in running.values { t = min(t, r.finishAt) }
        return t
    }

    /// A message from the coordinator; returns what it sends back. `started` is told of every
    /// attempt it begins (the simulator checks no attempt id runs on two processes).
    func receive(_ message: CoordinatorMessage, now: Double, time: VirtualTime, started: (AttemptID) -> Void) -> [WorkerMessage] {
        guard active else { return [] }
        lastHeard = now
        switch message {
        case .welcome:
            registered = true
            return []
        case .heartbeat:
            return []
        case .reregister:
            return [registerMessage]
        case .rejected:
            registered = false
            return []
        case .ack(let ids):
            for id in ids { unacked[id] = nil }
            return []
        case .cancel(let id):
            guard let r = running[id] else { return [] }
            r.handle.cancel()
            running[id] = nil
            let outcome = r.collector.finished?.outcome ?? AttemptOutcome(end: .cancelled, usage: [], detail: "cancelled")
            return [report(id, outcome)]
        case .dispatch(let spec):
            guard !seen.contains(spec.id) else { return [] }
            guard running.count < slots else {
                return [report(spec.id, AttemptOutcome(end: .error, usage: [], detail: "no free slot"))]
            }
            seen.insert(spec.id)
            started(spec.id)
            var local = spec
            local.deadline = time.now + (spec.ttl.isFinite ? min(max(0, spec.ttl), Limits.maxSeconds) : 0)
            let collector = OutcomeCollector()
            let handle = SimBackend(timeScale: 1, seed: seed, time: time).start(local, events: collector)
            guard let finished = collector.finished else { return [] }
            var outcome = finished.outcome
            let after = finished.after
            if outcome.end == .succeeded { outcome.output = "sim:\(String(decoding: identity, as: UTF8.self)):\(spec.id)" }
            running[spec.id] = Running(finishAt: now + after, outcome: outcome, handle: handle, collector: collector)
            return []
        }
    }

    /// Timers: finished attempts report, heartbeats, reconnecting when the coordinator is silent.
    func timer(now: Double) -> [WorkerMessage] {
        guard up else { return [] }
        if let f = frozenUntil {
            guard now >= f else { return [] }
            frozenUntil = nil
            lastHeard = now
        }
        var out: [WorkerMessage] = []
        for (id, r) in running.sorted(by: { ($0.value.finishAt, $0.key.n, $0.key.subtask) < ($1.value.finishAt, $1.key.n, $1.key.subtask) })
        where r.finishAt <= now {
            running[id] = nil
            out.append(report(id, r.outcome))
        }
        if now >= nextHeartbeat {
            nextHeartbeat = now + heartbeat
            if now - lastHeard > heartbeat * Double(liveness) {
                // The coordinator is silent: register again (the real worker reconnects first).
                lastHeard = now
                out.append(registerMessage)
            } else {
                out.append(.heartbeat)
            }
        }
        return out
    }

    private func report(_ id: AttemptID, _ outcome: AttemptOutcome) -> WorkerMessage {
        let r = AttemptReport(id: id, outcome: outcome)
        unacked[id] = r
        sentResults.append(r)
        if sentResults.count > 64 { sentResults.removeFirst() }
        return .result(r)
    }
}
