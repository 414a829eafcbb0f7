import AgentFlowCore
import Coordinator
import Foundation
import Observability
import Planner
import Store
import Wire
import Worker

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
    /// Attempts that waited queued at a worker (prefetched behind busy slots) before they started.
    public var waitedStarts = 0
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

    var rng: SplitMix64
    /// The real coordinator and workers, on a faulty simulated network.
    let sim: SimulatedCluster
    var result: SimulationResult
    var nextJobAt = MonotonicInstant.origin
    var jobIndex = 0
    var nextFaultAt = MonotonicInstant.origin
    var inFaultPhase = true

    // The invariants, each in its own checker (Checkers/).
    var budget = BudgetChecker()
    var exactlyOnce = ExactlyOnceChecker()
    var queuedAttempts = QueuedAttemptChecker()
    var durability = DurabilityChecker()
    let ledger = LedgerChecker()
    let tenantBudgets = TenantBudgetChecker()

    /// `prefetch`: the coordinator's `coordinator.prefetch` (nil: the product's default).
    public init(seed: UInt64, faults: FaultRates = FaultRates(), maxEvents: Int = Simulator.eventCap, faultSeconds: Double = 60, prefetch: Int? = nil) throws {
        self.seed = seed
        self.faults = faults
        self.maxEvents = maxEvents
        self.faultSeconds = faultSeconds
        rng = SplitMix64(seed: seed)
        let cluster = Workloads.cluster(prefetch: prefetch)
        sim = try SimulatedCluster(
            cluster: cluster, seed: seed ^ 0x5EED_0F_4E7, dropRate: faults.drop, duplicateRate: faults.duplicate, maxDelay: faults.maxDelay,
            coreOptions: { starts in
                var options = Coordinator.Options(cluster: cluster)
                options.idSeed = seed &* 31 &+ UInt64(starts)
                return options.core(cluster: cluster)
            },
            backend: { _, workerSeed, clock in SimBackend(timeScale: 1, seed: workerSeed, time: clock) })
        result = SimulationResult(seed: seed)
        sim.onWorker = { [unowned self] o in
            if case .started(let spec, let identity, _) = o, let v = exactlyOnce.started(spec.id, by: identity) { fail(v) }
            if let v = queuedAttempts.observe(o) { fail(v) }
        }
        sim.onReply = { [unowned self] _, reply in if case .submitted(let job) = reply { durability.acknowledged(job) } }
        sim.onCommit = { [unowned self] shell in checkInvariants(shell.core) }
    }

    var now: MonotonicInstant { sim.now }
    /// `seconds` from now on the simulated clock.
    func inSeconds(_ seconds: Double) -> MonotonicInstant { now + .clampedSeconds(seconds) }
    /// Simulated seconds since the run's clock started (what results and messages print).
    var elapsed: Double { (now - SimulatedCluster.startInstant).seconds }
    var time: VirtualTime { sim.time }
    var store: Store { sim.store }
    var workers: [SimulatedWorkerProcess] { sim.workers }

    public func run() -> SimulationResult {
        do {
            try sim.startCoordinator()
            checkAcknowledged("after a restart")
            for (i, w) in Workloads.workers.enumerated() {
                sim.addWorker(name: w.name, model: w.model, slots: w.slots, seed: seed &+ UInt64(i))
            }
            let start = now
            let hardEnd = start + .clampedSeconds(faultSeconds + 240)
            while result.events < maxEvents && result.violation == nil {
                let faulty = now - start < .clampedSeconds(faultSeconds)
                if !faulty && quiescent() { break }
                if now > hardEnd {
                    fail("the run did not settle within \(Int((hardEnd - start).seconds)) simulated seconds: \(unsettled())")
                    break
                }
                try step(faulty: faulty, start: start)
            }
            if result.violation == nil && result.events >= maxEvents {
                fail("stopped at the \(maxEvents)-event cap before settling (its end-of-run checks were not made): \(unsettled())")
            }
            if result.violation == nil { finalChecks() }
        } catch {
            fail("the coordinator threw: \(error)")
        }
        result.virtualSeconds = elapsed
        result.waitedStarts = queuedAttempts.waitedStarts
        result.messages = sim.network.sent
        result.dropped = sim.network.dropped
        result.duplicated = sim.network.duplicated
        result.coordinatorIterations = sim.iterations
        result.coordinatorCrashes = sim.crashes
        result.crashesBetweenCommitAndSend = sim.crashesAfterCommit
        for r in (try? store.connection.query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")) ?? [] {
            result.jobsByState[r.string(0)] = r.int(1)
        }
        return result
    }

    func fail(_ what: String) {
        if result.violation == nil { result.violation = "t=\(String(format: "%.3f", elapsed))s event \(result.events): \(what)" }
    }

    // MARK: - One step

    func step(faulty: Bool, start: MonotonicInstant) throws {
        result.events += 1
        // The next moment anything happens.
        var next = sim.nextEventTime()
        if faulty { next = min(next, nextJobAt, nextFaultAt) }
        time.advance(to: max(next, now))

        if faulty && now >= nextJobAt { submitJob() }
        if faulty && now >= nextFaultAt { injectFault(start: start) }
        // An impostor goes away when its time is up, in the quiet phase too (one that outlived
        // the faults held its victim's name forever, and the run never settled).
        for (w, at) in impostorEnds where at <= now { w.crash(restartAt: nil) }
        impostorEnds.removeAll { $0.1 <= now }
        let starts = sim.starts, crashes = sim.crashes
        // kill -9 at this event boundary: before the commit, or between the commit and the sends.
        try sim.runDue {
            let crash = rng.unit() < faultRateNow(faults.coordinatorCrash)
            return !crash ? .none : rng.unit() >= faults.crashAfterCommit ? .crashBeforeCommit : .crashAfterCommit
        }
        if sim.starts > starts { checkAcknowledged("after a restart") }
        if sim.crashes > crashes {
            sim.restartAt = inSeconds(0.2 + rng.unit() * 4)
            checkAcknowledged("after a crash")
        }
    }

    func faultRateNow(_ rate: Double) -> Double { inFaultPhase ? rate : 0 }

    // MARK: - Clients and faults

    func submitJob() {
        jobIndex += 1
        let (yaml, planner) = Workloads.workflow(&rng, index: jobIndex)
        let request = SubmitRequest(yaml: yaml, file: "sim-\(jobIndex).yaml", planner: planner, seed: rng.next() >> 1, priority: rng.below(3),
                                    tenant: Workloads.tenants[rng.below(Workloads.tenants.count)].name)
        sim.send(.submit(request), from: [Data("client-\(jobIndex)".utf8)])
        result.jobs += 1
        nextJobAt = inSeconds(1 + rng.unit() * 12)
    }

    func injectFault(start: MonotonicInstant) {
        nextFaultAt = inSeconds(0.1 + rng.unit() * 0.5)
        let dt = (nextFaultAt - now).seconds
        for w in workers where w.up && !w.name.hasPrefix("impostor") {
            if rng.unit() < faults.workerCrash * dt {
                w.crash(restartAt: inSeconds(1 + rng.unit() * 6))
                result.workerCrashes += 1
            } else if w.active && rng.unit() < faults.workerFreeze * dt {
                w.frozenUntil = inSeconds(2 + rng.unit() * 6)
                result.freezes += 1
            }
        }
        if rng.unit() < faults.impostor * dt, let victim = workers.first(where: { $0.up && $0.registered }) {
            // A second process started with a live worker's name, for a while.
            let impostor = sim.addWorker(name: victim.name, model: victim.model, slots: victim.slots, seed: seed &+ 99)
            result.impostors += 1
            let lifetime = 2 + rng.unit() * 8
            impostor.restartAt = nil
            DeferredCrash.schedule(impostor, at: inSeconds(lifetime), in: &impostorEnds)
        }
        if rng.unit() < faults.clockJump * dt {
            time.jump(.seconds((rng.unit() - 0.5) * 60))
            result.clockJumps += 1
        }
        if rng.unit() < faults.hostile * dt { hostile() }
    }

    var impostorEnds: [(SimulatedWorkerProcess, MonotonicInstant)] = []

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
            sim.send(.fromWorker(identity: rogue, .register(info: WorkerInfo(WorkerRecord(name: "rogue", host: "evil", gpus: [0], model: "m-small", slots: 1, freeMemory: 0)),
                                                                running: targetID.map { [$0] } ?? [], finished: [])))
        case 1:
            // A forged success for someone else's attempt, with tokens that overflow.
            if let id = targetID {
                let forged = AttemptReport(id: id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: Int.max, output: Int.max)],
                                                                           output: "ROGUE:\(id)", detail: "forged"))
                sim.send(.fromWorker(identity: rogue, .result(forged)))
                sim.send(.fromWorker(identity: rogue, .register(info: WorkerInfo(WorkerRecord(name: "rogue", host: "evil", gpus: [], model: "m-small", slots: 1, freeMemory: 0)),
                                                                    running: [], finished: [forged])))
            }
        case 2:
            // The real worker's own identity reused with absurd usage.
            if let id = targetID, let w = workers.first(where: { $0.running.contains(id) }) {
                sim.send(.fromWorker(identity: w.identity, .progress(id: id, tokens: Int.max)))
                if rng.unit() < 0.5 {
                    // A broken worker: its own attempt reported with counts that overflow any sum.
                    let usage = Array(repeating: TokenUsage(role: .agent, input: Int.max, output: Int.max), count: 1 + rng.below(40))
                    sim.send(.fromWorker(identity: w.identity, .result(AttemptReport(id: id, outcome: AttemptOutcome(end: .failed, usage: usage)))))
                }
            }
        case 3:
            // A replay of an old result, from its own worker.
            if let w = workers.filter({ !$0.sentResults.isEmpty }).first, let old = w.sentResults.first {
                sim.send(.fromWorker(identity: w.identity, .result(old)))
            }
        case 4:
            let bad = [WorkerInfo(WorkerRecord(name: "huge", host: "h", gpus: [0], model: "m-small", slots: 1_000_000_000, freeMemory: 0)),
                       WorkerInfo(WorkerRecord(name: "neg", host: "h", gpus: [0], model: "m-small", slots: -5, freeMemory: 0)),
                       WorkerInfo(WorkerRecord(name: "", host: "h", gpus: [0], model: "m-small", slots: 1, freeMemory: 0)),
                       WorkerInfo(WorkerRecord(name: "esc\u{1b}[2J\u{0}", host: "h", gpus: [0], model: "m-small", slots: 1, freeMemory: 0))][rng.below(4)]
            sim.send(.fromWorker(identity: Data((bad.worker.name + "#1").utf8), .register(info: bad, running: [], finished: [])))
        case 5:
            let yaml = Workloads.workflow(&rng, index: 0).yaml
            let requests = [SubmitRequest(yaml: yaml, file: "x", budgetUSD: .infinity), SubmitRequest(yaml: yaml, file: "x", budgetUSD: 1e10),
                            SubmitRequest(yaml: yaml, file: "x", deadline: .nan), SubmitRequest(yaml: yaml, file: "x", budgetTokens: Int.max),
                            SubmitRequest(yaml: yaml, file: "x", budgetTokens: 1_000_000_000, planner: "seq:100000000"),
                            SubmitRequest(yaml: yaml + "  - {id: dup, prompt: x, needs: [s0, s0]}\n", file: "x")]
            sim.send(.fromClient(route: [Data("mallory".utf8)], .submit(requests[rng.below(requests.count)])))
        case 6:
            sim.send(.fromClient(route: [Data("mallory".utf8)], .status(job: String(repeating: "\u{1b}x", count: 5_000))))
        case 7:
            // A user cancels a job.
            if let j = sim.shell?.core.jobSnapshots.filter({ !$0.state.isTerminal }).first {
                sim.send(.fromClient(route: [Data("user".utf8)], .cancel(job: j.id)))
            }
        default:
            // A result for an attempt that was never dispatched.
            let fake = AttemptReport(id: AttemptID(job: "j-nope", subtask: "x", n: Int.max), outcome: AttemptOutcome(end: .succeeded, usage: []))
            sim.send(.fromWorker(identity: rogue, .result(fake)))
        }
    }

    // MARK: - Invariants

    /// After every committed iteration: budgets, the ledger, outputs, stored workers.
    func checkInvariants(_ c: borrowing CoordinatorCore) {
        let snaps = c.jobSnapshots
        if let v = budget.check(snaps) { return fail(v) }
        do {
            if let v = try ledger.check(store, memory: snaps) { return fail(v) }
            if let v = try tenantBudgets.check(store, memory: c.tenantSnapshots) { return fail(v) }
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
        sim.calmNetwork()
        guard let shell = sim.shell else { return false }
        return LivenessChecker.settled(shell.core.jobSnapshots, workInFlight: sim.workInFlight)
    }

    func unsettled() -> String {
        LivenessChecker.unsettled(sim.shell?.core.jobSnapshots, inFlight: sim.inFlightSummary)
    }

    func finalChecks() {
        checkAcknowledged("at the end")
        if let v = LivenessChecker.finalCheck(sim.shell?.core.jobSnapshots, store: store) { fail(v) }
    }
}

enum DeferredCrash {
    static func schedule(_ w: SimulatedWorkerProcess, at: MonotonicInstant, in list: inout [(SimulatedWorkerProcess, MonotonicInstant)]) { list.append((w, at)) }
}
