import AgentFlowCore
import Coordinator
import Foundation
import Observability
import Planner
import Store
import Wire
import Worker

/// A whole cluster inside a discrete-event simulation: the real coordinator core in the real
/// shell (``Coordinator/CoordinatorShell``: one transaction per batch, commit, then send) on an
/// in-memory store, worker processes that run the real worker core on a backend of the
/// caller's choosing, a simulated network and a virtual clock. Single threaded and
/// deterministic: planning requests are answered on this thread and come back as the next
/// batch's first events.
///
/// The fault simulator (``Simulator``) and the benchmarks (`bench fleet`, `bench
/// planner-scale`) are this cluster with a workload; nothing of the coordinator is written
/// again for them.
public final class SimulatedCluster {
    public let time: VirtualTime
    var network: SimNetwork
    public let cluster: Cluster
    /// The coordinator's store (written only by its shell), and a read connection to it.
    public let store: Store
    public let reader: Store
    let telemetry: Telemetry
    /// The coordinator; nil while it is down.
    public private(set) var shell: CoordinatorShell?
    var queries: QueryService?
    var intake: SubmissionPreparer?
    /// When the coordinator's next timer is due.
    var wakeAt = MonotonicInstant.origin
    /// Planner decisions for the coordinator's next batch.
    var planned: [PlanDecision] = []
    /// What arrived for the coordinator since its last batch.
    var pending: [Packet] = []
    public private(set) var workers: [SimulatedWorkerProcess] = []
    var incarnations = 0
    /// When a crashed coordinator comes back.
    public var restartAt: MonotonicInstant?
    /// The core's options for its `n`-th start (the simulator varies the id seed per restart).
    let coreOptions: (Int) -> CoreOptions
    /// The backend of a new worker process, from its name, its seed and its clock (the
    /// simulated monotonic one: wall-clock steps are the coordinator host's).
    let backend: (String, UInt64, any TimeSource) -> any AttemptBackend
    /// Estimate books the intake hands the core for workflows the store has no history of.
    let priorBooks: [String: EstimateBook]
    /// Time between heartbeats (coordinator and workers), and missed ones before a peer is dead.
    let heartbeat: Duration
    let liveness: Int

    /// Told of every reply a client gets, every attempt a worker process starts, every committed
    /// batch (the core as it is after it) and its notes.
    public var onReply: (([Data], ClientReply) -> Void)?
    /// Told what every worker process does with attempts (received, started, reported).
    public var onWorker: ((WorkerObservation) -> Void)?
    public var onCommit: ((CoordinatorShell) -> Void)?
    public var onNotes: (([CoreNote]) -> Void)?

    public private(set) var starts = 0
    public private(set) var iterations = 0
    public private(set) var crashes = 0
    public private(set) var crashesAfterCommit = 0

    /// `network`: drop and duplicate rates and the largest delay; `seed` seeds its draws.
    /// Where the simulated monotonic clock starts.
    public static let startInstant = MonotonicInstant(sinceOrigin: .seconds(1_000))

    public init(cluster: Cluster, seed: UInt64, dropRate: Double = 0, duplicateRate: Double = 0, maxDelay: Duration = .milliseconds(10),
                metrics: MetricsRegistry = MetricsRegistry(), priorBooks: [String: EstimateBook] = [:], coreOptions: @escaping (Int) -> CoreOptions,
                backend: @escaping (String, UInt64, any TimeSource) -> any AttemptBackend) throws {
        time = VirtualTime(mono: Self.startInstant)
        self.cluster = cluster
        network = SimNetwork(seed: seed, dropRate: dropRate, duplicateRate: duplicateRate, maxDelay: maxDelay)
        store = try Store(path: ":memory:")
        reader = try store.reader()
        telemetry = Telemetry(metrics: metrics)
        self.coreOptions = coreOptions
        self.backend = backend
        self.priorBooks = priorBooks
        heartbeat = cluster.coordinator.heartbeat
        liveness = cluster.coordinator.liveness
    }

    /// Now, on the simulated monotonic clock.
    public var now: MonotonicInstant { time.mono }

    // MARK: - Processes

    /// Starts (or restarts) the coordinator from what the store committed.
    public func startCoordinator() throws {
        let board = LiveBoard()
        let shell = CoordinatorShell(core: CoordinatorCore(cluster: cluster, options: coreOptions(starts)), store: store, board: board,
                                     telemetry: telemetry)
        starts += 1
        shell.onNotes = { [unowned self] notes in onNotes?(notes) }
        let committed = try shell.start(reader: reader, cluster: cluster, at: CoreTime(time), send: deliverFromCoordinator)
        queries = QueryService(reader: reader, board: board, telemetry: telemetry, wallClock: { [time] in time.wallInstant })
        intake = SubmissionPreparer(reader: reader, knownModels: cluster.modelNames, booked: Set(shell.core.bookNames), priors: priorBooks)
        self.shell = shell
        wakeAt = committed.wakeAt
        planned = decide(committed.plans)
        restartAt = nil
        pending = []
    }

    /// kill -9 of the coordinator: what it had not committed is gone; it restarts at `restartAt`.
    public func crashCoordinator(restartAt: MonotonicInstant?) {
        crashes += 1
        shell = nil
        queries = nil
        intake = nil
        planned = []
        pending = []
        self.restartAt = restartAt
    }

    /// A new worker process — the real worker core on this cluster's backend — with the next
    /// incarnation (its routing id is `name#incarnation`).
    @discardableResult
    public func addWorker(name: String, model: String, slots: Int, seed: UInt64) -> SimulatedWorkerProcess {
        incarnations += 1
        let w = SimulatedWorkerProcess(name: name, model: model, slots: slots, heartbeat: heartbeat, liveness: liveness, incarnation: incarnations,
                                       backend: backend(name, seed, time.monotonicClock)) { [unowned self] o in self.onWorker?(o) }
        workers.append(w)
        return w
    }

    /// A client request onto the network.
    public func send(_ request: ClientRequest, from route: [Data]) {
        network.send(.fromClient(route: route, request), now: now)
    }

    /// A raw packet onto the network (hostile peers).
    func send(_ packet: Packet) {
        network.send(packet, now: now)
    }

    // MARK: - Time

    /// The next moment anything happens: a delivery, a worker's timer, the coordinator's timer
    /// or restart, at most `horizon` from now.
    public func nextEventTime(horizon: Duration = .seconds(1)) -> MonotonicInstant {
        var next = now + horizon
        if let t = network.nextAt { next = min(next, t) }
        for w in workers { if let t = w.nextTimer(now: now) { next = min(next, t) } }
        if shell != nil { next = min(next, now + max(.milliseconds(1), planned.isEmpty ? wakeAt - now : .zero)) }
        if let r = restartAt { next = min(next, r) }
        return max(next, now)
    }

    /// Runs what is due now: a coordinator restart, the deliveries, the workers' timers and
    /// restarts, then one coordinator batch; `fault` says whether that batch crashes (drawn
    /// just before its commit).
    public func runDue(fault: () -> ShellFault = { .none }) throws {
        if let r = restartAt, now >= r { try startCoordinator() }
        for packet in network.due(now) { deliver(packet) }
        for w in workers {
            if !w.up, let r = w.restartAt, now >= r {
                incarnations += 1
                w.restart(incarnation: incarnations)
            }
            for m in w.timer(now: now) { network.send(.fromWorker(identity: w.identity, m), now: now) }
        }
        try iterate(fault: fault)
    }

    func deliver(_ packet: Packet) {
        switch packet {
        case .toWorker(let identity, let message):
            guard let w = workers.first(where: { $0.identity == identity }) else { return }
            for reply in w.receive(message, now: now) {
                network.send(.fromWorker(identity: identity, reply), now: now)
            }
        case .toClient(let route, let reply):
            onReply?(route, reply)
        case .fromWorker, .fromClient:
            // A coordinator that is down loses what arrives meanwhile.
            if shell != nil { pending.append(packet) }
        }
    }

    /// What the shell sends, onto the simulated network; answers from the store come from the
    /// query service at once.
    func deliverFromCoordinator(_ m: Outgoing) {
        switch m {
        case .toWorker(let identity, let message): network.send(.toWorker(identity: identity, message), now: now)
        case .toClient(let route, let reply): network.send(.toClient(route: route, reply), now: now)
        case .answerFromStore(let route, let request):
            if let queries { network.send(.toClient(route: route, queries.answer(request)), now: now) }
        }
    }

    /// One batch of the real coordinator through its real shell: every message that arrived,
    /// then the shell's finish (tick, commit, then — and only then — the sends).
    func iterate(fault: () -> ShellFault) throws {
        guard let shell else { return }
        iterations += 1
        let inbox = pending
        pending = []
        let at = CoreTime(time)
        for d in planned { shell.handle(.planned(d), at: at) }
        planned = []
        for packet in inbox {
            switch packet {
            case .fromWorker(let identity, let message):
                shell.handle(.worker(message, from: identity), at: at)
            case .fromClient(let route, let request):
                if case .submit(let s) = request, var intake {
                    // The intake's work (parsing, the estimate book), done here as its thread would.
                    let parsed = intake.prepare(s, route: route, received: time.wallInstant)
                    self.intake = intake
                    shell.handle(.submission(parsed), at: at)
                } else if request.isReadOnlyQuery, let queries {
                    network.send(.toClient(route: route, queries.answer(request)), now: now)
                } else {
                    shell.handle(.client(request, route: route), at: at)
                }
            default: break
            }
        }
        let f = fault()
        guard let committed = try shell.finish(at: at, fault: f, send: deliverFromCoordinator) else {
            if case .crashAfterCommit = f { crashesAfterCommit += 1 }
            crashCoordinator(restartAt: nil)
            return
        }
        wakeAt = committed.wakeAt
        planned = decide(committed.plans)
        onCommit?(shell)
    }

    func decide(_ plans: [PlanRequest]) -> [PlanDecision] {
        plans.map { $0.decide() }
    }

    // MARK: - The network, for checks

    /// Packets in flight other than heartbeats.
    public var workInFlight: Int { network.inFlightWork }
    public var inFlightSummary: String { network.inFlightSummary }
    /// Stops dropping and duplicating messages (the fault simulator's quiet phase).
    public func calmNetwork() {
        network.dropRate = 0
        network.duplicateRate = 0
    }
}
