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
    public let maxEvents: Int
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
    var workers: [SimWorker] = []
    var incarnations = 0
    var result: SimulationResult
    var nextJobAt = 0.0
    var jobIndex = 0
    var nextFaultAt = 0.0
    var pending: [Packet] = []

    // What the invariants remember.
    /// Attempt id → the worker process (routing id) that started it.
    var startedBy: [AttemptID: Data] = [:]
    /// Jobs whose submission a client saw acknowledged.
    var acknowledged: Set<String> = []
    /// For a job seen ended: spent + reserved at that moment (its spend may only settle within it).
    var endBound: [String: Amount] = [:]

    public init(seed: UInt64, faults: FaultRates = FaultRates(), maxEvents: Int = 4_000, faultSeconds: Double = 60) throws {
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
                workers.append(SimWorker(name: w.name, model: w.model, slots: w.slots, seed: seed &+ UInt64(i), heartbeat: 1, liveness: 3,
                                         incarnation: incarnations, now: now))
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
            if result.violation == nil && result.events < maxEvents { finalChecks() }
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
        for w in workers { if let t = w.nextTimer() { next = min(next, t) } }
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
                w.restart(incarnation: incarnations, now: now)
            }
            for m in w.timer(now: now) { network.send(.fromWorker(identity: w.identity, m), now: now) }
        }
        iterate()
    }

    func deliver(_ packet: Packet) {
        switch packet {
        case .toWorker(let identity, let message):
            guard let w = workers.first(where: { $0.identity == identity }) else { return }
            for reply in w.receive(message, now: now, time: time, started: { self.started($0, by: identity) }) {
                network.send(.fromWorker(identity: identity, reply), now: now)
            }
        case .toClient(_, let reply):
            if case .submitted(let job) = reply { acknowledged.insert(job) }
        case .fromWorker, .fromClient:
            // A coordinator that is down loses what arrives meanwhile.
            if shell != nil { pending.append(packet) }
        }
    }

    func started(_ id: AttemptID, by identity: Data) {
        if let other = startedBy[id], other != identity {
            fail("attempt \(id) executed twice: by \(String(decoding: other, as: UTF8.self)) and \(String(decoding: identity, as: UTF8.self))")
        }
        startedBy[id] = identity
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
            let impostor = SimWorker(name: victim.name, model: victim.model, slots: victim.slots, seed: seed &+ 99, heartbeat: 1, liveness: 3,
                                     incarnation: incarnations, now: now)
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

    var impostorEnds: [(SimWorker, Double)] = []

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
            if let id = targetID, let w = workers.first(where: { $0.running[id] != nil }) {
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

    func checkInvariants(_ c: borrowing CoordinatorCore) {
        let snaps = c.jobSnapshots
        for j in snaps {
            // spent + reserved ≤ limit, on both axes; the reservations add up.
            if !j.consistent { fail("job \(j.id): ledger inconsistent (spent \(j.spent), reserved \(j.reserved), limits \(String(describing: j.limitTokens)) tokens / \(String(describing: j.limitUSD)))") }
            if let l = j.limitTokens, j.spent.tokens + j.reserved.tokens > l { fail("job \(j.id): tokens spent+reserved \(j.spent.tokens + j.reserved.tokens) > \(l)") }
            if let l = j.limitUSD, j.spent.usd + j.reserved.usd > l { fail("job \(j.id): usd spent+reserved \(j.spent.usd.value + j.reserved.usd.value) > \(l.value)") }
            // After the end, spend only settles what was held at the end.
            if j.state.isTerminal {
                if j.reason.isEmpty { fail("job \(j.id) ended \(j.state.rawValue) without a reason") }
                if let bound = endBound[j.id] {
                    if j.spent.tokens + j.reserved.tokens > bound.tokens || j.spent.usd + j.reserved.usd > bound.usd {
                        fail("job \(j.id): after it ended its spend+reserved grew from \(bound) to \(j.spent.tokens + j.reserved.tokens) tokens")
                    }
                } else {
                    endBound[j.id] = Amount(tokens: j.spent.tokens + j.reserved.tokens, usd: j.spent.usd + j.reserved.usd)
                }
            }
        }
        do {
            // The ledger sums to each job's spend, in the store and in memory.
            let sums = try store.connection.query("""
                SELECT j.id, j.spent_tokens, j.spent_usd_nano, COALESCE(SUM(l.tokens_in + l.tokens_out), 0), COALESCE(SUM(l.usd_nano), 0)
                FROM jobs j LEFT JOIN ledger l ON l.job = j.id GROUP BY j.id ORDER BY j.id
                """)
            let memory = Dictionary(uniqueKeysWithValues: snaps.map { ($0.id, $0.spent) })
            for r in sums {
                let id = r.string(0)
                if r.int(1) != r.int(3) || r.int(2) != r.int(4) {
                    fail("job \(id): stored spend \(r.int(1)) tokens / \(r.int(2)) n$ but the ledger sums to \(r.int(3)) / \(r.int(4))")
                }
                if let m = memory[id], m.tokens != r.int(1) || Int(m.usd.value) != r.int(2) {
                    fail("job \(id): spend in memory \(m.tokens) differs from the store's \(r.int(1))")
                }
            }
            // No attempt settled twice (a role charged twice, two kinds, or rows for an unsettled attempt).
            let twice = try store.connection.query("""
                SELECT job, subtask, n FROM ledger GROUP BY job, subtask, n
                HAVING COUNT(DISTINCT kind) > 1 OR COUNT(*) > COUNT(DISTINCT role) LIMIT 1
                """)
            if let t = twice.first { fail("attempt \(t.string(0))/\(t.string(1))#\(t.int(2)) settled twice") }
            let loose = try store.connection.query("""
                SELECT l.job, l.subtask, l.n FROM ledger l JOIN attempts a ON a.job = l.job AND a.subtask = l.subtask AND a.n = l.n
                WHERE a.state IN ('queued', 'dispatched') LIMIT 1
                """)
            if let t = loose.first { fail("attempt \(t.string(0))/\(t.string(1))#\(t.int(2)) has ledger rows but is still live") }
            // Workers as stored: names and slots within range (nothing hostile registered).
            for w in try store.connection.query("SELECT name, slots FROM workers") {
                if Limits.name(w.string(0), "name") != nil || !(1...Limits.maxSlots).contains(w.int(1)) {
                    fail("a worker was stored with name \(Limits.printable(w.string(0))) and \(w.int(1)) slots")
                }
                if w.string(0) == "rogue" { continue }
            }
            // Outputs come from attempts that passed, reported by the worker they were dispatched
            // to: a simulated worker writes `sim:<its routing id>:<attempt>`, a forger `ROGUE:<attempt>`
            // (legitimate only for an attempt dispatched to the rogue itself).
            let passed = try store.connection.query("""
                SELECT s.job, s.id, s.output, a.n, a.worker FROM subtasks s JOIN attempts a ON a.job = s.job AND a.subtask = s.id
                WHERE s.state = 'succeeded' AND a.state = 'succeeded' ORDER BY s.job, s.id
                """)
            var ok: [String: Bool] = [:]
            for r in passed {
                let key = r.string(0) + "/" + r.string(1), out = r.optionalString(2) ?? ""
                let id = AttemptID(job: r.string(0), subtask: r.string(1), n: r.int(3))
                let worker = r.optionalString(4) ?? ""
                let byWorker = out.hasPrefix("sim:\(worker)#")
                    && startedBy[id].map { out == "sim:\(String(decoding: $0, as: UTF8.self)):\(id)" } == true
                let byRogueItself = worker == "rogue" && out == "ROGUE:\(id)"
                ok[key] = (ok[key] ?? false) || byWorker || byRogueItself
            }
            for o in try store.connection.query("SELECT job, id, output FROM subtasks WHERE state = 'succeeded'") where ok[o.string(0) + "/" + o.string(1)] != true {
                fail("subtask \(o.string(0))/\(o.string(1)) has output \(Limits.printable(o.optionalString(2) ?? "")) that no passing attempt's own worker produced")
            }
        } catch {
            fail("invariant query failed: \(error)")
        }
    }

    /// Every acknowledged submission is in the store (it was acknowledged only after its commit).
    func checkAcknowledged(_ when: String) {
        for id in acknowledged.sorted() where ((try? store.job(id)) ?? nil) == nil {
            fail("job \(id) was acknowledged to its client but is not in the store \(when)")
        }
    }

    /// Nothing left to do: no job running, nothing reserved, nothing in flight.
    func quiescent() -> Bool {
        inFaultPhase = false
        network.dropRate = 0
        network.duplicateRate = 0
        guard let shell else { return false }
        return shell.core.jobSnapshots.allSatisfy { $0.state.isTerminal && $0.reserved == .zero } && network.inFlightWork == 0
    }

    func unsettled() -> String {
        let open = shell?.core.jobSnapshots.filter { !$0.state.isTerminal || $0.reserved != .zero } ?? []
        return open.map { "\($0.id) \($0.state.rawValue) reserved \($0.reserved.tokens)" }.joined(separator: "; ") + (shell == nil ? " (coordinator down)" : "")
            + "; in flight: " + network.inFlightSummary
    }

    func finalChecks() {
        checkAcknowledged("at the end")
        guard let shell else { return fail("the coordinator is down at the end") }
        for j in shell.core.jobSnapshots {
            if !j.state.isTerminal { fail("job \(j.id) never ended") }
            if j.reason.isEmpty { fail("job \(j.id) ended without a reason") }
            if j.reserved != .zero { fail("job \(j.id) still holds \(j.reserved.tokens) reserved tokens at the end") }
        }
        // Every stored job (also those no longer in memory) ended with a reason.
        let open = (try? store.connection.query("SELECT id, state FROM jobs WHERE state IN ('queued', 'running') OR reason = ''")) ?? []
        if let o = open.first { fail("stored job \(o.string(0)) is \(o.string(1)) at the end, or has no reason") }
    }
}

enum DeferredCrash {
    static func schedule(_ w: SimWorker, at: Double, in list: inout [(SimWorker, Double)]) { list.append((w, at)) }
}
