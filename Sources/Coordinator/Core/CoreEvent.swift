import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// When an event happens, as the shell read its clocks: the wall clock (what is stored and
/// shown, job deadlines, which outlive the process) and the monotonic clock (liveness,
/// heartbeats, cooldowns, claims, attempt time-to-live, when to wake), which a step of the wall
/// clock does not move. The core has no clock of its own.
public struct CoreTime: Sendable, Equatable {
    public var wall: WallInstant
    public var mono: MonotonicInstant

    public init(wall: WallInstant, mono: MonotonicInstant) {
        self.wall = wall
        self.mono = mono
    }

    /// Both clocks of `time`, read now.
    public init(_ time: any TimeSource) {
        self.init(wall: time.wallInstant, mono: time.instant)
    }
}

/// Everything that can happen to the coordinator core. The shell turns what arrives (socket
/// frames, parsed submissions, planner decisions, its clock) into these, hands them to
/// ``CoordinatorCore/handle(_:at:into:)`` in order, and ends every batch with ``tick``.
public enum CoreEvent: Sendable {
    /// The coordinator (re)started: every unfinished job as the store holds it.
    case restart(RestartRows)
    /// A message from a worker connection (its routing id), with the CURVE key the connection
    /// authenticated with and the key book in force for registrations (nil: names are not bound
    /// to keys).
    case worker(WorkerMessage, from: Data, key: String? = nil, keys: WorkerKeyBook? = nil)
    /// A client request the core answers itself (`workers`, `queue`, `drain`, `cancel`); read-only
    /// queries (``Wire/ClientRequest/isReadOnlyQuery``) go to the shell's query service instead.
    case client(ClientRequest, route: [Data])
    /// A submission whose workflow was parsed off the loop.
    case submission(ParsedSubmission)
    /// A planner's answer to a ``PlanRequest``.
    case planned(PlanDecision)
    /// Timers, planning and dispatch, then the batch's closing writes. The shell ends every
    /// batch of events with it (``CoordinatorShell/finish(at:fault:send:)`` does).
    case tick
}

/// What the shell read from the store for a restart (``CoreEvent/restart(_:)``).
public struct RestartRows: Sendable {
    /// Jobs that were queued or running, and ended jobs with attempts still in flight, oldest first.
    public var jobs: [StoredJob]
    /// The estimate book of each of their workflows, from every finished attempt in the store.
    public var books: [String: EstimateBook]
    /// The job the last coordinator on this database died handling (``CrashGuard``): it is
    /// quarantined instead of resumed.
    public var crashed: CrashedJob?
    /// Each tenant's spend in its current budget period and its fair-share usage (`TenantBudgets.swift`).
    public var tenants = TenantRows()

    public init(jobs: [StoredJob], books: [String: EstimateBook], crashed: CrashedJob? = nil) {
        self.jobs = jobs
        self.books = books
        self.crashed = crashed
    }
}

/// A job a coordinator died handling, and the signal it died of.
public struct CrashedJob: Sendable, Equatable {
    public var job: String
    public var signal: Int32

    public init(job: String, signal: Int32) {
        self.job = job
        self.signal = signal
    }
}

/// One unfinished job as stored, its workflow parsed (or why it cannot be).
public struct StoredJob: Sendable {
    public var record: JobRecord
    public var workflow: Result<Workflow, any Error>
    public var subtasks: [SubtaskRecord]
    public var attempts: [AttemptRecord]
    /// The packed outputs its succeeded subtasks kept (handed to their dependants).
    public var outputs: [String: Blob]

    public init(record: JobRecord, workflow: Result<Workflow, any Error>, subtasks: [SubtaskRecord], attempts: [AttemptRecord],
                outputs: [String: Blob] = [:]) {
        self.record = record
        self.workflow = workflow
        self.subtasks = subtasks
        self.attempts = attempts
        self.outputs = outputs
    }
}

/// A submission as the intake prepared it off the loop: the request, its workflow parsed once,
/// and — the first time the workflow's name is seen — its estimate book from the store.
public struct ParsedSubmission: Sendable {
    public var request: SubmitRequest
    public var workflow: Result<Workflow, ConfigError>
    /// Wall-clock time the request arrived (the job's deadline counts from it).
    public var received: WallInstant
    /// Where the answer goes.
    public var route: [Data]
    /// Finished attempts of the workflow's earlier jobs; nil when the intake already handed the
    /// core this workflow's book (the core keeps it up to date from then on).
    public var book: EstimateBook?

    public init(request: SubmitRequest, workflow: Result<Workflow, ConfigError>, received: WallInstant, route: [Data], book: EstimateBook?) {
        self.request = request
        self.workflow = workflow
        self.received = received
        self.route = route
        self.book = book
    }
}

extension ClientRequest {
    /// Requests answered from the store by the shell's query service (its own read connection),
    /// never by the core: status, job lists, attempts, the ledger, event windows.
    public var isReadOnlyQuery: Bool {
        switch self {
        case .status, .jobs, .attempts, .ledger, .events, .queryJobs, .outputs, .outputBundle, .transcript: true
        case .submit, .workers, .cancel, .drain, .queue, .tenants: false
        case .scoped(_, let r): r.isReadOnlyQuery
        }
    }
}
