import AgentFlowCore
import Foundation
import Logging
import Synchronization
import Wire
import ZeroMQ

/// What backends tell the worker's loop. Backends call it from their own threads; it queues
/// the event and wakes the loop, which alone owns the socket.
final class EventInbox: AttemptEvents {
    enum Event {
        case progress(AttemptID, Int)
        case finish(AttemptID, AttemptOutcome, at: Double)
    }

    let queue = Mutex<[Event]>([])
    let wake = WakeupPipe()
    let time: any TimeSource

    init(time: any TimeSource) { self.time = time }

    func progress(_ id: AttemptID, tokens: Int) {
        queue.withLock { $0.append(.progress(id, tokens)) }
        wake.signal()
    }

    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) {
        let at = seconds > 0 ? time.now + seconds : 0
        queue.withLock { $0.append(.finish(id, outcome, at: at)) }
        wake.signal()
    }

    func take() -> [Event] {
        queue.withLock { q in
            let events = q
            q.removeAll(keepingCapacity: true)
            return events
        }
    }
}

/// A worker process: one DEALER socket to the coordinator, N slots, one backend.
///
/// Paranoid Pirate heartbeating: it sends a heartbeat every interval; when the coordinator
/// has been silent for liveness × interval it closes the socket and reconnects with
/// exponential backoff (1 s → 32 s), then registers again, reporting what it still runs and
/// results not yet acknowledged, so nothing is lost or run twice across a coordinator restart.
/// The socket is created on, and belongs to, the thread that calls `run`.
public final class WorkerProcess {
    public struct Options: Sendable {
        public var endpoint: String
        public var heartbeat: Double = 1
        public var liveness: Int = 3
        public var backoffStart: Double = 1
        public var backoffMax: Double = 32
        /// Also log reconnections and other debug detail at `notice` (attempts are always logged
        /// at `info`; `--log-level` filters them).
        public var verbose = false
        /// CURVE: the coordinator's public key and this worker's key pair.
        public var curve: (serverKey: String, keys: CurveKeyPair)?
        /// What stopping means: nil, cancel what runs at once (embedded mode); else drain — tell
        /// the coordinator, take no new attempts, let running ones finish for up to this many
        /// seconds, cancel the rest (they report what they used), then say goodbye.
        public var drainGrace: Double?
        /// Say on stderr, every `linkReportInterval` seconds, why the coordinator does not answer.
        public var linkReportInterval: Double = 5
        public init(endpoint: String) { self.endpoint = endpoint }
    }

    let info: WorkerInfo
    let options: Options
    let backend: any AttemptBackend
    let context: ZMQContext
    let time: any TimeSource
    let codec = WireCodec()
    let inbox: EventInbox

    var socket: ZMQSocket?
    var running: [AttemptID: any AttemptHandle] = [:]
    /// Results sent but not yet acknowledged; re-sent on re-registration.
    var unacked: [AttemptID: AttemptReport] = [:]
    /// Every attempt id this process has accepted: an attempt never runs twice.
    var seen: Set<AttemptID> = []
    /// Delayed deliveries (the simulated backend's latency), by due time.
    var scheduled: [(at: Double, id: AttemptID, outcome: AttemptOutcome)] = []
    var lastHeard = 0.0
    var nextHeartbeat = 0.0
    var lastProgress: [AttemptID: Double] = [:]
    var heartbeat: Double
    var liveness: Int
    /// One line per attempt started and ended, with job/attempt/worker metadata (swift-log).
    let logger: Logger
    /// The ROUTER routing id: the name and a suffix unique to this process (see the coordinator's `workerName`).
    let routingID: String
    var monitor: ZMQMonitor?
    var link = LinkState()
    var connectedAt = 0.0
    var welcomed = false
    var lastLinkReport = 0.0
    var reportedTrouble = false
    var lastRejection: (reason: String, at: Double)?
    var rejectedAt: Double?
    var drainCancelled = false
    /// When draining began (SIGTERM), and when running attempts get cancelled.
    var drainingSince: Double?

    public init(info: WorkerInfo, options: Options, backend: any AttemptBackend, context: ZMQContext, time: any TimeSource = SystemTime()) {
        self.info = info
        self.options = options
        self.backend = backend
        self.context = context
        self.time = time
        self.inbox = EventInbox(time: time)
        self.heartbeat = options.heartbeat
        self.liveness = options.liveness
        var logger = Logger(label: "agentflow.worker")
        logger[metadataKey: "worker"] = "\(info.name)"
        self.logger = logger
        self.routingID = info.name + "#" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    func connect() throws {
        monitor?.close()
        socket?.close()
        let s = try ZMQSocket(context, .dealer)
        try s.setIdentity(routingID)
        monitor = try? ZMQMonitor(s)
        link = LinkState()
        welcomed = false
        if let curve = options.curve { try s.setCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        try s.setHighWaterMarks(send: 0, receive: 0)
        try s.setMaxMessageSize(16 << 20)
        try s.connect(options.endpoint)
        socket = s
        let now = time.now
        lastHeard = now
        connectedAt = now
        nextHeartbeat = now + heartbeat
        send(.register(info: info, running: Array(running.keys), finished: Array(unacked.values)))
    }

    /// Every `linkReportInterval` seconds without a welcome: why (no TCP connection, or a CURVE
    /// key problem), without --verbose.
    func reportLink(now: Double) {
        if let monitor { link.note(monitor.take()) }
        guard !welcomed, rejectedAt.map({ now - $0 > 30 }) ?? true,
              now - connectedAt >= min(3, options.linkReportInterval), now - lastLinkReport >= options.linkReportInterval else { return }
        lastLinkReport = now
        reportedTrouble = true
        let problem = link.problem(options.endpoint, curve: options.curve != nil)
            ?? "connected to the coordinator at \(options.endpoint) but it has not answered for \(formatSeconds(now - connectedAt))"
        logger.warning("\(problem); still trying")
    }

    func formatSeconds(_ s: Double) -> String { s < 60 ? "\(Int(s))s" : "\(Int(s / 60))m\(Int(s) % 60)s" }

    /// SIGTERM: no new attempts, running ones finish within the grace period, then are
    /// cancelled; true once nothing is left to wait for.
    func drainStep(now: Double, grace: Double) -> Bool {
        if drainingSince == nil {
            drainingSince = now
            send(.draining)
            logger.notice("draining: \(running.count) attempt(s) running, grace \(formatSeconds(grace))")
        }
        let since = drainingSince!
        if now - since >= grace && !running.isEmpty && !drainCancelled {
            drainCancelled = true
            logger.notice("drain grace over: cancelling \(running.count) attempt(s)")
            for handle in running.values { handle.cancel() }
        }
        if !running.isEmpty { return now - since >= grace + 10 }
        // Results sent but not acknowledged would be lost with the connection: wait for the acks.
        return unacked.isEmpty || !welcomed || now - since >= grace + 10
    }

    func send(_ message: WorkerMessage) {
        _ = try? socket?.send([codec.encode(message)], dontWait: true)
    }

    public func run(stop: StopSignal) throws {
        try connect()
        var backoff = options.backoffStart
        defer {
            for handle in running.values { handle.cancel() }
            // Cancelled attempts report what they used before the goodbye (bounded wait), so
            // the coordinator charges that instead of their whole reservations.
            let until = time.now + 2
            while (!running.isEmpty || !scheduled.isEmpty) && time.now < until {
                var p = ZMQPoller()
                p.add(fd: inbox.wake.readFD)
                _ = try? p.poll(timeout: 0.05)
                inbox.wake.drain()
                drainInbox()
                deliverDue()
            }
            send(.goodbye)
            try? socket?.setLinger(seconds: 1)
            monitor?.close()
            socket?.close()
        }
        while true {
            if stop.isSet {
                guard let grace = options.drainGrace, welcomed else { break }
                if drainStep(now: time.now, grace: grace) { break }
            }
            guard let socket else { break }
            var poller = ZMQPoller()
            let si = poller.add(socket)
            let wi = poller.add(fd: inbox.wake.readFD)
            let ti = poller.add(fd: stop.pipe.readFD)
            let now = time.now
            var wait = nextHeartbeat - now
            if let first = scheduled.first { wait = min(wait, first.at - now) }
            if !welcomed || drainingSince != nil { wait = min(wait, 0.25) }
            try poller.poll(timeout: max(0, wait))
            if poller.isReadable(ti) { stop.pipe.drain() }
            if poller.isReadable(wi) { inbox.wake.drain() }
            if poller.isReadable(si) {
                var n = 0
                while n < 4096, let frames = try socket.receive(dontWait: true) {
                    n += 1
                    lastHeard = time.now
                    backoff = options.backoffStart
                    guard frames.count == 1, let message = try? codec.decode(CoordinatorMessage.self, from: frames[0]) else { continue }
                    handle(message)
                }
            }
            drainInbox()
            deliverDue()
            let t = time.now
            if t >= nextHeartbeat {
                send(.heartbeat)
                nextHeartbeat = t + heartbeat
            }
            reportLink(now: t)
            // Deadlines are the backends' to honour; this is the backstop if one does not.
            if t - lastHeard > heartbeat * Double(liveness) {
                // The coordinator is gone: back off, reconnect, register again.
                if welcomed { logger.warning("the coordinator at \(options.endpoint) has been silent for \(formatSeconds(t - lastHeard)); reconnecting") }
                welcomed = false
                if stop.isSet { break }
                let deadline = time.now + backoff
                while time.now < deadline && !stop.isSet {
                    reportLink(now: time.now)
                    var p = ZMQPoller()
                    p.add(fd: stop.pipe.readFD)
                    try p.poll(timeout: min(0.2, deadline - time.now))
                    drainInbox()
                    deliverDue()
                }
                backoff = min(backoff * 2, options.backoffMax)
                if !stop.isSet {
                    // Keep the monitor's view across the reconnect for the report.
                    let seen = link
                    try connect()
                    link = seen
                }
            }
        }
    }


    func handle(_ message: CoordinatorMessage) {
        switch message {
        case .welcome(let hb, let lv):
            heartbeat = hb
            liveness = lv
            if !welcomed && (reportedTrouble || lastRejection != nil) { logger.notice("registered with the coordinator at \(options.endpoint)") }
            welcomed = true
            reportedTrouble = false
            lastRejection = nil
            rejectedAt = nil
            if drainingSince != nil { send(.draining) }
        case .heartbeat:
            break
        case .rejected(let reason):
            // Logged when it changes or every 30 s; registering again is tried every 5 s (an
            // operator may enrol the key and reload the coordinator meanwhile).
            let now = time.now
            if lastRejection?.reason != reason || now - (lastRejection?.at ?? 0) >= 30 {
                logger.error("the coordinator refused to register this worker: \(reason)")
                lastRejection = (reason, now)
            }
            welcomed = false
            rejectedAt = now
            lastLinkReport = now
        case .reregister:
            if let r = rejectedAt, time.now - r < 5 { return }
            send(.register(info: info, running: Array(running.keys), finished: Array(unacked.values)))
        case .dispatch(let spec):
            guard !seen.contains(spec.id) else { return }
            if drainingSince != nil {
                report(spec.id, AttemptOutcome(end: .cancelled, usage: [], detail: "worker \(info.name) is draining"))
                return
            }
            guard running.count < info.slots else {
                report(spec.id, AttemptOutcome(end: .error, usage: [], detail: "worker \(info.name) has no free slot"))
                return
            }
            seen.insert(spec.id)
            logger.info("attempt started", metadata: [
                "job": "\(spec.id.job)", "attempt": "\(spec.id)", "model": "\(spec.model)", "cap": .stringConvertible(spec.tokenCap),
            ])
            // The deadline is taken relative, on this host's clock: skew between hosts and
            // clock steps neither shorten nor stretch it.
            var local = spec
            local.deadline = time.now + (spec.ttl.isFinite ? min(max(0, spec.ttl), Limits.maxSeconds) : 0)
            running[spec.id] = backend.start(local, events: inbox)
        case .cancel(let id):
            running[id]?.cancel()
        case .ack(let ids):
            for id in ids { unacked[id] = nil }
        }
    }

    func drainInbox() {
        for event in inbox.take() {
            switch event {
            case .progress(let id, let tokens):
                let now = time.now
                if running[id] != nil, now - (lastProgress[id] ?? 0) >= 0.2 {
                    lastProgress[id] = now
                    send(.progress(id: id, tokens: tokens))
                }
            case .finish(let id, let outcome, let at):
                if at <= 0 {
                    // Immediate: overrides any delayed delivery of the same attempt (a cancel).
                    scheduled.removeAll { $0.id == id }
                    report(id, outcome)
                } else {
                    let i = scheduled.firstIndex { $0.at > at } ?? scheduled.count
                    scheduled.insert((at, id, outcome), at: i)
                }
            }
        }
    }

    func deliverDue() {
        let now = time.now
        while let first = scheduled.first, first.at <= now {
            scheduled.removeFirst()
            report(first.id, first.outcome)
        }
    }

    /// Sends a result once: for an attempt still running, or one refused before it started.
    /// A second outcome for the same attempt (a delayed delivery after a cancel) is dropped.
    func report(_ id: AttemptID, _ outcome: AttemptOutcome) {
        let wasRunning = running.removeValue(forKey: id) != nil
        guard wasRunning || !seen.contains(id) else { return }
        lastProgress[id] = nil
        logger.info("attempt ended", metadata: [
            "job": "\(id.job)", "attempt": "\(id)", "outcome": "\(outcome.end.rawValue)", "tokens": .stringConvertible(outcome.totalTokens),
            "detail": "\(outcome.detail)",
        ])
        let r = AttemptReport(id: id, outcome: outcome)
        unacked[id] = r
        send(.result(r))
    }
}
