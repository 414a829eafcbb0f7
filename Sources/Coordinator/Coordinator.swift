import AgentFlowCore
import Foundation
import Planner
import Store
import Synchronization
import Wire
import ZeroMQ

/// Counters the coordinator keeps about its sockets and dispatch, for `workers`/benchmarks.
public struct CoordinatorStats: Sendable {
    public init() {}
    public var malformedMessages = 0
    public var ignoredResults = 0
    public var dispatched = 0
    public var results = 0
    /// Seconds from sending a dispatch to recording its result, per finished attempt.
    public var roundTrips: [Double] = []
    /// Milliseconds per decision of planners run on the planning thread.
    public var planningMilliseconds: [Double] = []
    /// Loop iterations, and seconds the loop spent working (not waiting in poll).
    public var loops = 0
    public var busySeconds = 0.0
}

/// A worker as the coordinator tracks it.
struct WorkerEntry {
    var info: WorkerInfo
    var identity: Data
    var lastSeen: Double
    var alive: Bool
    var running: Set<AttemptID>
    var breaker = BackendBreaker()
    var free: Int { alive && breaker.suspendedUntil == nil ? max(0, info.slots - running.count) : 0 }
}

/// A circuit breaker on a worker's model server. Attempts that end in an error having used no
/// tokens (the server refuses connections, answers 5xx, or is gone) are the backend's fault, not
/// the task's: after ``threshold`` in a row the worker gets no attempts for a cooldown (2 s,
/// doubling to 30 s), then one round to try again; any attempt that reaches the model closes it.
/// Without it, a job whose server is down would burn through attempts until its deadline.
struct BackendBreaker {
    static let threshold = 3
    static let longestCooldown = 30.0
    var failuresInARow = 0
    var trips = 0
    var suspendedUntil: Double?
    /// The last failure, for the job's reason and `agentflow workers`.
    var problem: String?

    /// Records how an attempt on this worker ended; true when the breaker has just opened.
    mutating func record(end: AttemptEnd, tokens: Int, detail: String, now: Double) -> Bool {
        switch end {
        case .cancelled:
            return false
        case .error where tokens == 0:
            failuresInARow += 1
            problem = detail
            guard failuresInARow >= Self.threshold, suspendedUntil == nil else { return false }
            trips += 1
            suspendedUntil = now + min(Self.longestCooldown, 2 * pow(2, Double(trips - 1)))
            return true
        default:
            self = BackendBreaker()
            return false
        }
    }
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
        /// CURVE: the coordinator's secret key, and the peers allowed (empty: any that knows the public key).
        public var curveSecretKey: String?
        public var authorizedKeys: [String] = []

        public init(cluster: Cluster) {
            workersEndpoint = cluster.coordinator.workers
            clientsEndpoint = cluster.coordinator.clients
            database = cluster.coordinator.database
            heartbeat = cluster.coordinator.heartbeat
            liveness = cluster.coordinator.liveness
        }
    }

    let cluster: Cluster
    let options: Options
    let time: any TimeSource
    let context: ZMQContext
    var store: Store!
    var workerSocket: ZMQSocket!
    var clientSocket: ZMQSocket!
    let codec = WireCodec()

    var jobs: [String: JobRun] = [:]
    var workers: [String: WorkerEntry] = [:]
    var stats = CoordinatorStats()
    var nextHeartbeat = 0.0
    var dispatchTimes: [AttemptID: Double] = [:]
    let planningThread = PlanningThread()
    let intake = IntakeThread()
    /// Results recorded this loop iteration, acknowledged in one message per worker after the
    /// commit (a worker forgets a result only once it is durable).
    var pendingAcks: [Data: [AttemptID]] = [:]
    /// Ended jobs still held in memory, oldest first.
    var recentlyFinished: [String] = []
    /// Observations per workflow name, loaded from the store on first use.
    var books: [String: EstimateBook] = [:]

    public init(cluster: Cluster, options: Options, context: ZMQContext, time: any TimeSource = SystemTime()) {
        self.cluster = cluster
        self.options = options
        self.context = context
        self.time = time
    }

    var deadAfter: Double { options.heartbeat * Double(options.liveness) }

    /// Runs until `stop` is set; `onBound` gets the endpoints actually bound (ports resolved).
    /// Throws if the sockets cannot be bound or the store opened. Returns the final counters.
    @discardableResult
    public func run(stop: StopSignal, onBound: (String, String) -> Void = { _, _ in }) throws -> CoordinatorStats {
        store = try Store(path: options.database)
        workerSocket = try ZMQSocket(context, .router)
        clientSocket = try ZMQSocket(context, .router)
        defer {
            workerSocket.close()
            clientSocket.close()
        }
        for socket in [workerSocket!, clientSocket!] {
            try socket.setHighWaterMarks(send: 0, receive: 0)
            try socket.setMaxMessageSize(16 << 20)
        }
        var zap: ZAPHandler?
        if let secret = options.curveSecretKey {
            // The ZAP handler must be bound before any CURVE server socket binds.
            zap = try ZAPHandler(context, allowed: options.authorizedKeys)
            try workerSocket.setCurveServer(secretKey: secret)
            try clientSocket.setCurveServer(secretKey: secret)
        }
        defer { zap?.socket.close() }
        // A restarted worker reconnects under the same routing id; let it take the id over.
        try workerSocket.setRouterHandover()
        try workerSocket.bind(options.workersEndpoint)
        try clientSocket.bind(options.clientsEndpoint)
        onBound(workerSocket.lastEndpoint(), clientSocket.lastEndpoint())

        try store.begin()
        try resume()
        try store.commit()

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
            try tick()
            try store.commit()
            for (identity, ids) in pendingAcks { send(.ack(ids: ids), to: identity) }
            pendingAcks.removeAll(keepingCapacity: true)
        }
        try store.commit()
        return stats
    }

    func nextWake() -> Double {
        let now = time.now
        var wake = nextHeartbeat
        for job in jobs.values where !job.isTerminal { wake = min(wake, job.record.deadline) }
        for w in workers.values { if let until = w.breaker.suspendedUntil { wake = min(wake, until) } }
        for job in jobs.values {
            for id in job.unclaimed { if let c = job.live[id]?.claimBy { wake = min(wake, c) } }
        }
        return max(0, min(wake - now, options.heartbeat))
    }

    // MARK: - Messages from workers

    func drainWorkers() throws {
        var budget = 4096
        while budget > 0, let frames = try workerSocket.receive(dontWait: true) {
            budget -= 1
            guard frames.count == 2 else {
                stats.malformedMessages += 1
                continue
            }
            let message: WorkerMessage
            do {
                message = try codec.decode(WorkerMessage.self, from: frames[1])
            } catch {
                stats.malformedMessages += 1
                continue
            }
            try handle(message, from: frames[0])
        }
    }

    func send(_ message: CoordinatorMessage, to identity: Data) {
        _ = try? workerSocket.send([identity, codec.encode(message)], dontWait: true)
    }

    func workerName(_ identity: Data) -> String { String(decoding: identity, as: UTF8.self) }

    func handle(_ message: WorkerMessage, from identity: Data) throws {
        let now = time.now
        let name = workerName(identity)
        if case .register(let info, let running, let finished) = message {
            try register(info, identity: identity, running: running, finished: finished, now: now)
            return
        }
        guard var worker = workers[name], worker.alive else {
            // A worker we do not know (we restarted, or declared it dead): ask it to register.
            send(.reregister, to: identity)
            return
        }
        worker.lastSeen = now
        workers[name] = worker
        switch message {
        case .register: break
        case .heartbeat: break
        case .progress(let id, let tokens):
            if let job = jobs[id.job], var a = job.live[id] {
                a.progressTokens = min(tokens, a.record.tokenCap)
                job.live[id] = a
            }
        case .result(let report):
            try record(report, from: name, now: now)
            pendingAcks[identity, default: []].append(report.id)
        case .goodbye:
            try declareDead(name, reason: "worker \(name) shut down", now: now)
        }
    }

    func register(_ info: WorkerInfo, identity: Data, running: [AttemptID], finished: [AttemptReport], now: Double) throws {
        guard info.version == wireVersion else {
            send(.rejected(reason: "wire version \(info.version) is not \(wireVersion)"), to: identity)
            return
        }
        guard cluster.model(info.model) != nil else {
            send(.rejected(reason: "model '\(info.model)' is not in the cluster's models"), to: identity)
            return
        }
        // A re-registration replaces the old entry; attempts it no longer runs are lost.
        let previous = workers[info.name]
        var entry = WorkerEntry(info: info, identity: identity, lastSeen: now, alive: true, running: [])
        for id in running {
            if let job = jobs[id.job], var a = job.live[id], a.record.state == .dispatched,
               a.record.worker == info.name {
                a.claimBy = nil
                a.record.worker = info.name
                job.live[id] = a
                job.unclaimed.remove(id)
                entry.running.insert(id)
            } else {
                // Not live any more (ended, lost, or never ours): stop it.
                send(.cancel(id: id), to: identity)
            }
        }
        workers[info.name] = entry
        if let previous {
            for id in previous.running.subtracting(entry.running) where !finished.contains(where: { $0.id == id }) {
                try loseAttempt(id, reason: "worker \(info.name) re-registered without it", now: now)
            }
        }
        try store.save(WorkerRecord(name: info.name, host: info.host, gpus: info.gpus, model: info.model, slots: info.slots,
                                    freeMemory: info.freeMemory, state: "alive", lastSeen: now))
        send(.welcome(heartbeat: options.heartbeat, liveness: options.liveness), to: identity)
        for report in finished {
            try record(report, from: info.name, now: now)
            pendingAcks[identity, default: []].append(report.id)
        }
        for job in jobs.values where !job.isTerminal { job.touch() }
    }

    func declareDead(_ name: String, reason: String, now: Double) throws {
        guard var worker = workers[name], worker.alive else { return }
        worker.alive = false
        let lost = worker.running
        worker.running = []
        workers[name] = worker
        try store.save(WorkerRecord(name: name, host: worker.info.host, gpus: worker.info.gpus, model: worker.info.model,
                                    slots: worker.info.slots, freeMemory: worker.info.freeMemory, state: "dead", lastSeen: worker.lastSeen))
        for id in lost { try loseAttempt(id, reason: reason, now: now) }
        for job in jobs.values where !job.isTerminal { job.touch() }
    }

    // MARK: - Attempt accounting

    /// Records a finished attempt: charges its actual usage (never more than was reserved),
    /// releases the rest, and advances its subtask. A result for an attempt that is not live is
    /// ignored — it was already charged as lost, or cancelled and released.
    func record(_ report: AttemptReport, from workerName: String, now: Double) throws {
        let id = report.id
        if var w = workers[workerName] {
            w.running.remove(id)
            workers[workerName] = w
        }
        guard let job = jobs[id.job], let a = job.live[id], a.record.state == .dispatched else {
            stats.ignoredResults += 1
            return
        }
        stats.results += 1
        if options.recordRoundTrips, let sent = dispatchTimes.removeValue(forKey: id) { stats.roundTrips.append(now - sent) }
        let model = job.models[a.model]
        let outcome = report.outcome
        try noteBackend(workerName, outcome, now: now)
        // Per role, negative counts (a broken or hostile worker) read as zero; the charge is the
        // sum of the per-role prices, so the ledger adds up to it to the nano-dollar.
        let roles = outcome.usage.map { TokenUsage(role: $0.role, input: max(0, $0.input), output: max(0, $0.output)) }.filter { $0.total > 0 }
        let prices = roles.map { NanoUSD(usd: model.usd(input: $0.input, output: $0.output)) }
        let tokensIn = roles.reduce(0) { $0 + $1.input }
        let tokensOut = roles.reduce(0) { $0 + $1.output }
        let usage = Amount(tokens: tokensIn + tokensOut, usd: prices.reduce(.zero, +))
        let charged = job.ledger.charge(usage, for: id)
        if charged == usage {
            for (u, price) in zip(roles, prices) {
                try store.append(LedgerEntry(attempt: id, role: u.role.rawValue, model: model.name, tokensIn: u.input, tokensOut: u.output,
                                             usd: price, kind: "charge", at: now))
            }
        } else {
            // The worker reported more than its cap allowed: charge the reservation, no more.
            try store.append(LedgerEntry(attempt: id, role: "agent", model: model.name, tokensIn: 0, tokensOut: charged.tokens,
                                         usd: charged.usd, kind: "clamped", at: now))
        }
        var rec = a.record
        rec.state = outcome.end == .succeeded ? .succeeded : (outcome.end == .cancelled ? .cancelled : .failed)
        rec.tokensIn = tokensIn
        rec.tokensOut = tokensOut
        rec.usd = charged.usd
        rec.endedAt = now
        rec.detail = outcome.detail.isEmpty ? outcome.end.rawValue : "\(outcome.end.rawValue): \(outcome.detail)"
        try store.save(rec)
        job.remove(id)
        if outcome.end != .cancelled && outcome.end != .error {
            try observe(job, subtask: id.subtask, model: model.name, passed: outcome.end == .succeeded,
                        tokens: tokensIn + tokensOut, seconds: now - (a.record.dispatchedAt ?? now))
        }
        try finishAttempt(job, a, record: rec, charged: charged, success: outcome.end == .succeeded, output: outcome.output, now: now)
    }

    /// Feeds the worker's breaker; an opened breaker is persisted (`agentflow workers` shows it)
    /// and every job re-plans without that worker's slots.
    func noteBackend(_ name: String, _ outcome: AttemptOutcome, now: Double) throws {
        guard var w = workers[name] else { return }
        let tokens = outcome.usage.reduce(0) { $0 + max(0, $1.input) + max(0, $1.output) }
        let opened = w.breaker.record(end: outcome.end, tokens: tokens, detail: outcome.detail, now: now)
        workers[name] = w
        if opened {
            try saveWorkerState(name, w, state: "suspended")
            for job in jobs.values where !job.isTerminal { job.touch() }
        }
    }

    func saveWorkerState(_ name: String, _ w: WorkerEntry, state: String) throws {
        try store.save(WorkerRecord(name: name, host: w.info.host, gpus: w.info.gpus, model: w.info.model, slots: w.info.slots,
                                    freeMemory: w.info.freeMemory, state: state, lastSeen: w.lastSeen))
    }

    /// Feeds a finished attempt to the workflow's estimates and persists them.
    func observe(_ job: JobRun, subtask: String, model: String, passed: Bool, tokens: Int, seconds: Double) throws {
        // Mutated in place: the book is shared by every job of the workflow and never copied here.
        // Nothing extra is persisted: the attempts table holds the same facts.
        books[job.workflow.name, default: EstimateBook()].record(subtask: subtask, model: model, passed: passed, tokens: tokens, seconds: seconds)
    }

    /// Builds the estimate book of a workflow from its finished attempts in the store, once.
    func loadBook(for workflow: String) {
        if books[workflow] != nil { return }
        var book = EstimateBook()
        for a in (try? store.finishedAttempts(workflow: workflow)) ?? [] {
            book.record(subtask: a.subtask, model: a.model, passed: a.passed, tokens: a.tokens, seconds: a.seconds)
        }
        books[workflow] = book
    }

    /// An attempt whose worker died or never claimed it: its reservation is charged in full.
    func loseAttempt(_ id: AttemptID, reason: String, now: Double) throws {
        guard let job = jobs[id.job], let a = job.live[id], a.record.state == .dispatched else { return }
        let model = job.models[a.model]
        let charged = job.ledger.chargeInFull(id)
        try store.append(LedgerEntry(attempt: id, role: "agent", model: model.name, tokensIn: 0, tokensOut: charged.tokens,
                                     usd: charged.usd, kind: "lost", at: now))
        var rec = a.record
        rec.state = .lost
        rec.tokensOut = charged.tokens
        rec.usd = charged.usd
        rec.endedAt = now
        rec.detail = "lost: \(reason)"
        try store.save(rec)
        job.remove(id)
        dispatchTimes[id] = nil
        try finishAttempt(job, a, record: rec, charged: charged, success: false, output: nil, now: now)
    }

    /// Common bookkeeping after an attempt ends, however it ended.
    func finishAttempt(_ job: JobRun, _ a: LiveAttempt, record rec: AttemptRecord, charged: Amount, success: Bool, output: String?, now: Double) throws {
        let sid = a.record.id.subtask
        var sub = job.subtasks[sid]!
        sub.tokens += charged.tokens
        sub.usd = sub.usd + charged.usd
        if sub.state != .succeeded { sub.model = a.spec.model }
        if success && sub.state != .succeeded {
            sub.state = .succeeded
            sub.output = output
            sub.model = a.spec.model
            job.markDone(a.node)
            // One sample passed: stop its siblings (saves budget and time).
            for other in job.liveBySubtask[sid] ?? [] {
                try cancelAttempt(job, other, reason: "a sibling passed", now: now)
            }
            job.subtasks[sid] = sub
            for d in job.dependents[sid] ?? [] where job.subtasks[d]!.state == .pending {
                if job.workflow.subtasks[job.nodeIndex[d]!].needs.allSatisfy({ job.subtasks[$0]!.state == .succeeded }) {
                    job.subtasks[d]!.state = .ready
                    try store.save(job.subtasks[d]!)
                }
            }
        } else if sub.state != .succeeded && job.inFlight[a.node] == nil {
            sub.state = job.isTerminal ? .abandoned : .ready
        }
        job.subtasks[sid] = sub
        try store.save(sub)
        job.record.spentTokens = job.ledger.spent.tokens
        job.record.spentUSD = job.ledger.spent.usd
        job.touch()
        if let max = job.workflow.subtasks[a.node].maxAttempts, !job.isTerminal, sub.state == .ready, sub.attempts >= max {
            try end(job, .failed, reason: "subtask '\(sid)' failed all \(max) attempts it was allowed", now: now)
        }
        try store.update(job.record)
    }

    /// Stops a live attempt: a queued one is dropped and its reservation released; a dispatched
    /// one is told to stop and stays reserved until its worker reports what it used.
    func cancelAttempt(_ job: JobRun, _ id: AttemptID, reason: String, now: Double) throws {
        guard let a = job.live[id] else { return }
        switch a.record.state {
        case .queued:
            job.ledger.charge(.zero, for: id)
            var rec = a.record
            rec.state = .cancelled
            rec.endedAt = now
            rec.detail = "cancelled before dispatch: \(reason)"
            try store.save(rec)
            job.remove(id)
        case .dispatched:
            if let w = a.record.worker, let worker = workers[w], worker.alive {
                send(.cancel(id: id), to: worker.identity)
            }
        default: break
        }
    }

    // MARK: - Job lifecycle

    func end(_ job: JobRun, _ state: JobState, reason: String, now: Double) throws {
        guard !job.isTerminal else { return }
        job.record.state = state
        job.record.reason = reason
        job.record.endedAt = now
        for id in Array(job.live.keys) { try cancelAttempt(job, id, reason: reason, now: now) }
        for (sid, var s) in job.subtasks where s.state != .succeeded {
            s.state = s.state == .running && job.inFlight[job.nodeIndex[sid]!] != nil ? .running : .abandoned
            job.subtasks[sid] = s
            try store.save(s)
        }
        job.record.spentTokens = job.ledger.spent.tokens
        job.record.spentUSD = job.ledger.spent.usd
        try store.update(job.record)
    }

    /// "; worker gpu0's model server is failing: …" for the job's workers whose breaker is not
    /// closed, so a job that timed out says why.
    func backendTrouble(for job: JobRun) -> String {
        let models = Set(job.models.map(\.name))
        let failing = workers.sorted { $0.key < $1.key }.filter { models.contains($0.value.info.model) && $0.value.breaker.trips > 0 }
        return failing.map { "; worker \($0.key)'s model server keeps failing (\($0.value.breaker.problem ?? "no detail"))" }.joined()
    }

    /// Models the job may use, with the slots alive workers offer for each.
    func planModels(for job: JobRun) -> [PlanModel] {
        job.models.map { m in
            let serving = workers.values.filter { $0.alive && $0.breaker.suspendedUntil == nil && $0.info.model == m.name }
            return PlanModel(name: m.name, priceInput: m.priceInput, priceOutput: m.priceOutput,
                             freeSlots: serving.reduce(0) { $0 + $1.free }, totalSlots: serving.reduce(0) { $0 + $1.info.slots })
        }
    }

    /// Decides what to launch for a job: at once for cheap planners (`seq:K`), on the planning
    /// thread for MCPP. Decisions are applied by `apply`.
    func plan(_ job: JobRun, now: Double) throws {
        job.needsPlanning = false
        guard !job.isTerminal, !job.planning else { return }
        if job.done.count == job.planNodes.count {
            try end(job, .succeeded, reason: "all \(job.planNodes.count) subtasks passed", now: now)
            return
        }
        // The planner only acts on ready nodes; with none, there is nothing to decide.
        if job.ready.isEmpty && !job.live.isEmpty && job.record.minSuccess == nil { return }
        var models = planModels(for: job)
        // Prefer models someone serves; if none is served yet, plan anyway and wait for workers.
        let served = Set(models.indices.filter { (models[$0].totalSlots ?? 0) > 0 })
        if served.isEmpty {
            for i in models.indices { models[i].freeSlots = nil; models[i].totalSlots = nil }
        }
        var state = job.planState(now: now, models: models)
        state.nodes = job.nodes(servedBy: served.isEmpty ? Set(models.indices) : served)
        if job.planner is SequentialPlanner {
            try apply(job, launches: job.planner.decide(state), completion: nil, version: job.version, now: now)
            return
        }
        state.estimateBook = books[job.workflow.name]
        for (node, l) in job.launchedAt where job.inFlight[node] != nil {
            state.inFlightDetail[node] = InFlightDetail(model: l.model, elapsed: now - l.at)
        }
        job.planning = true
        planningThread.submit(job: job.record.id, version: job.version, planner: job.planner, state: state,
                              wantCompletion: job.record.minSuccess != nil)
    }

    /// Decisions back from the planning thread.
    func collectDecisions(now: Double) throws {
        for d in planningThread.take() {
            stats.planningMilliseconds.append(d.milliseconds)
            guard let job = jobs[d.job] else { continue }
            job.planning = false
            if d.version != job.version { job.needsPlanning = true }
            try apply(job, launches: d.launches, completion: d.completion, version: d.version, now: now)
        }
    }

    /// Reserves budget for a decision's launches and queues the attempts. Launches for nodes
    /// that are no longer ready (the job moved on while the planner thought) are dropped.
    func apply(_ job: JobRun, launches: [Launch], completion: Double?, version: Int, now: Double) throws {
        guard !job.isTerminal else { return }
        if let min = job.record.minSuccess, let p = completion, p < min {
            try end(job, .infeasible, reason: String(format: "estimated completion probability %.3f is below --min-success %.3f", p, min), now: now)
            return
        }
        var launchedAny = false
        for launch in launches where job.ready.contains(launch.node) && job.models.indices.contains(launch.model) {
            let subtask = job.workflow.subtasks[launch.node]
            let model = job.models[launch.model]
            let cap = subtask.tokenCap(on: model)
            let amount = Amount(tokens: cap, usd: NanoUSD(usd: model.worstCaseUSD(tokens: cap)))
            var sub = job.subtasks[subtask.id]!
            for _ in 0..<max(1, launch.samples) {
                if let max = subtask.maxAttempts, sub.attempts >= max { break }
                let id = AttemptID(job: job.record.id, subtask: subtask.id, n: sub.attempts + 1)
                do {
                    try job.ledger.reserve(amount, for: id)
                } catch {
                    break
                }
                sub.attempts += 1
                sub.state = .running
                let rec = AttemptRecord(id: id, model: model.name, state: .queued, tokenCap: cap, reserved: amount,
                                        deadline: job.record.deadline, createdAt: now)
                job.add(LiveAttempt(record: rec, spec: job.spec(for: rec), node: launch.node, model: launch.model))
                job.launchedAt[launch.node] = (launch.model, now)
                try store.save(rec)
                launchedAny = true
            }
            job.subtasks[subtask.id] = sub
            try store.save(sub)
        }
        if !launchedAny && job.live.isEmpty && version == job.version {
            try endStuck(job, now: now)
        }
    }

    /// Nothing runs and the planner launched nothing: say why the job cannot go on.
    func endStuck(_ job: JobRun, now: Double) throws {
        let remaining = job.workflow.subtasks.indices.filter { !job.done.contains($0) }
        let fitsSomething = remaining.contains { i in
            job.models.contains { m in
                let cap = job.workflow.subtasks[i].tokenCap(on: m)
                return job.ledger.fits(Amount(tokens: cap, usd: NanoUSD(usd: m.worstCaseUSD(tokens: cap))))
            }
        }
        if !fitsSomething {
            let a = job.ledger.available
            var left: [String] = []
            if job.record.limitTokens != nil { left.append("\(a.tokens) tokens") }
            if job.record.limitUSD != nil { left.append(String(format: "$%.6f", a.usd.usd)) }
            try end(job, .budgetExhausted,
                    reason: "what is left of the budget (\(left.joined(separator: ", "))) cannot cover another attempt; \(job.done.count) of \(job.planNodes.count) subtasks passed",
                    now: now)
        } else if let failed = job.workflow.subtasks.first(where: { s in
            (s.maxAttempts.map { job.subtasks[s.id]!.attempts >= $0 } ?? false) && job.subtasks[s.id]!.state != .succeeded
        }) {
            try end(job, .failed, reason: "subtask '\(failed.id)' used all \(failed.maxAttempts!) attempts without passing", now: now)
        } else {
            try end(job, .infeasible,
                    reason: "planner \(job.planner.name) launches nothing more: it expects no attempt that fits the remaining budget and time to help; \(job.done.count) of \(job.planNodes.count) subtasks passed",
                    now: now)
        }
    }


    /// Sends queued attempts to free slots of their model, higher-priority and older jobs first.
    func dispatchQueued(now: Double) {
        let active = jobs.values.filter { !$0.isTerminal && $0.hasQueued }
            .sorted { ($0.record.priority, -$0.record.submittedAt) > ($1.record.priority, -$1.record.submittedAt) }
        guard !active.isEmpty else { return }
        var freeByModel: [String: [String]] = [:]
        for (name, w) in workers where w.free > 0 { freeByModel[w.info.model, default: []].append(name) }
        for job in active {
            var skipped: [AttemptID] = []
            while job.hasQueued {
                let id = job.queue[job.queueHead]
                job.queueHead += 1
                guard var a = job.live[id], var names = freeByModel[a.spec.model], let name = names.first, var w = workers[name] else {
                    skipped.append(id)
                    if freeByModel.isEmpty { break }
                    continue
                }
                a.record.state = .dispatched
                a.record.worker = name
                a.record.dispatchedAt = now
                job.live[id] = a
                w.running.insert(id)
                workers[name] = w
                if w.free == 0 { names.removeFirst() }
                freeByModel[a.spec.model] = names.isEmpty ? nil : names
                try? store.markDispatched(id, worker: name, at: now)
                send(.dispatch(a.spec), to: w.identity)
                stats.dispatched += 1
                if options.recordRoundTrips { dispatchTimes[id] = now }
            }
            // Attempts whose model has no free slot keep their place at the front.
            if !skipped.isEmpty {
                job.queue.replaceSubrange(job.queueHead..<job.queueHead, with: skipped)
            }
        }
    }

    /// Timers: heartbeats, dead workers, job deadlines, unclaimed attempts after a restart,
    /// then planning and dispatch.
    func tick() throws {
        let now = time.now
        if now >= nextHeartbeat {
            for w in workers.values where w.alive { send(.heartbeat, to: w.identity) }
            nextHeartbeat = now + options.heartbeat
        }
        for (name, w) in workers where w.alive && now - w.lastSeen > deadAfter {
            try declareDead(name, reason: "worker \(name) silent for \(formatDuration(now - w.lastSeen))", now: now)
        }
        for (name, var w) in workers where (w.breaker.suspendedUntil ?? .infinity) <= now {
            // The cooldown is over: one more round of attempts tries the backend again.
            w.breaker.suspendedUntil = nil
            workers[name] = w
            if w.alive { try saveWorkerState(name, w, state: "alive") }
            for job in jobs.values where !job.isTerminal { job.touch() }
        }
        for job in jobs.values {
            for id in job.unclaimed {
                if let c = job.live[id]?.claimBy, now >= c { try loseAttempt(id, reason: "no worker claimed it after the coordinator restarted", now: now) }
            }
            if !job.isTerminal && now >= job.record.deadline {
                try end(job, .deadlineExceeded,
                        reason: "deadline passed with \(job.done.count) of \(job.planNodes.count) subtasks done" + backendTrouble(for: job),
                        now: now)
            }
        }
        for job in jobs.values where job.needsPlanning && !job.isTerminal { try plan(job, now: now) }
        dispatchQueued(now: now)
        // Keep the most recently finished jobs at hand for status queries; older ones are read
        // back from the store when asked for.
        for (id, job) in jobs where job.isTerminal && job.live.isEmpty && !recentlyFinished.contains(id) {
            recentlyFinished.append(id)
        }
        while recentlyFinished.count > 64 {
            let id = recentlyFinished.removeFirst()
            if let job = jobs[id], job.isTerminal && job.live.isEmpty { jobs[id] = nil }
        }
    }
}
