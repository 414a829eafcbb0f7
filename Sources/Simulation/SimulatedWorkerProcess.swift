import AgentFlowCore
import Foundation
import Wire
import Worker

/// A worker process in the simulation: the real worker's protocol (``Worker/WorkerCore``:
/// registering with what it runs and the results it holds, heartbeats, noticing the
/// coordinator's silence and reconnecting with backoff, never running an attempt id twice,
/// keeping results until acknowledged) with a real backend (the `sim` backend in the fault
/// simulator), over the simulated network and clock. Only the process's fate is simulated here: it can crash (losing everything; it
/// comes back as a new process), freeze (SIGSTOP: it hears nothing and sends nothing for a while,
/// then reads what queued up meanwhile), or be an impostor that reuses a live worker's name.
public final class SimulatedWorkerProcess {
    public let name: String
    public let model: String
    public let slots: Int
    let options: WorkerCore.Options
    let backend: any AttemptBackend
    private(set) var incarnation: Int
    /// The routing id: the name and this process's incarnation.
    public private(set) var identity: Data
    private(set) var core: WorkerCore
    /// Its connection to the coordinator is up (false while it backs off before reconnecting).
    private(set) var connected = false
    var up = true
    var frozenUntil: MonotonicInstant?
    /// When a crashed worker comes back; nil: it does not (an impostor that went away).
    var restartAt: MonotonicInstant?
    /// Messages that arrived while it was frozen, read when it wakes.
    private var held: [CoordinatorMessage] = []
    private var handles: [AttemptID: any AttemptHandle] = [:]
    private let events: StampingEvents
    /// Told of every attempt this process reads, starts and reports (the checkers).
    let observe: (WorkerObservation) -> Void
    /// The last result messages it sent, for the hostile peer's replays.
    private(set) var sentResults: [AttemptReport] = []

    init(name: String, model: String, slots: Int, heartbeat: Duration, liveness: Int, incarnation: Int, backend: any AttemptBackend,
         observe: @escaping (WorkerObservation) -> Void) {
        self.name = name
        self.model = model
        self.slots = slots
        var o = WorkerCore.Options()
        o.heartbeat = heartbeat
        o.liveness = liveness
        options = o
        self.backend = backend
        self.incarnation = incarnation
        self.observe = observe
        identity = Data("\(name)#\(incarnation)".utf8)
        core = WorkerCore(info: Self.info(name: name, model: model, slots: slots), options: o)
        events = StampingEvents()
        events.identity = identity
    }

    static func info(name: String, model: String, slots: Int) -> WorkerInfo {
        WorkerInfo(WorkerRecord(name: name, host: "sim-\(name)", gpus: [0], model: model, slots: slots, freeMemory: 1 << 30))
    }

    /// Attempts its backend runs now.
    var running: Set<AttemptID> { core.running }
    var registered: Bool { core.welcomed }
    var active: Bool { up && frozenUntil == nil }

    /// A new process with the same name: nothing survives.
    func restart(incarnation: Int) {
        self.incarnation = incarnation
        identity = Data("\(name)#\(incarnation)".utf8)
        events.identity = identity
        core = WorkerCore(info: Self.info(name: name, model: model, slots: slots), options: options)
        up = true
        frozenUntil = nil
        restartAt = nil
        connected = false
        held = []
        handles = [:]
    }

    func crash(restartAt: MonotonicInstant?) {
        up = false
        self.restartAt = restartAt
        connected = false
        held = []
        handles = [:]
    }

    /// The next moment it has something to do.
    func nextTimer(now: MonotonicInstant) -> MonotonicInstant? {
        if !up { return restartAt }
        if let f = frozenUntil { return f }
        if !connected { return core.reconnectAt ?? now }
        return core.wakeAt(now: now)
    }

    /// A message from the coordinator; returns what it sends back.
    func receive(_ message: CoordinatorMessage, now: MonotonicInstant) -> [WorkerMessage] {
        guard up, connected else { return [] }
        if frozenUntil != nil {
            held.append(message)
            return []
        }
        return run(.message(message), now: now)
    }

    /// Its loop's turn: waking from a freeze, connecting, timers.
    func timer(now: MonotonicInstant) -> [WorkerMessage] {
        guard up else { return [] }
        var out: [WorkerMessage] = []
        if let f = frozenUntil {
            guard now >= f else { return [] }
            frozenUntil = nil
            let queued = held
            held = []
            for m in queued { out += run(.message(m), now: now) }
        }
        if !connected, (core.reconnectAt ?? now) <= now {
            connected = true
            out += run(.connected, now: now)
        }
        out += run(.tick, now: now)
        return out
    }

    /// Hands the real core one event and carries out what it decided on the `sim` backend.
    private func run(_ event: WorkerEvent, now: MonotonicInstant) -> [WorkerMessage] {
        if case .message(.dispatch(let spec)) = event { observe(.received(spec, by: identity, at: now)) }
        let actions = core.handle(event, at: now)
        for case .result(let r) in actions.sends { observe(.reported(r.id, by: identity)) }
        var out = connected ? actions.sends : []
        for spec in actions.starts {
            observe(.started(spec, by: identity, at: now))
            handles[spec.id] = backend.start(spec, events: events)
            out += backendEvents(now: now)
        }
        for id in actions.cancels {
            handles[id]?.cancel()
            out += backendEvents(now: now)
        }
        for note in actions.notes { if case .attemptEnded(let id, _) = note { handles[id] = nil } }
        for case .result(let r) in out {
            sentResults.append(r)
            if sentResults.count > 64 { sentResults.removeFirst() }
        }
        // What the core sent before dropping the connection went out on it.
        if actions.disconnect { connected = false }
        return out
    }

    /// What the backend reported (it reports at once; the core delays the delivery).
    private func backendEvents(now: MonotonicInstant) -> [WorkerMessage] {
        var out: [WorkerMessage] = []
        for e in events.take() {
            switch e {
            case .progress(let id, let tokens): out += run(.progress(id, tokens: tokens), now: now)
            case .finish(let id, let outcome, let after): out += run(.finished(id, outcome, after: after), now: now)
            }
        }
        return out
    }
}

/// Collects what the `sim` backend reports (synchronously, on the simulator's one thread) and
/// stamps each passing output with the process's routing id, `sim:<routing id>:<attempt>`, so
/// the output checker can tell which process produced a subtask's output.
final class StampingEvents: AttemptEvents, @unchecked Sendable {
    enum Event {
        case progress(AttemptID, Int)
        case finish(AttemptID, AttemptOutcome, after: Duration)
    }

    // Only the simulator's single thread touches it.
    var identity = Data()
    private var queue: [Event] = []

    func progress(_ id: AttemptID, tokens: Int) { queue.append(.progress(id, tokens)) }

    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) {
        var o = outcome
        if o.end == .succeeded { o.output = "sim:\(String(decoding: identity, as: UTF8.self)):\(id)" }
        // The backend's seconds, as a span once, here.
        queue.append(.finish(id, o, after: .clampedSeconds(seconds)))
    }

    func take() -> [Event] {
        defer { queue = [] }
        return queue
    }
}
