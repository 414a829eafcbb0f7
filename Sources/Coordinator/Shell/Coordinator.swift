import AgentFlowCore
import Foundation
import Observability
import Planner
import Store
import Synchronization
import Traces
import Wire
import ZeroMQ

/// The coordinator process: two ROUTER sockets (workers, clients) around the shell that runs
/// the core (``CoordinatorShell``), with three helper threads — the intake (parses
/// submissions), the planner (MCPP) and the query service (read-only requests, on a read
/// connection of its own).
///
/// The loop runs on the thread that calls `run()`. Both sockets and the store's write
/// connection are created on and belong to that thread; other threads reach it only through
/// ZeroMQ messages, the helpers' queues and wake-up pipes, or the `StopSignal`.
public final class Coordinator {
    public struct Options: Sendable {
        public var workersEndpoint: String
        public var clientsEndpoint: String
        public var database: String
        public var heartbeat: Duration
        public var liveness: Int
        /// Record per-attempt round trips (benchmarks).
        public var recordRoundTrips = false
        /// Group commit: how long the loop may wait for the results of the attempts it just
        /// sent before it decides the next batch (``CommitPipeline/linger``).
        public var commitLinger: Duration = Options.defaultCommitLinger
        /// None: the next batch is decided as soon as the writer is free. A 1 ms linger (the
        /// default until 6 Dec night) gave the same attempts/s in `bench dispatch` with a higher
        /// dispatch latency (docs/benchmarks.md, "Dispatch: where the dispatch latency goes"),
        /// and delayed production's next decision after every dispatching batch.
        public static let defaultCommitLinger: Duration = .zero
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
        /// CURVE client keys, their roles and tenants; nil: every client may do everything (ClientAccess.swift).
        public var clientKeys: ClientKeyBook?
        /// The group of an `ipc://` client socket.
        public var clientsGroup: String?
        /// A second endpoint of the client socket for this process's HTTP server (`inproc://`).
        public var internalClientsEndpoint: String?
        /// Accept worker registrations from non-loopback addresses without CURVE (`--insecure`).
        public var remoteWorkersWithoutCurve = false
        /// How much of the attempts' transcripts is kept (`coordinator.transcripts`).
        public var transcripts: TranscriptLimits
        /// Secrets to take out of transcripts besides the well-known key formats: the HTTP
        /// tokens and the backend keys this process can read.
        public var secrets: [String] = []
        /// Where the spans go (`telemetry:` in cluster.yaml); nil: no traces, and dispatches
        /// carry no trace context.
        public var tracer: OTLPTracer?
        /// With a PostgreSQL database: the leader's lease (`coordinator.lease`, Standby.swift).
        public var lease: Duration = .seconds(5)

        public init(cluster: Cluster) {
            workersEndpoint = cluster.coordinator.workersBind
            clientsEndpoint = cluster.coordinator.clientsBind
            database = cluster.coordinator.database
            heartbeat = cluster.coordinator.heartbeat
            liveness = cluster.coordinator.liveness
            let core = CoreOptions(cluster: cluster, idSeed: 0)
            policy = core.policy
            preemption = core.preemption
            clientsGroup = cluster.coordinator.clientsGroup
            transcripts = cluster.coordinator.transcripts
            lease = cluster.coordinator.lease
        }

        /// What the core needs of these.
        public func core(cluster: Cluster) -> CoreOptions {
            var o = CoreOptions(cluster: cluster, idSeed: idSeed ?? UInt64.random(in: 0...UInt64.max))
            o.heartbeat = heartbeat
            o.liveness = liveness
            o.recordRoundTrips = recordRoundTrips
            o.failAfterSuspensions = failAfterSuspensions
            o.policy = policy
            o.preemption = preemption
            o.transcripts = transcripts
            o.redactor = SecretRedactor(secrets: secrets)
            o.traces = tracer != nil
            return o
        }
    }

    let cluster: Cluster
    let options: Options
    let context: ZMQContext
    let time: any TimeSource
    let codec = WireCodec()
    /// The shell's own counters (the core keeps the rest).
    var stats = CoordinatorStats()

    public init(cluster: Cluster, options: Options, context: ZMQContext, time: any TimeSource = SystemTime()) {
        self.cluster = cluster
        self.options = options
        self.context = context
        self.time = time
    }

    /// Runs until `stop` is set; `onBound` gets the endpoints actually bound (ports resolved).
    /// Throws if the sockets cannot be bound or the store opened. Returns the final counters.
    @discardableResult
    public func run(stop: StopSignal, onBound: (String, String) -> Void = { _, _ in }) throws -> CoordinatorStats {
        let store = try Store(database: options.database, lease: options.lease)
        // Armed once the database lock is ours: a crash while handling a job names it for the next start.
        if !store.isShared { CrashGuard.install(database: options.database) }
        let telemetry = Telemetry(metrics: options.metrics)
        if let tracer = options.tracer {
            // Attempts cancelled at a job's end report within a liveness period.
            telemetry.traces = JobTraces(tracer: tracer, reader: try store.reader(), settle: options.heartbeat * options.liveness + .seconds(2), time: time)
        }
        let board = LiveBoard()
        let shell = CoordinatorShell(core: CoordinatorCore(cluster: cluster, options: options.core(cluster: cluster)), store: store,
                                     board: board, telemetry: telemetry)
        let workerSocket = try ZMQSocket(context, .router)
        let clientSocket = try ZMQSocket(context, .router)
        defer {
            workerSocket.close()
            clientSocket.close()
        }
        for socket in [workerSocket, clientSocket] {
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
        try Self.bindClients(clientSocket, options.clientsEndpoint, group: options.clientsGroup)
        let clientsBound = clientSocket.lastEndpoint()
        if let inProcess = options.internalClientsEndpoint { try clientSocket.bind(inProcess) }
        onBound(workerSocket.lastEndpoint(), clientsBound)
        // PostgreSQL: stand by until this coordinator holds the lease (Standby.swift).
        if let db = store.postgres {
            let advertised = (Self.advertised(workerSocket.lastEndpoint()), Self.advertised(clientsBound))
            guard try standBy(db, store: store, workers: workerSocket, clients: clientSocket, advertised: advertised, stop: stop,
                              telemetry: telemetry) else { return stats }
        }
        defer { store.postgres?.releaseLease() }

        let planning = PlanningThread()
        let queries = QueryThread(service: QueryService(reader: try store.reader(), board: board, telemetry: telemetry,
                                                        wallClock: { [time] in time.wallInstant }))
        let send: (Outgoing) -> Void = { [codec] m in
            switch m {
            case .toWorker(let identity, let message):
                _ = try? workerSocket.send([identity, codec.encode(message)], dontWait: true)
            case .toClient(let route, let reply):
                _ = try? clientSocket.send(route + [codec.encode(reply)], dontWait: true)
            case .answerFromStore(let route, let request):
                queries.answer(request, route: route)
            }
        }
        let crashed = store.isShared ? nil : CrashGuard.suspect(database: options.database).map { CrashedJob(job: $0.job, signal: $0.signal) }
        var committed = try shell.start(reader: try store.reader(), cluster: cluster, crashed: crashed, at: CoreTime(time), send: send)
        // A suspect job from the last crash is quarantined and committed by now.
        if !store.isShared { CrashGuard.clear(database: options.database) }
        let intake = IntakeThread(preparer: SubmissionPreparer(reader: try store.reader(), knownModels: cluster.modelNames,
                                                               booked: Set(shell.core.bookNames)))
        for r in committed.plans { planning.submit(r) }
        shell.planOnlyHold = Self.planOnlyHold
        // From here on each batch commits on the writer thread while the loop gathers the next.
        let clock = time
        var latencyClock: (@Sendable () -> MonotonicInstant)?
        if options.recordRoundTrips { latencyClock = { @Sendable in clock.instant } }
        // Worker messages are encoded while their batch commits, and only handed to ZeroMQ after.
        let frames = CommitPipeline.WorkerFrames(encode: { [codec] in codec.encode($0) },
                                                 send: { identity, frame in _ = try? workerSocket.send([identity, frame], dontWait: true) })
        let pipeline = CommitPipeline(shell: shell, linger: options.commitLinger, latencyClock: latencyClock, workerFrames: frames)

        var poller = ZMQPoller()
        let wi = poller.add(workerSocket)
        let ci = poller.add(clientSocket)
        let si = poller.add(fd: stop.pipe.readFD)
        let pi = poller.add(fd: planning.wake.readFD)
        let zi = zap.map { poller.add($0.socket) }
        let ii = poller.add(fd: intake.wake.readFD)
        let qi = poller.add(fd: queries.wake.readFD)
        let committedFD = poller.add(fd: pipeline.wake.readFD)
        while !stop.isSet {
            // While a commit is in flight the tick waits for it: its end wakes the poll.
            let due = pipeline.isCommitting ? options.heartbeat.seconds : (min(committed.wakeAt, pipeline.decideBy ?? committed.wakeAt) - time.instant).seconds
            try poller.poll(timeout: max(0, min(due, options.heartbeat.seconds)))
            let busyFrom = DispatchTime.now().uptimeNanoseconds
            defer {
                stats.loops += 1
                stats.busySeconds += Double(DispatchTime.now().uptimeNanoseconds - busyFrom) / 1e9
            }
            if poller.isReadable(si) { stop.pipe.drain() }
            if let zi, poller.isReadable(zi) { try zap?.serve() }
            if poller.isReadable(pi) { planning.wake.drain() }
            if poller.isReadable(committedFD) { pipeline.wake.drain() }
            if poller.isReadable(ii) { intake.wake.drain() }
            if poller.isReadable(qi) {
                queries.wake.drain()
                for (route, reply) in queries.take() { _ = try? clientSocket.send(route + [reply], dontWait: true) }
            }
            let now = CoreTime(time)
            // A commit that returned releases its batch before anything that arrived is read:
            // its dispatches leave now, not after the results below are handled.
            if let released = try pipeline.release(at: now, send: send) {
                committed = released
                for r in committed.plans { planning.submit(r) }
            }
            for p in intake.take() { shell.handle(.submission(p), at: now) }
            for d in planning.take() { shell.handle(.planned(d), at: now) }
            if poller.isReadable(wi) { try drainWorkers(workerSocket, into: shell, telemetry: telemetry, at: now) }
            if poller.isReadable(ci) {
                // A released batch's views and notes are public before any request is read
                // (the pipeline holds them back only from its dispatches' path).
                shell.publishDeferred()
                try drainClients(clientSocket, into: shell, intake: intake, queries: queries, telemetry: telemetry, at: now)
            }
            // The outbox: a batch is sent only once its commit has returned (CommitPipeline.swift).
            if let released = try pipeline.advance(at: now, send: send) {
                committed = released
                for r in committed.plans { planning.submit(r) }
            }
            // An idle leader's lease is extended on its own (no-op without PostgreSQL); the
            // store's connection is the writer's while a commit is in flight.
            if !pipeline.isCommitting { try store.postgres?.renewLeaseIfDue() }
        }
        _ = try pipeline.flush(at: CoreTime(time), send: send)  // publishes what it held back too
        telemetry.traces?.finish(timeout: 3)
        var result = shell.core.stats
        result.malformedMessages = stats.malformedMessages
        // Refused at the socket (client roles, remote workers without CURVE) besides the core's own.
        result.refusedRequests += stats.refusedRequests
        result.dispatchLatency = pipeline.dispatchLatency
        result.commitStages = pipeline.stages
        result.commits = pipeline.commits
        result.loops = stats.loops
        result.busySeconds = stats.busySeconds
        result.databaseRoundTrips = store.postgres?.roundTrips ?? 0
        result.databaseCommits = store.postgres?.commits ?? 0
        result.databaseWaitSeconds = store.postgres?.transactionWait.seconds ?? 0
        result.curveDenied = zap?.denied ?? 0
        result.curveDeniedKeys = zap?.deniedKeys ?? []
        return result
    }

    /// How long a batch of planner decisions that sends nothing waits for the next commit
    /// (``CoordinatorShell/planOnlyHold``): under steady intake the next submission arrives
    /// well within it; an idle coordinator commits it this much later.
    static let planOnlyHold: Duration = .milliseconds(5)

    /// Messages per socket that may wait for a slow peer before the socket drops them.
    static let sendHighWaterMark: Int32 = 10_000
    static let receiveHighWaterMark: Int32 = 10_000

    func drainWorkers(_ socket: ZMQSocket, into shell: CoordinatorShell, telemetry: Telemetry, at now: CoreTime) throws {
        var budget = 4096
        let keys = options.identities
        while budget > 0, let (frames, peerKey, peerAddress) = try socket.receiveWithPeer(dontWait: true) {
            budget -= 1
            guard frames.count == 2 else {
                noteMalformed(socket: "workers", telemetry)
                continue
            }
            let message: WorkerMessage
            do {
                message = try codec.decode(WorkerMessage.self, from: frames[1])
            } catch {
                noteMalformed(socket: "workers", telemetry)
                continue
            }
            var book: WorkerKeyBook?
            if case .register = message {
                if let reason = remoteRefusal(peerAddress) {
                    stats.refusedRequests += 1
                    _ = try? socket.send([frames[0], codec.encode(CoordinatorMessage.rejected(reason: reason))], dontWait: true)
                    continue
                }
                if let reason = registrationRefusal(key: peerKey) {
                    stats.refusedRequests += 1
                    telemetry.refusals.refused(.worker)
                    _ = try? socket.send([frames[0], codec.encode(CoordinatorMessage.rejected(reason: reason))], dontWait: true)
                    continue
                }
                book = keys?.current
            }
            shell.handle(.worker(message, from: frames[0], key: peerKey, keys: book), at: now)
        }
    }

    func drainClients(_ socket: ZMQSocket, into shell: CoordinatorShell, intake: IntakeThread, queries: QueryThread, telemetry: Telemetry,
                      at now: CoreTime) throws {
        var budget = 256
        while budget > 0, let (frames, peerKey, _) = try socket.receiveWithPeer(dontWait: true) {
            budget -= 1
            // DEALER clients send [identity, payload]; REQ clients add an empty delimiter.
            guard frames.count >= 2, let payload = frames.last else {
                noteMalformed(socket: "clients", telemetry)
                continue
            }
            let route = Array(frames.dropLast())
            var request: ClientRequest
            do {
                request = try codec.decode(ClientRequest.self, from: payload)
            } catch {
                noteMalformed(socket: "clients", telemetry)
                // The error names what was wrong, never echoes the request back.
                _ = try? socket.send(route + [codec.encode(ClientReply.error(code: 2, message: "malformed request (\(payload.count) bytes)"))],
                                     dontWait: true)
                continue
            }
            switch admit(request, key: peerKey) {
            case .refuse(let right, let problem):
                stats.refusedRequests += 1
                telemetry.refusals.refused(right)
                _ = try? socket.send(route + [codec.encode(ClientReply.error(code: ClientReply.notAuthorized, message: problem))], dontWait: true)
                continue
            case .admit(let admitted):
                request = admitted
            }
            if case .submit(let s) = request {
                // A workflow parsed lately goes to the core at once; any other is answered once
                // it is parsed, off this thread.
                if let p = intake.prepareAtOnce(s, route: route, received: now.wall) {
                    shell.handle(.submission(p), at: now)
                } else {
                    intake.parse(s, route: route, received: now.wall)
                }
            } else if request.isReadOnlyQuery {
                queries.answer(request, route: route)
            } else {
                shell.handle(.client(request, route: route), at: now)
            }
        }
    }

    func noteMalformed(socket: String, _ telemetry: Telemetry) {
        stats.malformedMessages += 1
        telemetry.noteMalformed(socket: socket)
    }
}
