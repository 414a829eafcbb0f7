import AgentFlowCore
import Foundation
import Logging
import Synchronization
import Traces
import Wire
import ZeroMQ

/// What backends tell the worker's loop. Backends call it from their own threads; it queues
/// the event and wakes the loop, which alone owns the socket. A backend that reports from
/// inside the loop's own call (`start` or `cancel`: the `sim` backend's outcome, known at once)
/// is not woken for: the loop takes the queue before it polls again (``WorkerProcess/run(stop:)``),
/// which saves a write, a read and a poll per simulated attempt.
final class EventInbox: AttemptEvents {
    enum Event {
        case progress(AttemptID, Int)
        case transcript(AttemptID, [TranscriptEntry])
        /// `at`: when the report is due on the worker's clock (0: at once).
        case finish(AttemptID, AttemptOutcome, at: Double)
    }

    let queue = Mutex<[Event]>([])
    let wake = WakeupPipe()
    let time: any TimeSource
    /// The loop's thread (`pthread_self`), set when it starts; 0 before.
    let loopThread = Atomic<UInt>(0)

    init(time: any TimeSource) { self.time = time }

    func progress(_ id: AttemptID, tokens: Int) {
        queued(.progress(id, tokens))
    }

    func transcript(_ id: AttemptID, _ entries: [TranscriptEntry]) {
        queued(.transcript(id, entries))
    }

    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) {
        let at = seconds > 0 ? time.monotonic + seconds : 0
        queued(.finish(id, outcome, at: at))
    }

    func queued(_ event: Event) {
        queue.withLock { $0.append(event) }
        if UInt(pthread_self()) != loopThread.load(ordering: .relaxed) { wake.signal() }
    }

    /// Called by the loop's thread before it first takes the queue.
    func loopStarts() {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
    }

    var isEmpty: Bool { queue.withLock { $0.isEmpty } }

    func take() -> [Event] {
        queue.withLock { q in
            let events = q
            q.removeAll(keepingCapacity: true)
            return events
        }
    }
}

/// A worker process: the worker's protocol (``WorkerCore``) over one DEALER socket to the
/// coordinator, N slots, one backend.
///
/// Paranoid Pirate heartbeating: it sends a heartbeat every interval; when the coordinator
/// has been silent for liveness × interval it closes the socket and reconnects with
/// exponential backoff (1 s → 32 s; with several coordinator endpoints, to the next one at
/// once, at most 2 s between passes over the list), then registers again, reporting what it still runs and
/// results not yet acknowledged, so nothing is lost or run twice across a coordinator restart.
/// The socket is created on, and belongs to, the thread that calls `run`.
public final class WorkerProcess {
    public struct Options: Sendable {
        /// The coordinator endpoints, in the order to try them (one leads, the others stand by).
        public var endpoints: [String]
        /// The first endpoint (the only one, without high availability).
        public var endpoint: String {
            get { endpoints[0] }
            set { endpoints = [newValue] }
        }
        public var heartbeat: Duration = .seconds(1)
        public var liveness: Int = 3
        public var backoffStart: Duration = .seconds(1)
        public var backoffMax: Duration = .seconds(32)
        /// Also log reconnections and other debug detail at `notice` (attempts are always logged
        /// at `info`; `--log-level` filters them).
        public var verbose = false
        /// CURVE: the coordinator's public key and this worker's key pair.
        public var curve: (serverKey: String, keys: CurveKeyPair)?
        /// What stopping means: nil, cancel what runs at once (embedded mode); else drain — tell
        /// the coordinator, take no new attempts, let running ones finish for up to this long,
        /// cancel the rest (they report what they used), then say goodbye.
        public var drainGrace: Duration?
        /// Say on stderr, every `linkReportInterval`, why the coordinator does not answer.
        public var linkReportInterval: Duration = .seconds(5)
        /// Where this worker's spans go (`telemetry:` in cluster.yaml, `--otlp`); nil: none.
        public var tracer: OTLPTracer?
        public init(endpoint: String) { endpoints = [endpoint] }
        /// `endpoints` must not be empty.
        public init(endpoints: [String]) {
            precondition(!endpoints.isEmpty, "a worker needs a coordinator endpoint")
            self.endpoints = endpoints
        }

        /// What the worker's protocol needs of these.
        public var core: WorkerCore.Options {
            var o = WorkerCore.Options()
            o.heartbeat = heartbeat
            o.liveness = liveness
            o.backoffStart = backoffStart
            o.backoffMax = backoffMax
            o.drainGrace = drainGrace
            o.coordinators = endpoints
            return o
        }
    }

    let info: WorkerInfo
    let options: Options
    let backend: any AttemptBackend
    let context: ZMQContext
    let time: any TimeSource
    let codec = WireCodec()
    let inbox: EventInbox

    var core: WorkerCore
    var socket: ZMQSocket?
    /// The backend's handles of the attempts that run.
    var handles: [AttemptID: any AttemptHandle] = [:]
    /// One line per attempt started and ended, with job/attempt/worker metadata (swift-log).
    let logger: Logger
    /// The ROUTER routing id: the name and a suffix unique to this process (see the coordinator's `workerName`).
    let routingID: String
    var monitor: ZMQMonitor?
    var link = LinkState()
    var connectedAt: MonotonicInstant?
    /// The coordinator went silent: the socket is kept (and its monitor, for the link report)
    /// until the core's backoff is over and a new one replaces it.
    var stale = false
    var lastLinkReport = MonotonicInstant(sinceOrigin: .zero)
    /// Since when no coordinator has welcomed this worker (several endpoints are tried meanwhile).
    var unwelcomedSince: MonotonicInstant?
    var done = false
    /// Spans of the attempts dispatched with a trace context (WorkerTraces.swift).
    let traces: WorkerTraces?

    public init(info: WorkerInfo, options: Options, backend: any AttemptBackend, context: ZMQContext, time: any TimeSource = SystemTime()) {
        self.info = info
        self.options = options
        self.backend = backend
        self.context = context
        self.time = time
        self.inbox = EventInbox(time: time)
        self.core = WorkerCore(info: info, options: options.core)
        var logger = Logger(label: "agentflow.worker")
        logger[metadataKey: "worker"] = "\(info.worker.name)"
        self.logger = logger
        self.routingID = info.worker.name + "#" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        traces = options.tracer.map(WorkerTraces.init)
    }

    /// The endpoint the core picked (moves on when a coordinator is lost or does not lead).
    var nextCoordinator: String { options.endpoints[min(core.endpoint, options.endpoints.count - 1)] }
    /// The endpoint the socket is connected to.
    var coordinator = ""

    func connect() throws {
        monitor?.close()
        socket?.close()
        let s = try ZMQSocket(context, .dealer)
        try s.setIdentity(routingID)
        monitor = try? ZMQMonitor(s)
        let seen = link
        link = LinkState()
        if let curve = options.curve { try s.setCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        try s.setHighWaterMarks(send: 0, receive: 0)
        try s.setMaxMessageSize(16 << 20)
        let previous = coordinator
        coordinator = nextCoordinator
        if options.verbose && options.endpoints.count > 1 { logger.notice("connecting to the coordinator at \(coordinator)") }
        try s.connect(coordinator)
        socket = s
        stale = false
        // Keep the monitor's view across a reconnect to the same endpoint for the report.
        if connectedAt != nil && previous == coordinator { link = seen }
        let now = time.instant
        connectedAt = now
        if core.welcomed || unwelcomedSince == nil { unwelcomedSince = now }
        handle(.connected)
    }

    /// Every `linkReportInterval` without a welcome: why (no TCP connection, or a CURVE
    /// key problem), without --verbose.
    func reportLink(now: MonotonicInstant) {
        if let monitor { link.note(monitor.take()) }
        if core.welcomed { unwelcomedSince = nil }
        // With several endpoints the worker moves between them: the time since any welcome counts.
        let connectedAt = connectedAt ?? now
        let since = options.endpoints.count > 1 ? (unwelcomedSince ?? connectedAt) : connectedAt
        guard !core.welcomed, core.rejectedAt.map({ now - $0 > .seconds(30) }) ?? true,
              now - since >= min(.seconds(3), options.linkReportInterval), now - lastLinkReport >= options.linkReportInterval else { return }
        lastLinkReport = now
        core.troubleReported = true
        if options.endpoints.count > 1 {
            logger.warning("""
                no coordinator has welcomed this worker for \(formatSeconds(now - since)) (tried \(options.endpoints.joined(separator: ", ")); \
                none answers, or none leads yet); still trying
                """)
            return
        }
        let problem = link.problem(coordinator, curve: options.curve != nil)
            ?? "connected to the coordinator at \(coordinator) but it has not answered for \(formatSeconds(now - connectedAt))"
        logger.warning("\(problem); still trying")
    }

    func formatSeconds(_ d: Duration) -> String {
        let s = d.seconds
        return s < 60 ? "\(Int(s))s" : "\(Int(s / 60))m\(Int(s) % 60)s"
    }

    /// Hands the core one event and carries out what it decided.
    func handle(_ event: WorkerEvent) {
        let actions = core.handle(event, at: time.instant)
        for spec in actions.starts {
            traces?.started(spec)
            handles[spec.id] = backend.start(spec, events: inbox)
        }
        for id in actions.cancels { handles[id]?.cancel() }
        for m in actions.sends { _ = try? socket?.send([codec.encode(m)], dontWait: true) }
        for note in actions.notes { log(note) }
        if actions.disconnect { stale = true }
        if actions.done { done = true }
    }

    func log(_ note: WorkerNote) {
        switch note {
        case .attemptStarted(let spec):
            logger.info("attempt started", metadata: [
                "job": "\(spec.id.job)", "attempt": "\(spec.id)", "model": "\(spec.model)", "cap": .stringConvertible(spec.tokenCap),
            ])
        case .attemptEnded(let id, let outcome):
            handles[id] = nil
            traces?.ended(id)
            logger.info("attempt ended", metadata: [
                "job": "\(id.job)", "attempt": "\(id)", "outcome": "\(outcome.end.rawValue)", "tokens": .stringConvertible(outcome.totalTokens),
                "detail": "\(outcome.detail)",
            ])
        case .registered:
            logger.notice("registered with the coordinator at \(coordinator)")
        case .rejected(let reason):
            logger.error("the coordinator refused to register this worker: \(reason)")
            lastLinkReport = time.instant
        case .coordinatorSilent(let span):
            logger.warning("the coordinator at \(coordinator) has been silent for \(formatSeconds(span)); reconnecting")
        case .draining(let running, let grace):
            logger.notice("draining: \(running) attempt(s) running, grace \(formatSeconds(grace))")
        case .drainGraceOver(let n):
            logger.notice("drain grace over: cancelling \(n) attempt(s)")
        }
    }

    public func run(stop: StopSignal) throws {
        inbox.loopStarts()
        try connect()
        // Polled every heartbeat (the coordinator's may differ from the options'; close enough).
        let loadPoller = ServerLoadPoller(backend: backend, interval: options.heartbeat, time: time)
        defer {
            loadPoller.stop()
            // Whatever still runs (an error ended the loop) is stopped.
            for handle in handles.values { handle.cancel() }
            try? socket?.setLinger(seconds: 1)
            monitor?.close()
            socket?.close()
            // Spans of the attempts that ended go out before the process does.
            traces?.tracer.exporter.flush(timeout: 3)
        }
        var stopped = false
        while !done {
            if stop.isSet && !stopped {
                stopped = true
                handle(.stop)
                if done { break }
            }
            // What this thread's own calls queued (a backend that reported at once) sent no
            // wakeup: it is handled before the loop sleeps.
            while !inbox.isEmpty { drainInbox() }
            if done { break }
            var poller = ZMQPoller()
            let si = stale ? nil : socket.map { poller.add($0) }
            let wi = poller.add(fd: inbox.wake.readFD)
            let ti = poller.add(fd: stop.pipe.readFD)
            let now = time.instant
            try poller.poll(timeout: max(0, (core.wakeAt(now: now) - now).seconds))
            if poller.isReadable(ti) { stop.pipe.drain() }
            if poller.isReadable(wi) { inbox.wake.drain() }
            if let si, poller.isReadable(si), let socket {
                var n = 0
                while n < 4096, let frames = try socket.receive(dontWait: true) {
                    n += 1
                    guard frames.count == 1, let message = try? codec.decode(CoordinatorMessage.self, from: frames[0]) else { continue }
                    handle(.message(message))
                }
            }
            drainInbox()
            handle(.serverLoad(loadPoller.load))
            handle(.tick)
            let t = time.instant
            if stale, let r = core.reconnectAt, t >= r, !done { try connect() }
            reportLink(now: t)
        }
    }

    func drainInbox() {
        for event in inbox.take() {
            switch event {
            case .progress(let id, let tokens):
                handle(.progress(id, tokens: tokens))
            case .transcript(let id, let entries):
                traces?.recorded(id, entries)
                handle(.transcript(id, entries))
            case .finish(let id, let outcome, let at):
                handle(.finished(id, outcome, after: at <= 0 ? .zero : max(.clampedSeconds(at - time.monotonic), .nanoseconds(1))))
            }
        }
    }
}
