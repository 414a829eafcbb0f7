import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// What the core needs to decide: liveness, the cross-job policy, preemption, seeds. Nothing
/// about sockets, files or clocks (``Coordinator/Options`` holds those).
public struct CoreOptions: Sendable {
    public var heartbeat: Duration
    public var liveness: Int
    /// Record per-attempt round trips (benchmarks).
    public var recordRoundTrips = false
    /// Seed for job ids and default planner seeds.
    public var idSeed: UInt64
    /// Embedded mode: end a job `failed` once every worker it could use has been suspended
    /// by its backend breaker this many times in a row (nil: wait, servers can come back).
    public var failAfterSuspensions: Int?
    /// Which job's queued attempt gets a freed slot (`scheduling:` in cluster.yaml, `--policy`).
    public var policy: FleetPolicy
    /// When a job at risk may cancel a lower-ranked job's running attempt (nil: never).
    public var preemption: PreemptionRules?
    /// Which of a model's workers takes an attempt (Placement.swift); `firstFree` is the old
    /// rule, kept for `bench fleet` to compare against.
    public var placement: Placement = .leastLoaded
    /// How much of the attempts' transcripts is kept (`coordinator.transcripts`).
    public var transcripts: TranscriptLimits
    /// Secrets taken out of transcripts (HTTP tokens, the backend keys this process can read),
    /// on top of the well-known key formats.
    public var redactor = SecretRedactor()
    /// Builds a job's planner from its `--planner` value and seed (the benchmarks set MCPP's
    /// simulation count through it).
    public var makePlanner: @Sendable (String, UInt64) throws -> any LivePlanner = makeLivePlanner
    /// Dispatches carry the attempt's trace context (traces are on).
    public var traces = false
    /// Each job's planner sees every slot of its models as its own and free, with no queue in
    /// front of them — how a job plans when a plain FIFO queue (a batch scheduler) runs it alone.
    /// Only `bench fleet`'s `:blind` baseline sets it; the coordinator always plans contention-aware.
    public var plansBlind = false
    /// Attempts per slot sent to a worker beyond its free slots (`coordinator.prefetch`): it
    /// holds them queued and starts each the moment a slot frees. 0: only for free slots.
    /// Ignored (0) while preemption is on (DispatchRound.swift).
    public var prefetch = 0

    public init(cluster: Cluster, idSeed: UInt64) {
        transcripts = cluster.coordinator.transcripts
        traces = cluster.telemetry != nil
        heartbeat = cluster.coordinator.heartbeat
        liveness = cluster.coordinator.liveness
        prefetch = min(max(0, cluster.coordinator.prefetch), Limits.maxPrefetch)
        self.idSeed = idSeed
        let scheduling = cluster.scheduling ?? SchedulingSpec()
        policy = FleetPolicy(kind: FleetPolicyKind(rawValue: scheduling.policy) ?? .fleet,
                             tenantWeights: cluster.tenantWeights, agingSeconds: scheduling.aging.seconds)
        preemption = scheduling.preemption ? PreemptionRules() : nil
    }
}

/// The coordinator's decisions, as a value: jobs, workers, budgets, the plan and the fleet
/// policy's state, and nothing else — no store, socket, thread or clock. Each event goes in
/// with the time it happened (``handle(_:at:into:)``) and what the core decided comes out as
/// ``CoreActions``: writes to persist, messages to send, plans to make, notes for operators,
/// when to wake it. A shell carries the actions out (``CoordinatorShell``): the socket loop in
/// production, the deterministic simulator in tests — the same core and the same shell in both.
///
/// Not copyable: it owns its jobs (``JobRun``) outright, so no second copy can share them.
public struct CoordinatorCore: ~Copyable {
    let cluster: Cluster
    let options: CoreOptions

    var jobs: [String: JobRun] = [:]
    var workers: [String: WorkerEntry] = [:]
    /// Counters about decisions (the shell adds its own).
    public internal(set) var stats = CoordinatorStats()
    var nextHeartbeat = MonotonicInstant.origin
    /// Monotonic time each attempt was dispatched (only with `recordRoundTrips`).
    var dispatchTimes: [AttemptID: MonotonicInstant] = [:]
    /// Ended jobs still held in memory, oldest first.
    var recentlyFinished: [String] = []
    /// Ended jobs not yet in `recentlyFinished` (they join it once their last attempt has left).
    var endedPending: Set<String> = []
    /// Unfinished jobs by deadline (`tick` ends the due ones, `nextWake` reads the soonest).
    var deadlines = DeadlineQueue()
    /// Jobs with attempts a restarted coordinator waits for a worker to claim (`JobRun.unclaimed`).
    var claimWaiting: Set<String> = []
    /// Jobs with a wait reason whose queue may be empty: the only ones `dispatchQueued`'s
    /// wait-reason sweep has to look at (a superset; it drops the others as it goes).
    var reasonSweep: [ObjectIdentifier: JobRun] = [:]
    /// Jobs marked `needsPlanning` since the tick last planned them: all `tick` plans, so it
    /// never walks every job to find them (``markForPlanning(_:)`` keeps it).
    var planCandidates: Set<String> = []
    /// Jobs whose row changed since the last tick (`JobRun.rowDirty`): the tick writes these, not
    /// a walk over every job (at 10,000 queued jobs that walk was most of the loop's time per
    /// iteration, and intake slowed with the queue).
    var dirtyJobRows: [JobRun] = []
    /// `slotsFreed` when the jobs waiting for a slot were last told to plan again (`tick`).
    var waitSweptAt = 0
    /// The jobs that planned nothing because every slot of their models was taken
    /// (`JobRun.waitingForSlot`), by id: the sweep that wakes them when a slot frees walks
    /// these, not every job (it ran at nearly every loop iteration and walked 10,000 queued
    /// jobs in `bench dispatch --queued 10000`).
    var slotWaiters: Set<String> = []
    /// Observations per workflow name (handed in by the intake or the restart, then kept here).
    var books = EstimateBooks()
    /// Workers `agentflow drain` took out of dispatch, by name.
    var drainedNames: Set<String> = []
    /// Monotonic time of the next scan for silent attempts (`tick`).
    var nextSilentScan = MonotonicInstant.origin
    /// Wall-clock time of the next gauge readings (once a second).
    var nextGaugesAt = WallInstant(secondsSince1970: 0)
    /// Job ids and default seeds (seeded by the shell: random, or the simulator's).
    var idGenerator: SplitMix64
    /// The cross-job policy's running state (order, attempt lengths).
    var fleet = FleetBook()
    /// Queued attempts and competing jobs per model, kept incrementally (`FleetTally`).
    let tally = FleetTally()
    /// The jobs with an attempt dispatched to a worker (`HoldingJobs`).
    let holding = HoldingJobs()
    /// Counts the moments a slot may have freed (an attempt ended, a worker came or came back):
    /// a job waiting for a slot plans again once this moves past when it began waiting.
    var slotsFreed = 0
    /// Tenants' period budgets (reservations and spend) and fair-share usage (`TenantBudgets.swift`).
    var tenantBook = TenantBook()
    /// Jobs whose live view changed since the last tick.
    var dirtyViews: Set<String> = []
    /// Who ran the attempts that ended lately (their transcripts may still come).
    var endedOwners = RecentOwners()
    /// When each job's success estimate was last computed for its view (monotonic), and the value.
    var publishedEstimates: [String: (at: MonotonicInstant, value: Double?)] = [:]

    /// The time of the event being handled, as the shell passed it.
    var now = CoreTime(wall: WallInstant(secondsSince1970: 0), mono: .origin)
    /// What the event being handled decided; swapped with the caller's buffer around each event.
    var out = CoreActions()

    public init(cluster: Cluster, options: CoreOptions) {
        self.cluster = cluster
        self.options = options
        idGenerator = SplitMix64(seed: options.idSeed)
    }

    /// Handles one event at `now`, appending what it decided to `actions`.
    public mutating func handle(_ event: CoreEvent, at now: CoreTime, into actions: inout CoreActions) {
        self.now = now
        swap(&out, &actions)
        defer { swap(&out, &actions) }
        switch event {
        case .restart(let rows):
            restart(rows)
        case .worker(let message, let identity, let key, let keys):
            workerMessage(message, from: identity, key: key, keys: keys)
        case .client(let request, let route):
            clientRequest(request, route: route)
        case .submission(let s):
            submission(s)
        case .planned(let decision):
            planned(decision)
        case .tick:
            tick()
        }
    }

    /// Handles one event at `now` and returns what it decided.
    public mutating func handle(_ event: CoreEvent, at now: CoreTime) -> CoreActions {
        var actions = CoreActions()
        handle(event, at: now, into: &actions)
        return actions
    }

    var deadAfter: Duration { options.heartbeat * options.liveness }
    /// How long past its deadline an attempt may stay unreported before it is reclaimed.
    var reclaimGrace: Duration { deadAfter + .seconds(2) }

    // MARK: - Decisions out

    /// Records a state change for the batch's transaction; the job's live view changed with it.
    mutating func persist(_ write: StoreWrite) {
        out.writes.append(write)
        if let job = write.job { dirtyViews.insert(job) }
    }

    /// Queues a message to a worker; it leaves after the batch commits.
    mutating func send(_ message: CoordinatorMessage, to identity: Data) {
        out.messages.append(.toWorker(identity: identity, message))
    }

    /// Queues a reply to a client; it leaves after the batch commits.
    mutating func reply(_ reply: ClientReply, to route: [Data]) {
        out.messages.append(.toClient(route: route, reply))
    }

    mutating func note(_ note: CoreNote) {
        out.notes.append(note)
    }

    /// Something changed that the job's planner (and its view) should see.
    mutating func touch(_ job: JobRun) {
        job.touch()
        planCandidates.insert(job.record.id)
        dirtyViews.insert(job.record.id)
    }

    /// The job needs (another) plan, without a new version: a new or resumed job, or a decision
    /// made on an older version. Every way a job comes to need planning goes through here or
    /// ``touch(_:)``, so `tick` plans exactly ``planCandidates``.
    mutating func markForPlanning(_ job: JobRun) {
        job.needsPlanning = true
        planCandidates.insert(job.record.id)
    }

    /// Every unfinished job re-plans (workers came, went, or changed).
    mutating func touchAll() {
        slotsFreed += 1
        for job in jobs.values where !job.isTerminal { touch(job) }
    }

    /// Sets a job's state, telling the gauges.
    mutating func setState(_ job: JobRun, _ state: JobState) {
        let from = job.record.state
        if state.isTerminal {
            tally.ended(job)
            endedPending.insert(job.record.id)
            // An ended job's queue empties without the tally hearing of it.
            if job.waitReason != nil { reasonSweep[ObjectIdentifier(job)] = job }
        }
        job.record.state = state
        if from != state { note(.jobState(from: from, to: state)) }
    }
}

extension StoreWrite {
    /// The job the write belongs to (nil for a worker row).
    var job: String? {
        switch self {
        case .insertJob(let j), .updateJob(let j): j.id
        case .subtask(let s): s.job
        case .attempt(let a), .attemptEnded(let a): a.id.job
        case .dispatched(let id, _, _, _): id.job
        case .ledger(let e): e.attempt.job
        case .outputs(_, let job, _, _): job
        case .worker, .tenantUsage, .tenantSpend: nil
        // A transcript changes nothing the job's live view shows.
        case .transcript: nil
        }
    }
}

/// What the simulator's invariant checkers read from a running core (no mutation).
public struct JobSnapshot: Sendable {
    public var id: String
    public var state: JobState
    public var reason: String
    public var limitTokens: Int?
    public var limitUSD: NanoUSD?
    public var spent: Amount
    public var reserved: Amount
    /// The ledger's own check: reservations sum to `reserved`, and spent + reserved ≤ limit.
    public var consistent: Bool
}

extension CoordinatorCore {
    /// The jobs held in memory, by id order.
    public var jobSnapshots: [JobSnapshot] {
        jobs.values.sorted { $0.record.id < $1.record.id }.map { j in
            JobSnapshot(id: j.record.id, state: j.record.state, reason: j.record.reason, limitTokens: j.record.limitTokens,
                        limitUSD: j.record.limitUSD, spent: j.ledger.spent, reserved: j.ledger.reserved, consistent: j.ledger.isConsistent)
        }
    }

    /// Workflows whose estimate book it holds (the intake reads each book once).
    public var bookNames: [String] { books.names }

    /// Names of the workers it considers alive.
    public var aliveWorkerNames: [String] { workers.filter { $0.value.alive }.map(\.key).sorted() }
}
