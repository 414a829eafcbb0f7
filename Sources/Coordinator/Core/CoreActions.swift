import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// What the core decided while handling events, as data, for the shell to carry out in this
/// order: apply `writes` in one transaction and commit; then publish `views` and `notes`, send
/// `messages` and the acknowledgements, and hand `plans` to the planner. Nothing leaves before
/// the commit, so a crash loses an iteration's decisions and its messages together.
public struct CoreActions: Sendable {
    /// State changes, in order, for the batch's transaction.
    public var writes: [StoreWrite] = []
    /// Messages to send once the writes are committed.
    public var messages: [Outgoing] = []
    /// Results recorded, per worker connection: one acknowledgement each, sent after the
    /// commit (a worker forgets a result only once it is durable) and after `messages`.
    public var acks: [Data: [AttemptID]] = [:]
    /// Planning requests for the planner (MCPP; `seq:K` decides inline).
    public var plans: [PlanRequest] = []
    /// What happened, for logs, the job event windows and metrics (``CoreNote``).
    public var notes: [CoreNote] = []
    /// The live part of jobs that changed (what the store does not hold: reservations, why a job
    /// waits, its success estimate, running attempts' progress), for read-only queries.
    public var views: [LiveJobView] = []
    /// Jobs no longer held in memory: queries read them from the store alone.
    public var forgotten: [String] = []
    /// Monotonic time by which the shell must hand the core a ``CoreEvent/tick`` at the latest
    /// (set by the tick).
    public var wakeAt: MonotonicInstant?

    public init() {}

    /// `later`'s actions after these (a held batch and the one that commits it).
    public mutating func append(_ later: CoreActions) {
        writes += later.writes
        messages += later.messages
        for (identity, ids) in later.acks { acks[identity, default: []] += ids }
        plans += later.plans
        notes += later.notes
        views += later.views
        forgotten += later.forgotten
        wakeAt = later.wakeAt ?? wakeAt
    }

    /// Nothing to do.
    public var isEmpty: Bool {
        writes.isEmpty && messages.isEmpty && acks.isEmpty && plans.isEmpty && notes.isEmpty && views.isEmpty && forgotten.isEmpty
    }
}

/// A message the core decided to send. Held until the batch that decided it has committed.
public enum Outgoing: Sendable {
    case toWorker(identity: Data, CoordinatorMessage)
    case toClient(route: [Data], ClientReply)
    /// Answer the client from the store once this batch is committed (a cancelled or ended job's
    /// report): the shell's query service serves `request` to `route`.
    case answerFromStore(route: [Data], ClientRequest)
}

/// A planning request the core decided: the job's state as the planner should see it, and the
/// version it was taken at (a decision for an older version is applied only where still valid).
public struct PlanRequest: Sendable {
    public var job: String
    public var version: Int
    public var planner: any LivePlanner
    public var state: PlanState
    public var wantCompletion: Bool

    /// Answers the request on the caller's thread (the planning thread, or the simulator).
    public func decide() -> PlanDecision {
        let start = DispatchTime.now().uptimeNanoseconds
        let completion = wantCompletion ? planner.completionProbability(state) : nil
        let launches = planner.decide(state)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return PlanDecision(job: job, version: version, launches: launches, completion: completion, milliseconds: ms)
    }
}

/// A planner's answer to a ``PlanRequest``.
public struct PlanDecision: Sendable {
    public var job: String
    public var version: Int
    public var launches: [Launch]
    public var completion: Double?
    public var milliseconds: Double
}

/// The part of a job's state that only the core's memory holds, published after each commit
/// for the read-only queries (which read everything else from the store).
public struct LiveJobView: Sendable, Equatable {
    public var id: String
    public var state: JobState
    /// The job's reason, or while it is not over why its attempts wait.
    public var reason: String
    /// Spend and reservations at one moment (spent + reserved ≤ limit).
    public var budget: BudgetReport
    /// Why it cannot go on now (every worker it could use is down), or why it waits.
    public var waiting: String
    public var successEstimate: Double?
    /// Tokens running attempts have reported so far.
    public var progress: [AttemptID: Int]
    /// It is not over, or an attempt of it is still in flight (its event stream is live).
    public var live: Bool
}
