import AgentFlowCore
import Coordinator
import Foundation
import Store
import Testing
import Wire

/// A clock whose wall time can step while its monotonic time does not.
final class SteppingClock: TimeSource, @unchecked Sendable {
    var wall = 1_800_000_000.0
    var mono = 1_000.0
    var now: Double { wall }
    var monotonic: Double { mono }
    func advance(_ s: Double) { wall += s; mono += s }
}

/// The coordinator core driven directly through its shell (no sockets): the regression tests
/// of issue 9's holes. Each drives events in, takes the messages a commit releases, and can
/// "crash" the process (drop the batch before its commit, or its messages after) and restart
/// it from the store.
final class CoreHarness {
    let clock = SteppingClock()
    let store: Store
    var shell: CoordinatorShell
    let cluster: Cluster
    var sent: [Outgoing] = []

    /// `prefetch`: `coordinator.prefetch` (nil: the product's default).
    init(scheduling: SchedulingSpec? = nil, tenants: [TenantSpec] = [], prefetch: Int? = nil) throws {
        var spec = CoordinatorSpec()
        spec.heartbeat = .seconds(1)
        spec.liveness = 3
        if let prefetch { spec.prefetch = prefetch }
        var cluster = Cluster(coordinator: spec, models: [ModelSpec(name: "m-small", priceInput: 0.02, priceOutput: 0.05, context: 8192),
                                                          ModelSpec(name: "m-big", priceInput: 0.04, priceOutput: 0.10, context: 8192)], workers: [])
        cluster.scheduling = scheduling
        cluster.tenants = tenants
        self.cluster = cluster
        store = try Store(path: ":memory:")
        shell = try Self.start(cluster, store, clock)
    }

    static func core(_ cluster: Cluster) -> CoordinatorCore {
        CoordinatorCore(cluster: cluster, options: Coordinator.Options(cluster: cluster).core(cluster: cluster))
    }

    static func start(_ cluster: Cluster, _ store: Store, _ clock: SteppingClock) throws -> CoordinatorShell {
        let shell = CoordinatorShell(core: core(cluster), store: store, board: LiveBoard(), telemetry: Telemetry(metrics: .shared))
        _ = try shell.start(reader: try store.reader(), cluster: cluster, at: CoreTime(clock), send: { _ in })
        return shell
    }

    /// One loop iteration: the events, then the shell's finish (tick, commit); returns what it sends.
    @discardableResult
    func iterate(_ events: [CoreEvent] = []) throws -> [Outgoing] {
        let now = CoreTime(clock)
        for e in events { shell.handle(e, at: now) }
        var out: [Outgoing] = []
        try shell.finish(at: now) { out.append($0) }
        sent += out
        return out
    }

    func restart() throws {
        shell = try Self.start(cluster, store, clock)
    }

    static func info(_ name: String, model: String = "m-small", slots: Int = 2) -> WorkerInfo {
        WorkerInfo(WorkerRecord(name: name, host: "h", gpus: [0], model: model, slots: slots, freeMemory: 0))
    }

    @discardableResult
    func register(_ identity: String, model: String = "m-small", slots: Int = 2) throws -> [Outgoing] {
        let name = String(identity.split(separator: "#")[0])
        return try iterate([.worker(.register(info: Self.info(name, model: model, slots: slots), running: [], finished: []), from: Data(identity.utf8))])
    }

    @discardableResult
    func submit(_ yaml: String, planner: String = "seq:1", budgetTokens: Int? = nil, budgetUSD: Double? = nil, deadline: Double? = nil) throws -> [Outgoing] {
        try iterate([submission(yaml, planner: planner, budgetTokens: budgetTokens, budgetUSD: budgetUSD, deadline: deadline)])
    }

    /// The submission event, parsed as the shell's intake thread would.
    func submission(_ yaml: String, planner: String = "seq:1", budgetTokens: Int? = nil, budgetUSD: Double? = nil, deadline: Double? = nil) -> CoreEvent {
        let request = SubmitRequest(yaml: yaml, file: "t.yaml", budgetTokens: budgetTokens, budgetUSD: budgetUSD, deadline: deadline, planner: planner, seed: 1)
        return Self.submission(request, cluster: cluster, at: clock.wallInstant)
    }

    static func submission(_ request: SubmitRequest, cluster: Cluster, at received: WallInstant) -> CoreEvent {
        let parsed = Result { () throws(ConfigError) -> Workflow in
            do { return try Workflow.parse(yaml: request.yaml, file: request.file, knownModels: cluster.modelNames) }
            catch let e as ConfigError { throw e } catch { throw ConfigError(file: request.file, "\(error)") }
        }
        return .submission(ParsedSubmission(request: request, workflow: parsed, received: received, route: [Data("client".utf8)], book: nil))
    }

    static func dispatches(_ out: [Outgoing]) -> [(to: String, spec: AttemptSpec)] {
        out.compactMap { if case .toWorker(let id, .dispatch(let spec)) = $0 { return (String(decoding: id, as: UTF8.self), spec) } else { return nil } }
    }

    static func submitted(_ out: [Outgoing]) -> String? {
        out.lazy.compactMap { if case .toClient(_, .submitted(let job)) = $0 { return job } else { return nil } }.first
    }

    func ledgerRows(_ job: String, kind: String? = nil) throws -> Int {
        try store.ledger(of: job).filter { kind == nil || $0.kind == kind }.count
    }
}

let oneTask = "name: t\nmodels: [m-small]\nbudget: {tokens: 100000}\ndeadline: 1h\nsubtasks:\n  - {id: a, prompt: x, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}\n"

@Suite struct CoordinatorCoreTests {
    @Test func aResultFromAnotherWorkerIsIgnoredAndTheRealOneSettles() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        try h.register("rogue#1", model: "m-big")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask)))
        let d = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(d.to == "w0#1")
        let forged = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: Int.max, output: Int.max)], output: "FORGED"))
        try h.iterate([.worker(.result(forged), from: Data("rogue#1".utf8))])
        try h.iterate([.worker(.register(info: CoreHarness.info("rogue", model: "m-big"), running: [], finished: [forged]), from: Data("rogue#1".utf8))])
        #expect(try h.store.job(job)?.state == .running)
        #expect(try h.ledgerRows(job) == 0)
        let real = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 60, output: 40)], output: "REAL"))
        try h.iterate([.worker(.result(real), from: Data("w0#1".utf8))])
        #expect(try h.store.job(job)?.state == .succeeded)
        #expect(try h.store.subtasks(of: job).first?.output == "REAL")
        #expect(try h.store.job(job)?.spentTokens == 100)
    }

    @Test func aLiveWorkerNameIsNotTakenOverByAnotherProcess() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask)))
        #expect(CoreHarness.dispatches(h.sent).first?.to == "w0#1")
        let out = try h.register("w0#2")
        let refused = out.contains { if case .toWorker(let id, .rejected(let r)) = $0 { return id == Data("w0#2".utf8) && r.contains("already connected") } else { return false } }
        #expect(refused, "\(out)")
        // The first keeps its attempt and its connection: nothing lost, its heartbeat is accepted.
        let hb = try h.iterate([.worker(.heartbeat, from: Data("w0#1".utf8))])
        #expect(!hb.contains { if case .toWorker(_, .reregister) = $0 { return true } else { return false } })
        #expect(try h.ledgerRows(job, kind: "lost") == 0)
        // Once the first has been silent past liveness, the second may take the name.
        for _ in 0..<5 { h.clock.advance(1); try h.iterate([.worker(.heartbeat, from: Data("w0#2".utf8))]) }
        let later = try h.register("w0#2")
        #expect(later.contains { if case .toWorker(_, .welcome) = $0 { return true } else { return false } }, "\(later)")
    }

    @Test func aCrashBetweenCommitAndSendNeverReissuesAnAttemptNumber() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask)))
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(first.spec.id.n == 1)
        // The dispatch was committed, then the process died before sending it: restart.
        try h.restart()
        h.sent = []
        // The worker never got it, so it does not claim it; after the claim grace it is lost
        // (charged in full) and re-planned under a new number.
        try h.iterate([.worker(.register(info: CoreHarness.info("w0"), running: [], finished: []), from: Data("w0#1".utf8))])
        for _ in 0..<12 {
            h.clock.advance(1)
            try h.iterate([.worker(.heartbeat, from: Data("w0#1".utf8))])
        }
        let again = CoreHarness.dispatches(h.sent).map(\.spec.id.n)
        #expect(!again.isEmpty && !again.contains(1), "\(again)")
        #expect(try h.ledgerRows(job, kind: "lost") == 1)
    }

    @Test func aCrashBeforeTheCommitAcknowledgesNothing() throws {
        let h = try CoreHarness()
        let request = SubmitRequest(yaml: oneTask, file: "t.yaml", planner: "seq:1", seed: 1)
        h.shell.handle(CoreHarness.submission(request, cluster: h.cluster, at: h.clock.wallInstant), at: CoreTime(h.clock))
        // kill -9 here: the reply is released only after the commit, and nothing is stored.
        var out: [Outgoing] = []
        #expect(try h.shell.finish(at: CoreTime(h.clock), fault: .crashBeforeCommit) { out.append($0) } == nil)
        try h.restart()
        #expect(try h.store.recentJobs(limit: 10).isEmpty)
        #expect(out.isEmpty && h.sent.isEmpty)
    }

    @Test func overflowingTokenCountsAreChargedTheReservationNotTrappedOn() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask)))
        let d = try #require(CoreHarness.dispatches(h.sent).first)
        try h.iterate([.worker(.progress(id: d.spec.id, tokens: Int.max), from: Data("w0#1".utf8))])
        let huge = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .failed, usage: Array(repeating: TokenUsage(role: .agent, input: Int.max, output: Int.max), count: 100)))
        try h.iterate([.worker(.result(huge), from: Data("w0#1".utf8))])
        let attempt = try #require(try h.store.attempts(of: job).first { $0.id == d.spec.id })
        #expect(try h.store.job(job)?.spentTokens == attempt.reserved.tokens)
        #expect(h.shell.core.jobSnapshots.allSatisfy { $0.consistent })
    }

    @Test func anAttemptItsWorkerNeverReportsIsReclaimedAfterItsDeadline() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask, deadline: 20)))
        let d = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(d.spec.ttl > .zero && d.spec.ttl <= .seconds(20))
        // The worker heartbeats but never says anything about the attempt.
        for _ in 0..<40 {
            h.clock.advance(1)
            try h.iterate([.worker(.heartbeat, from: Data("w0#1".utf8))])
        }
        #expect(try h.ledgerRows(job, kind: "lost") == 1)
        #expect(h.shell.core.jobSnapshots.first { $0.id == job }?.reserved == .zero)
        #expect(try h.store.job(job)?.state.isTerminal == true)
        #expect(h.sent.contains { if case .toWorker(_, .cancel(let id)) = $0 { return id == d.spec.id } else { return false } })
    }

    @Test func theCoreHandsItsWritesToTheShellAsDataAndWritesNothingItself() throws {
        let h = try CoreHarness()
        // The core alone, no shell: it has no store to write to, only actions to return.
        var core = CoreHarness.core(h.cluster)
        let now = CoreTime(h.clock)
        _ = core.handle(.restart(RestartRows(jobs: [], books: [:])), at: now)
        _ = core.handle(.worker(.register(info: CoreHarness.info("w0"), running: [], finished: []), from: Data("w0#1".utf8)), at: now)
        var iteration = core.handle(h.submission(oneTask), at: now)
        core.handle(.tick, at: now, into: &iteration)
        let job = try #require(CoreHarness.submitted(iteration.messages))
        // Decided, not written: the store has nothing of the job until the shell applies the writes.
        #expect(try h.store.job(job) == nil)
        #expect(try h.store.attempts(of: job).isEmpty)
        let d = try #require(CoreHarness.dispatches(iteration.messages).first)
        // In order: the job, its subtask, the queued attempt, then its dispatch with the deadline it carries.
        let kinds = iteration.writes.map { w -> String in
            switch w {
            case .insertJob(let r): "job \(r.id == job)"
            case .updateJob(let r): "update \(r.id == job)"
            case .subtask(let r): "subtask \(r.id)"
            case .attempt(let r), .attemptEnded(let r): "attempt \(r.id.n) \(r.state.rawValue)"
            case .dispatched(let id, let worker, _, let deadline): "dispatched \(id == d.spec.id) \(worker) \(abs(deadline.seconds(since: h.clock.wallInstant) - d.spec.ttl.seconds) < 1e-6)"
            case .ledger: "ledger"
            case .worker(let r, _, _): "worker \(r.name)"
            case .outputs(_, _, let subtask, _): "outputs \(subtask)"
            case .transcript(let id, _, _, _): "transcript \(id.n)"
            case .tenantUsage(let t, _, _): "tenant usage \(t)"
            case .tenantSpend(let t, _): "tenant spend \(t)"
            }
        }
        #expect(Array(kinds.prefix(3)) == ["job true", "subtask a", "attempt 1 queued"], "\(kinds)")
        let queuedAt = try #require(kinds.firstIndex(of: "attempt 1 queued"))
        let dispatchedAt = try #require(kinds.firstIndex(of: "dispatched true w0 true"), "\(kinds)")
        #expect(queuedAt < dispatchedAt)
        #expect(!kinds.contains("ledger"), "nothing is charged before a result")
        // Applying the writes in one transaction and committing stores it all.
        try h.store.begin()
        try h.store.apply(iteration.writes)
        try h.store.commit()
        #expect(try h.store.job(job)?.state == .running)
        #expect(try h.store.attempts(of: job).map(\.state) == [.dispatched])
    }

    @Test func anAttemptCarriesTheSoonerOfTheJobDeadlineAndItsPlannedEnd() throws {
        // Expected 5 s: planned end = dispatch + max(120 s, 10 × 5 s) = 120 s, sooner than the 1 h job deadline.
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask, deadline: 3600)))
        let d = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(abs(d.spec.ttl.seconds - Deadlines.plannedAllowance(expectedSeconds: 5)) < 1e-6)
        #expect(d.spec.ttl == .seconds(120))
        #expect(try h.store.attempts(of: job).first?.deadline == h.clock.wallInstant.adding(seconds: 120), "the stored deadline is the attempt's, for a restart")
        // With a job deadline sooner than the planned end, the job's deadline wins.
        let h2 = try CoreHarness()
        try h2.register("w0#1")
        _ = try #require(CoreHarness.submitted(try h2.submit(oneTask, deadline: 30)))
        let d2 = try #require(CoreHarness.dispatches(h2.sent).first)
        #expect(d2.spec.ttl > .seconds(29) && d2.spec.ttl <= .seconds(30))
        // A stuck attempt (its worker heartbeats, never reports) is reclaimed after its planned end
        // and the subtask is planned again, long before the job's deadline.
        for _ in 0..<140 {
            h.clock.advance(1)
            try h.iterate([.worker(.heartbeat, from: Data("w0#1".utf8))])
        }
        #expect(try h.ledgerRows(job, kind: "lost") == 1)
        #expect(try h.store.job(job)?.state == .running)
        let again = CoreHarness.dispatches(h.sent).map(\.spec.id.n)
        #expect(again == [1, 2], "\(again)")
    }

    @Test func wallClockStepsDeclareNoWorkerDead() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        let job = try #require(CoreHarness.submitted(try h.submit(oneTask)))
        for step in [3.0, -3.0, 600.0, -600.0] {
            h.clock.wall += step
            h.clock.advance(0.5)
            try h.iterate([.worker(.heartbeat, from: Data("w0#1".utf8))])
        }
        #expect(h.shell.core.aliveWorkerNames == ["w0"])
        #expect(try h.ledgerRows(job, kind: "lost") == 0)
    }

    @Test func absurdSubmissionsAreRefusedWithCodeTwo() throws {
        let h = try CoreHarness()
        let cases: [(Int?, Double?, Double?, String)] = [(nil, .infinity, nil, "seq:1"), (nil, 1e10, nil, "seq:1"), (nil, .nan, nil, "seq:1"),
                                                         (Int.max, nil, nil, "seq:1"), (nil, nil, .nan, "seq:1"), (nil, nil, -1, "seq:1"),
                                                         (1_000_000, nil, nil, "seq:100000000")]
        for (tokens, usd, deadline, planner) in cases {
            let out = try h.submit(oneTask, planner: planner, budgetTokens: tokens, budgetUSD: usd, deadline: deadline)
            let code = out.lazy.compactMap { if case .toClient(_, .error(let c, _)) = $0 { return c } else { return nil } }.first
            #expect(code == 2, "\(String(describing: tokens)) \(String(describing: usd)) \(String(describing: deadline)) \(planner): \(out)")
        }
        #expect(try h.store.recentJobs(limit: 10).isEmpty)
    }

    @Test func aStoredWorkflowWithDuplicateNeedsEndsFailedAndTheCoordinatorGoesOn() throws {
        let h = try CoreHarness()
        let yaml = "name: dup\nbudget: {tokens: 1000}\ndeadline: 1h\nsubtasks:\n  - {id: a, prompt: x}\n  - {id: b, prompt: x, needs: [a, a]}\n"
        try h.store.begin()
        try h.store.save(JobRecord(id: "j-dup", workflowName: "dup", yaml: yaml, file: "dup.yaml", state: .running, reason: "", planner: "seq:1",
                                   seed: 1, priority: 0, limitTokens: 1000, limitUSD: nil, spentTokens: 0, spentUSD: .zero,
                                   submittedAt: h.clock.wallInstant, deadline: h.clock.wallInstant.adding(seconds: 60), startedAt: h.clock.wallInstant, endedAt: nil, minSuccess: nil))
        try h.store.commit()
        try h.restart()
        let j = try #require(try h.store.job("j-dup"))
        #expect(j.state == .failed)
        #expect(j.reason.contains("twice"), "\(j.reason)")
        try h.register("w0#1")
        #expect(CoreHarness.submitted(try h.submit(oneTask)) != nil)
    }
}
