import AgentFlowCore
import Coordinator
import Foundation
import Observability
import Planner
import Store
import Wire

/// What one seed's run found.
public struct SimulationResult: Sendable {
    public var seed: UInt64
    public var events = 0
    public var coordinatorIterations = 0
    public var coordinatorCrashes = 0
    public var crashesBetweenCommitAndSend = 0
    public var workerCrashes = 0
    public var freezes = 0
    public var impostors = 0
    public var clockJumps = 0
    public var hostileMessages = 0
    public var jobs = 0
    public var jobsByState: [String: Int] = [:]
    public var messages = 0
    public var dropped = 0
    public var duplicated = 0
    /// The first invariant violated, in words; nil when every check held.
    public var violation: String?
    public var virtualSeconds = 0.0
}

/// A deterministic simulation of a whole cluster around the real coordinator core: virtual
/// time, simulated workers on a faulty simulated network, clients, crashes of the coordinator
/// at event boundaries (with restart from what the store committed), worker crashes, freezes
/// and impostors, wall-clock steps and hostile messages. The invariants are checked after
/// every coordinator iteration; the same seed replays the same run exactly (given the same
/// binary and `SWIFT_DETERMINISTIC_HASHING=1`, which `agentflow sim` sets for itself).
public final class Simulator {
    public let seed: UInt64
    public let faults: FaultRates
    /// A safety net, not a budget: a seed ends by simulated time (its faults, then at most 240
    /// quiet seconds to settle) after a few thousand events; one that reaches the cap fails.
    public let maxEvents: Int
    public static let eventCap = 1_000_000
    /// Seconds of simulated time with faults and new jobs; then a quiet phase lets every job end.
    public let faultSeconds: Double

    let time = VirtualTime()
    var rng: SplitMix64
    var network: SimNetwork
    let cluster = Workloads.cluster()
    let store: Store
    /// The store's read connection (the query service, the intake, restarts).
    let reader: Store
    let telemetry = Telemetry(metrics: MetricsRegistry())
    /// The real core in the real shell, over the simulated network; nil while it is down.
    var shell: CoordinatorShell?
    var queries: QueryService?
    var intake: SubmissionPreparer?
    /// When the coordinator's next timer is due (monotonic).
    var wakeAt = 0.0
    var coordinatorRestartAt: Double?
    var workers: [SimulatedWorkerProcess] = []
    var incarnations = 0
    var result: SimulationResult
    var nextJobAt = 0.0
    var jobIndex = 0
    var nextFaultAt = 0.0
    var pending: [Packet] = []

    // The invariants, each in its own checker (Checkers/).
    var budget = BudgetChecker()
    var exactlyOnce = ExactlyOnceChecker()
    var durability = DurabilityChecker()
    let ledger = LedgerChecker()

    public init(seed: UInt64, faults: FaultRates = FaultRates(), maxEvents: Int = Simulator.eventCap, faultSeconds: Double = 60) throws {
        self.seed = seed
        self.faults = faults
        self.maxEvents = maxEvents
        self.faultSeconds = faultSeconds
        rng = SplitMix64(seed: seed)
        network = SimNetwork(seed: seed ^ 0x5EED_0F_4E7, dropRate: faults.drop, duplicateRate: faults.duplicate, maxDelay: faults.maxDelay)
        store = try Store(path: ":memory:")
        reader = try store.reader()
        result = SimulationResult(seed: seed)
    }

    var now: Double { time.mono }

    public func run() -> SimulationResult {
        do {
            try startCoordinator()
            for (i, w) in Workloads.workers.enumerated() {
                incarnations += 1
                workers.append(workerProcess(name: w.name, model: w.model, slots: w.slots, seed: seed &+ UInt64(i)))
            }
            let start = now
            let hardEnd = start + faultSeconds + 240
            while result.events < maxEvents && result.violation == nil {
                let faulty = now - start < faultSeconds
                if !faulty && quiescent() { break }
                if now > hardEnd {
                    fail("the run did not settle within \(Int(hardEnd - start)) simulated seconds: \(unsettled())")
                    break
                }
                step(faulty: faulty, start: start)
            }
            if result.violation == nil && result.events >= maxEvents {
                fail("stopped at the \(maxEvents)-event cap before settling (its end-of-run checks were not made): \(unsettled())")
            }
            if result.violation == nil { finalChecks() }
        } catch {
            fail("the coordinator threw: \(error)")
        }
        result.virtualSeconds = now - 1_000
        result.messages = network.sent
        result.dropped = network.dropped
        result.duplicated = network.duplicated
        for r in (try? store.connection.query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")) ?? [] {
            result.jobsByState[r.string(0)] = r.int(1)
        }
        return result
    }

    func fail(_ what: String) {
        if result.violation == nil { result.violation = "t=\(String(format: "%.3f", now - 1_000))s event \(result.events): \(what)" }
    }

    // MARK: - One step

    func step(faulty: Bool, start: Double) {
        result.events += 1
        // The next moment anything happens.
        var next = now + 1
        if let t = network.nextAt { next = min(next, t) }
        for w in workers { if let t = w.nextTimer(now: now) { next = min(next, t) } }
        if shell != nil { next = min(next, now + max(0.001, planned.isEmpty ? wakeAt - now : 0)) }
        if let r = coordinatorRestartAt { next = min(next, r) }
        if faulty { next = min(next, nextJobAt, nextFaultAt) }
        time.advance(to: max(next, now))

        if faulty && now >= nextJobAt { submitJob() }
        if faulty && now >= nextFaultAt { injectFault(start: start) }
        // An impostor goes away when its time is up, in the quiet phase too (one that outlived
        // the faults held its victim's name forever, and the run never settled).
        for (w, at) in impostorEnds where at <= now { w.crash(restartAt: nil) }
        impostorEnds.removeAll { $0.1 <= now }
        if let r = coordinatorRestartAt, now >= r {
            do { try startCoordinator() } catch { fail("restart failed: \(error)") }
        }
        for packet in network.due(now) { deliver(packet) }
        for w in workers {
            if !w.up, let r = w.restartAt, now >= r {
                incarnations += 1
                w.restart(incarnation: incarnations)
            }
            for m in w.timer(now: now) { network.send(.fromWorker(identity: w.identity, m), now: now) }
        }
        iterate()
    }

    func deliver(_ packet: Packet) {
        switch packet {
        case .toWorker(let identity, let message):
            guard let w = workers.first(where: { $0.identity == identity }) else { return }
            for reply in w.receive(message, now: now) {
                network.send(.fromWorker(identity: identity, reply), now: now)
            }
        case .toClient(_, let reply):
            if case .submitted(let job) = reply { durability.acknowledged(job) }
        case .fromWorker, .fromClient:
            // A coordinator that is down loses what arrives meanwhile.
            if shell != nil { pending.append(packet) }
        }
    }

    /// A new worker process (the real worker core on the `sim` backend) with the next incarnation.
    func workerProcess(name: String, model: String, slots: Int, seed: UInt64) -> SimulatedWorkerProcess {
        SimulatedWorkerProcess(name: name, model: model, slots: slots, seed: seed, heartbeat: 1, liveness: 3, incarnation: incarnations,
                               time: time.monotonicClock) { [unowned self] id, identity in self.started(id, by: identity) }
    }

    func started(_ id: AttemptID, by identity: Data) {
        if let v = exactlyOnce.started(id, by: identity) { fail(v) }
    }

    // MARK: - The coordinator

    func startCoordinator() throws {
        var options = Coordinator.Options(cluster: cluster)
        options.idSeed = seed &* 31 &+ UInt64(result.coordinatorCrashes)
        let board = LiveBoard()
        let shell = CoordinatorShell(core: CoordinatorCore(cluster: cluster, options: options.core(cluster: cluster)), store: store,
                                     board: board, telemetry: telemetry)
        let committed = try shell.start(reader: reader, cluster: cluster, at: CoreTime(time), send: deliverFromCoordinator)
        queries = QueryService(reader: reader, board: board, telemetry: telemetry, wallClock: { [time] in time.now })
        intake = SubmissionPreparer(reader: reader, knownModels: cluster.modelNames, booked: Set(shell.core.bookNames))
        self.shell = shell
        wakeAt = committed.wakeAt
        planned = committed.plans.map { $0.decide() }
        coordinatorRestartAt = nil
        pending = []
        checkAcknowledged("after a restart")
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

    /// One loop iteration of the real coordinator through its real shell: every message that
    /// arrived, then the shell's finish (tick, commit, then — and only then — the sends). A
    /// crash may strike before the commit (the iteration is lost) or between the commit and the
    /// sends (only the sends are lost).
    func iterate() {
        guard let shell else { return }
        result.coordinatorIterations += 1
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
                    let parsed = intake.prepare(s, route: route, received: time.now)
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
        let crash = rng.unit() < faultRateNow(faults.coordinatorCrash)
        let fault: ShellFault = !crash ? .none : rng.unit() >= faults.crashAfterCommit ? .crashBeforeCommit : .crashAfterCommit
        do {
            // Planning requests are answered on this thread and come back as the next
            // iteration's first events (no threads, so a seed replays exactly, MCPP jobs included).
            guard let committed = try shell.finish(at: at, fault: fault, send: deliverFromCoordinator) else {
                if case .crashAfterCommit = fault { result.crashesBetweenCommitAndSend += 1 }
                crashCoordinator()
                return
            }
            wakeAt = committed.wakeAt
            planned = committed.plans.map { $0.decide() }
            checkInvariants(shell.core)
        } catch {
            fail("the coordinator threw: \(error)")
        }
    }

    var inFaultPhase = true
    /// Planner decisions for the coordinator's next iteration.
    var planned: [PlanDecision] = []

    func faultRateNow(_ rate: Double) -> Double { inFaultPhase ? rate : 0 }

    func crashCoordinator() {
        result.coordinatorCrashes += 1
        shell = nil
        queries = nil
        intake = nil
        planned = []
        pending = []
        coordinatorRestartAt = now + 0.2 + rng.unit() * 4
        checkAcknowledged("after a crash")
    }

    // MARK: - Clients and faults

    func submitJob() {
        jobIndex += 1
        let (yaml, planner) = Workloads.workflow(&rng, index: jobIndex)
        let request = SubmitRequest(yaml: yaml, file: "sim-\(jobIndex).yaml", planner: planner, seed: rng.next() >> 1, priority: rng.below(3))
        network.send(.fromClient(route: [Data("client-\(jobIndex)".utf8)], .submit(request)), now: now)
        result.jobs += 1
        nextJobAt = now + 1 + rng.unit() * 12
    }

    func injectFault(start: Double) {
        nextFaultAt = now + 0.1 + rng.unit() * 0.5
        let dt = nextFaultAt - now
        for w in workers where w.up && !w.name.hasPrefix("impostor") {
            if rng.unit() < faults.workerCrash * dt {
                w.crash(restartAt: now + 1 + rng.unit() * 6)
                result.workerCrashes += 1
            } else if w.active && rng.unit() < faults.workerFreeze * dt {
                w.frozenUntil = now + 2 + rng.unit() * 6
                result.freezes += 1
            }
        }
        if rng.unit() < faults.impostor * dt, let victim = workers.first(where: { $0.up && $0.registered }) {
            // A second process started with a live worker's name, for a while.
            incarnations += 1
            let impostor = workerProcess(name: victim.name, model: victim.model, slots: victim.slots, seed: seed &+ 99)
            workers.append(impostor)
            result.impostors += 1
            let lifetime = 2 + rng.unit() * 8
            impostor.restartAt = nil
            DeferredCrash.schedule(impostor, at: now + lifetime, in: &impostorEnds)
        }
        if rng.unit() < faults.clockJump * dt {
            time.jump((rng.unit() - 0.5) * 60)
            result.clockJumps += 1
        }
        if rng.unit() < faults.hostile * dt { hostile() }
    }

    var impostorEnds: [(SimulatedWorkerProcess, Double)] = []

    /// One hostile message: forged results for other workers' attempts, overflowing counts,
    /// replays, bad registrations, absurd client requests.
    func hostile() {
        result.hostileMessages += 1
        let rogue = Data("rogue#\(seed % 1000)".utf8)
        let live = (try? store.connection.query("SELECT job, subtask, n FROM attempts WHERE state = 'dispatched' ORDER BY job, subtask, n LIMIT 8")) ?? []
        let target = live.isEmpty ? nil : live[rng.below(live.count)]
        let targetID = target.map { AttemptID(job: $0.string(0), subtask: $0.string(1), n: $0.int(2)) }
        switch rng.below(9) {
        case 0:
            network.send(.fromWorker(identity: rogue, .register(info: WorkerInfo(name: "rogue", host: "evil", gpus: [0], model: "m-small", slots: 1, freeMemory: 0),
                                                                running: targetID.map { [$0] } ?? [], finished: [])), now: now)
        case 1:
            // A forged success for someone else's attempt, with tokens that overflow.
            if let id = targetID {
                let forged = AttemptReport(id: id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: Int.max, output: Int.max)],
                                                                           output: "ROGUE:\(id)", detail: "forged"))
                network.send(.fromWorker(identity: rogue, .result(forged)), now: now)
                network.send(.fromWorker(identity: rogue, .register(info: WorkerInfo(name: "rogue", host: "evil", gpus: [], model: "m-small", slots: 1, freeMemory: 0),
                                                                    running: [], finished: [forged])), now: now)
            }
        case 2:
            // The real worker's own identity reused with absurd usage.
            if let id = targetID, let w = workers.first(where: { $0.running.contains(id) }) {
                network.send(.fromWorker(identity: w.identity, .progress(id: id, tokens: Int.max)), now: now)
                if rng.unit() < 0.5 {
                    // A broken worker: its own attempt reported with counts that overflow any sum.
                    let usage = Array(repeating: TokenUsage(role: .agent, input: Int.max, output: Int.max), count: 1 + rng.below(40))
                    network.send(.fromWorker(identity: w.identity, .result(AttemptReport(id: id, outcome: AttemptOutcome(end: .failed, usage: usage)))), now: now)
                }
            }
        case 3:
            // A replay of an old result, from its own worker.
            if let w = workers.filter({ !$0.sentResults.isEmpty }).first, let old = w.sentResults.first {
                network.send(.fromWorker(identity: w.identity, .result(old)), now: now)
            }
        case 4:
            let bad = [WorkerInfo(name: "huge", host: "h", gpus: [0], model: "m-small", slots: 1_000_000_000, freeMemory: 0),
                       WorkerInfo(name: "neg", host: "h", gpus: [0], model: "m-small", slots: -5, freeMemory: 0),
                       WorkerInfo(name: "", host: "h", gpus: [0], model: "m-small", slots: 1, freeMemory: 0),
                       WorkerInfo(name: "esc\u{1b}[2J\u{0}", host: "h", gpus: [0], model: "m-small", slots: 1, freeMemory: 0)][rng.below(4)]
            network.send(.fromWorker(identity: Data((bad.name + "#1").utf8), .register(info: bad, running: [], finished: [])), now: now)
        case 5:
            let yaml = Workloads.workflow(&rng, index: 0).yaml
            let requests = [SubmitRequest(yaml: yaml, file: "x", budgetUSD: .infinity), SubmitRequest(yaml: yaml, file: "x", budgetUSD: 1e10),
                            SubmitRequest(yaml: yaml, file: "x", deadline: .nan), SubmitRequest(yaml: yaml, file: "x", budgetTokens: Int.max),
                            SubmitRequest(yaml: yaml, file: "x", budgetTokens: 1_000_000_000, planner: "seq:100000000"),
                            SubmitRequest(yaml: yaml + "  - {id: dup, prompt: x, needs: [s0, s0]}\n", file: "x")]
            network.send(.fromClient(route: [Data("mallory".utf8)], .submit(requests[rng.below(requests.count)])), now: now)
        case 6:
            network.send(.fromClient(route: [Data("mallory".utf8)], .status(job: String(repeating: "\u{1b}x", count: 5_000))), now: now)
        case 7:
            // A user cancels a job.
            if let j = shell?.core.jobSnapshots.filter({ !$0.state.isTerminal }).first {
                network.send(.fromClient(route: [Data("user".utf8)], .cancel(job: j.id)), now: now)
            }
        default:
            // A result for an attempt that was never dispatched.
            let fake = AttemptReport(id: AttemptID(job: "j-nope", subtask: "x", n: Int.max), outcome: AttemptOutcome(end: .succeeded, usage: []))
            network.send(.fromWorker(identity: rogue, .result(fake)), now: now)
        }
    }

    // MARK: - Invariants

    /// After every committed iteration: budgets, the ledger, outputs, stored workers.
    func checkInvariants(_ c: borrowing CoordinatorCore) {
        let snaps = c.jobSnapshots
        if let v = budget.check(snaps) { return fail(v) }
        do {
            if let v = try ledger.check(store, memory: snaps) { return fail(v) }
            if let v = try durability.checkWorkers(store) { return fail(v) }
            if let v = try exactlyOnce.checkOutputs(store) { return fail(v) }
        } catch {
            fail("invariant query failed: \(error)")
        }
    }

    /// Every acknowledged submission is in the store (it was acknowledged only after its commit).
    func checkAcknowledged(_ when: String) {
        if let v = durability.checkAcknowledged(store, when) { fail(v) }
    }

    /// Nothing left to do: no job running, nothing reserved, nothing but heartbeats in flight.
    func quiescent() -> Bool {
        inFaultPhase = false
        network.dropRate = 0
        network.duplicateRate = 0
        guard let shell else { return false }
        return LivenessChecker.settled(shell.core.jobSnapshots, workInFlight: network.inFlightWork)
    }

    func unsettled() -> String {
        LivenessChecker.unsettled(shell?.core.jobSnapshots, inFlight: network.inFlightSummary)
    }

    func finalChecks() {
        checkAcknowledged("at the end")
        if let v = LivenessChecker.finalCheck(shell?.core.jobSnapshots, store: store) { fail(v) }
    }
}

enum DeferredCrash {
    static func schedule(_ w: SimulatedWorkerProcess, at: Double, in list: inout [(SimulatedWorkerProcess, Double)]) { list.append((w, at)) }
}
