import AgentFlowCore
import Foundation
import Observability
import Planner
import Store
import Synchronization
import Wire
import ZeroMQ

/// Counters the coordinator keeps about its sockets and dispatch, for `workers`/benchmarks.
public struct CoordinatorStats: Sendable {
    public init() {}
    public var malformedMessages = 0
    /// Requests, registrations and results refused for out-of-range or hostile values.
    public var refusedRequests = 0
    /// Jobs ended `failed` on resume instead of resumed (rows failing a check, or a crash on them).
    public var quarantinedJobs = 0
    /// Connection attempts the CURVE allowlist refused.
    public var curveDenied = 0
    public var curveDeniedKeys: [String] = []
    public var ignoredResults = 0
    public var dispatched = 0
    public var results = 0
    /// Running attempts cancelled so that a job at risk gets their slot.
    public var preemptions = 0
    /// Seconds from sending a dispatch to recording its result (benchmarks; bounded buckets).
    public var roundTrips = LatencyHistogram()
    /// Seconds per decision of planners run on the planning thread.
    public var planning = LatencyHistogram()
    /// Loop iterations, and seconds the loop spent working (not waiting in poll).
    public var loops = 0
    public var busySeconds = 0.0
}


/// The coordinator: two ROUTER sockets (workers, clients), the SQLite store, the planner.
///
/// Everything runs on one thread — the one that calls `run()`. Both sockets and the SQLite
/// connection are created on and belong to that thread; other threads reach it only through
/// ZeroMQ messages or the `StopSignal`.
public final class Coordinator {
    public struct Options: Sendable {
        public var workersEndpoint: String
        public var clientsEndpoint: String
        public var database: String
        public var heartbeat: Double
        public var liveness: Int
        /// Record per-attempt round trips (benchmarks).
        public var recordRoundTrips = false
        /// Where the coordinator's metrics go (`GET /metrics` renders it).
        public var metrics = MetricsRegistry.shared
        /// CURVE: the coordinator's secret key, and the peers allowed (empty: any that knows the public key).
        public var curveSecretKey: String?
        public var authorizedKeys: [String] = []
        /// Which keys may connect and register which worker names; reloadable (SIGHUP).
        /// Without it, `authorizedKeys` is the allowlist and names are not bound to keys.
        public var identities: WorkerIdentities?
        /// Seed for job ids and default planner seeds (the simulator's; random otherwise).
        public var idSeed: UInt64?
        /// Embedded mode: end a job `failed` once every worker it could use has been suspended
        /// by its backend breaker this many times in a row (nil: wait, servers can come back).
        public var failAfterSuspensions: Int?
        /// Which job's queued attempt gets a freed slot (`scheduling:` in cluster.yaml, `--policy`).
        public var policy: FleetPolicy
        /// When a job at risk may cancel a lower-ranked job's running attempt (nil: never;
        /// `scheduling.preemption`, `--preemption`).
        public var preemption: PreemptionRules?

        public init(cluster: Cluster) {
            workersEndpoint = cluster.coordinator.workersBind
            clientsEndpoint = cluster.coordinator.clientsBind
            database = cluster.coordinator.database
            heartbeat = cluster.coordinator.heartbeat
            liveness = cluster.coordinator.liveness
            let scheduling = cluster.scheduling ?? SchedulingSpec()
            policy = FleetPolicy(kind: FleetPolicyKind(rawValue: scheduling.policy) ?? .fleet,
                                 tenantWeights: scheduling.tenants, agingSeconds: scheduling.aging)
            preemption = scheduling.preemption ? PreemptionRules() : nil
        }
    }

    let cluster: Cluster
    let options: Options
    let time: any TimeSource
    let context: ZMQContext?
    var store: Store!
    var workerSocket: ZMQSocket!
    var clientSocket: ZMQSocket!
    let codec = WireCodec()

    var jobs: [String: JobRun] = [:]
    var workers: [String: WorkerEntry] = [:]
    var stats = CoordinatorStats()
    /// Events per job and metrics, for the HTTP API (Telemetry.swift).
    lazy var telemetry = Telemetry(metrics: options.metrics)
    var nextHeartbeat = 0.0
    var dispatchTimes: [AttemptID: Double] = [:]
    let planningThread = PlanningThread()
    let intake = IntakeThread()
    /// Results recorded this loop iteration, acknowledged in one message per worker after the
    /// commit (a worker forgets a result only once it is durable).
    var pendingAcks: [Data: [AttemptID]] = [:]
    /// Messages decided this loop iteration. Nothing leaves before the iteration's transaction
    /// commits (see `commit()`): a crash before the commit forgets the decisions and the
    /// messages together, so no worker runs an attempt the store does not know about and no
    /// client is told about a job that was never stored.
    var outbox: [Outgoing] = []
    /// State changes decided this loop iteration, in order (see `StoreWrite`): the core never
    /// writes the store itself; `commit()` applies them in the iteration's transaction.
    var writes: [StoreWrite] = []
    /// Planning requests decided this iteration; the shell hands them to the planning thread.
    var planRequests: [PlanRequest] = []
    /// Ended jobs still held in memory, oldest first.
    var recentlyFinished: [String] = []
    /// Observations per workflow name, loaded from the store on first use.
    var books: [String: EstimateBook] = [:]
    /// Workers `agentflow drain` took out of dispatch, by name.
    var drainedNames: Set<String> = []
    /// Monotonic time of the next scan for silent attempts (`tick`).
    var nextSilentScan = 0.0
    /// Job ids and default seeds: random, or from `Options.idSeed` (reproducible).
    lazy var idGenerator = SplitMix64(seed: options.idSeed ?? UInt64.random(in: 0...UInt64.max))
    /// The cross-job policy's running state (ranks, attempt lengths, tenants' slot-seconds).
    var fleet = FleetBook()

    public init(cluster: Cluster, options: Options, context: ZMQContext, time: any TimeSource = SystemTime()) {
        self.cluster = cluster
        self.options = options
        self.context = context
        self.time = time
    }

    /// A coordinator without sockets, driven through its events (`CoreEvents.swift`): the
    /// deterministic simulator's.
    public init(cluster: Cluster, options: Options, time: any TimeSource) {
        self.cluster = cluster
        self.options = options
        self.context = nil
        self.time = time
    }

    var deadAfter: Double { options.heartbeat * Double(options.liveness) }
    /// Monotonic seconds: every interval (liveness, cooldowns, claims, attempt time-to-live)
    /// is measured on it, so a step of the wall clock changes none of them.
    var monotonicNow: Double { time.monotonic }
    /// How long past its deadline an attempt may stay unreported before it is reclaimed.
    var reclaimGrace: Double { deadAfter + 2 }

    /// Runs until `stop` is set; `onBound` gets the endpoints actually bound (ports resolved).
    /// Throws if the sockets cannot be bound or the store opened. Returns the final counters.
    @discardableResult
    public func run(stop: StopSignal, onBound: (String, String) -> Void = { _, _ in }) throws -> CoordinatorStats {
        guard let context else { preconditionFailure("run() needs a ZeroMQ context") }
        store = try Store(path: options.database)
        // Armed once the database lock is ours: a crash while handling a job names it for the next start.
        CrashGuard.install(database: options.database)
        workerSocket = try ZMQSocket(context, .router)
        clientSocket = try ZMQSocket(context, .router)
        defer {
            workerSocket.close()
            clientSocket.close()
        }
        for socket in [workerSocket!, clientSocket!] {
            // Bounded queues: a peer that never reads loses messages past the mark instead of
            // growing the coordinator's memory without end (ROUTER drops, never blocks).
            try socket.setHighWaterMarks(send: Self.sendHighWaterMark, receive: Self.receiveHighWaterMark)
            try socket.setMaxMessageSize(16 << 20)
        }
        var zap: ZAPHandler?
        if let secret = options.curveSecretKey {
            // The ZAP handler must be bound before any CURVE server socket binds.
            zap = try ZAPHandler(context, allowList: options.identities?.allowList ?? KeyAllowList(options.authorizedKeys))
            try workerSocket.setCurveServer(secretKey: secret)
            try clientSocket.setCurveServer(secretKey: secret)
        }
        defer { zap?.socket.close() }
        // A restarted worker reconnects under the same routing id; let it take the id over.
        try workerSocket.setRouterHandover()
        try workerSocket.bind(options.workersEndpoint)
        try clientSocket.bind(options.clientsEndpoint)
        onBound(workerSocket.lastEndpoint(), clientSocket.lastEndpoint())

        try start()
        // A suspect job from the last crash is quarantined and committed by now.
        CrashGuard.clear(database: options.database)

        var poller = ZMQPoller()
        let wi = poller.add(workerSocket)
        let ci = poller.add(clientSocket)
        let si = poller.add(fd: stop.pipe.readFD)
        let pi = poller.add(fd: planningThread.wake.readFD)
        let zi = zap.map { poller.add($0.socket) }
        let ii = poller.add(fd: intake.wake.readFD)
        while !stop.isSet {
            try poller.poll(timeout: nextWake())
            let busyFrom = DispatchTime.now().uptimeNanoseconds
            defer {
                stats.loops += 1
                stats.busySeconds += Double(DispatchTime.now().uptimeNanoseconds - busyFrom) / 1e9
            }
            if poller.isReadable(si) { stop.pipe.drain() }
            if let zi, poller.isReadable(zi) { try zap?.serve() }
            if poller.isReadable(pi) { planningThread.wake.drain() }
            if poller.isReadable(ii) { intake.wake.drain() }
            try store.begin()
            try collectSubmissions()
            try collectDecisions(now: time.now)
            if poller.isReadable(wi) { try drainWorkers() }
            if poller.isReadable(ci) { try drainClients() }
            try timers()
            // The outbox: commit first, then send what this iteration decided.
            flush(try commit())
        }
        flush(try commit())
        stats.curveDenied = zap?.denied ?? 0
        stats.curveDeniedKeys = zap?.deniedKeys ?? []
        return stats
    }

    /// Messages per socket that may wait for a slow peer before the socket drops them.
    static let sendHighWaterMark: Int32 = 10_000
    static let receiveHighWaterMark: Int32 = 10_000

    /// Sends what a committed iteration decided.
    func flush(_ messages: [Outgoing]) {
        for m in messages {
            switch m {
            case .toWorker(let identity, let message):
                _ = try? workerSocket.send([identity, codec.encode(message)], dontWait: true)
            case .toClient(let route, let reply):
                _ = try? clientSocket.send(route + [codec.encode(reply)], dontWait: true)
            }
        }
    }

    /// Seconds until the next timer: the heartbeat, a cooldown or claim (monotonic), a job
    /// deadline (wall clock).
    func nextWake() -> Double {
        let now = time.now, mono = monotonicNow
        var wait = nextHeartbeat - mono
        for job in jobs.values where !job.isTerminal { wait = min(wait, job.record.deadline - now) }
        for w in workers.values { if let until = w.breaker.suspendedUntil { wait = min(wait, until - mono) } }
        for job in jobs.values {
            for id in job.unclaimed { if let c = job.live[id]?.claimBy { wait = min(wait, c - mono) } }
        }
        return max(0, min(wait, options.heartbeat))
    }


    func drainWorkers() throws {
        var budget = 4096
        while budget > 0, let (frames, peerKey) = try workerSocket.receiveWithPeerKey(dontWait: true) {
            budget -= 1
            guard frames.count == 2 else {
                noteMalformed(socket: "workers")
                continue
            }
            let message: WorkerMessage
            do {
                message = try codec.decode(WorkerMessage.self, from: frames[1])
            } catch {
                noteMalformed(socket: "workers")
                continue
            }
            try handle(message, from: frames[0], key: peerKey)
        }
    }

    func drainClients() throws {
        var budget = 256
        while budget > 0, let frames = try clientSocket.receive(dontWait: true) {
            budget -= 1
            // DEALER clients send [identity, payload]; REQ clients add an empty delimiter.
            guard frames.count >= 2, let payload = frames.last else {
                noteMalformed(socket: "clients")
                continue
            }
            let route = Array(frames.dropLast())
            let request: ClientRequest
            do {
                request = try codec.decode(ClientRequest.self, from: payload)
            } catch {
                noteMalformed(socket: "clients")
                // The error names what was wrong, never echoes the request back.
                reply(.error(code: 2, message: "malformed request (\(payload.count) bytes)"), to: route)
                continue
            }
            if case .submit(let s) = request {
                // Answered once the workflow is parsed, off this thread.
                intake.parse(s, frames: route, received: time.now, knownModels: cluster.modelNames)
                continue
            }
            try clientRequest(request, route: route)
        }
    }

    /// Submissions whose workflow has been parsed: create the jobs; the answers leave after the commit.
    func collectSubmissions() throws {
        for p in intake.take() {
            try submission(p.request, parsed: p.workflow, received: p.received, route: p.frames)
        }
    }

    /// Decisions back from the planning thread.
    func collectDecisions(now: Double) throws {
        try decisions(planningThread.take(), now: now)
    }

    /// Queues a message to a worker; it leaves after the iteration commits.
    func send(_ message: CoordinatorMessage, to identity: Data) {
        outbox.append(.toWorker(identity: identity, message))
    }

    /// Queues a reply to a client; it leaves after the iteration commits.
    func reply(_ reply: ClientReply, to route: [Data]) {
        outbox.append(.toClient(route: route, reply))
    }
}
