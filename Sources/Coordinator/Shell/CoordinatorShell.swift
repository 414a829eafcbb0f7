import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Where a simulated crash strikes a batch (``CoordinatorShell/finish(at:fault:send:)``).
public enum ShellFault: Sendable {
    case none
    /// kill -9 before the commit: the batch's decisions and messages vanish together.
    case crashBeforeCommit
    /// kill -9 after the commit, before anything is sent: only the messages are lost.
    case crashAfterCommit
}

/// What a committed batch leaves for its driver besides the messages: planning requests to
/// answer, and when to tick the core next.
public struct CommittedBatch: Sendable {
    public var plans: [PlanRequest]
    /// Monotonic time by which the driver must finish another batch (a tick).
    public var wakeAt: MonotonicInstant
}

/// Runs the core: events in, then the one implementation of commit-then-send. The socket loop
/// (``Coordinator``) and the deterministic simulator both drive the core through this and
/// nothing else:
///
///     handle(event) … handle(event) → finish: tick → apply writes → commit → publish → send
///
/// A crash before the commit loses the batch's decisions and its messages together; a crash
/// after it loses only messages, which every peer recovers from (workers re-register with what
/// they run and hold, clients ask again), so nothing acknowledged is ever lost.
public final class CoordinatorShell {
    public private(set) var core: CoordinatorCore
    /// The core's store: written only here, in `finish`, one transaction per batch.
    public let store: Store
    /// The live part of jobs, for read-only queries (``QueryService``).
    public let board: LiveBoard
    /// Logs, event windows and metrics, fed by the core's notes.
    public let telemetry: Telemetry
    private var pending = CoreActions()
    /// When the first event of the batch being gathered was handed in.
    private var gatheringSince: MonotonicInstant?
    /// Sees every committed batch's notes after the telemetry has (the benchmarks read planner
    /// decisions' times from them).
    public var onNotes: (([CoreNote]) -> Void)?

    public init(core: consuming CoordinatorCore, store: Store, board: LiveBoard, telemetry: Telemetry) {
        self.core = core
        self.store = store
        self.board = board
        self.telemetry = telemetry
    }

    /// Restarts the core from what `reader` (a read connection to the same database) finds in
    /// the store, commits what that decided (jobs that cannot resume, and the one the last
    /// coordinator `crashed` on, are quarantined), and sends it.
    public func start(reader: Store, cluster: Cluster, crashed: CrashedJob? = nil, at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch {
        var rows = try reader.restartRows(knownModels: cluster.modelNames)
        rows.crashed = crashed
        rows.tenants = try reader.tenantRows()
        telemetry.countJobs(try reader.jobCountsByState())
        handle(.restart(rows), at: now)
        return try finish(at: now, send: send)!
    }

    /// Hands the core one event.
    public func handle(_ event: CoreEvent, at now: CoreTime) {
        if gatheringSince == nil { gatheringSince = now.mono }
        core.handle(event, at: now, into: &pending)
    }

    /// Ends the batch: the tick, then the batch's writes in one transaction, the commit, and —
    /// only then — the live views, the notes, the messages and the acknowledgements (last).
    /// Returns nil when `fault` crashed it (the driver then throws the core away).
    /// (``decide(at:)``, the commit, ``deliver(_:send:)``: the socket loop runs the same three
    /// steps with the commit on a writer thread, ``CommitPipeline``.)
    @discardableResult
    public func finish(at now: CoreTime, fault: ShellFault = .none, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        let batch = decide(at: now)
        if case .crashBeforeCommit = fault { return nil }
        if !batch.actions.writes.isEmpty { try store.applyAndCommit(batch.actions.writes) }
        if case .crashAfterCommit = fault { return nil }
        return deliver(batch, send: send)
    }

    /// Ends the batch's decisions: the tick, and what the batch decided, taken out of the core.
    /// Its writes must be committed before ``deliver(_:send:)`` releases anything of it.
    public func decide(at now: CoreTime) -> DecidedBatch {
        core.handle(.tick, at: now, into: &pending)
        var actions = CoreActions()
        swap(&actions, &pending)
        defer { gatheringSince = nil }
        return DecidedBatch(actions: actions, decidedAt: now.mono, gatheredSince: gatheringSince ?? now.mono)
    }

    /// Releases a batch whose writes are committed: the live views, the notes, the messages,
    /// then the acknowledgements.
    public func deliver(_ batch: DecidedBatch, send: (Outgoing) -> Void) -> CommittedBatch {
        let actions = batch.actions
        board.publish(actions.views, forgetting: actions.forgotten)
        telemetry.apply(actions.notes)
        onNotes?(actions.notes)
        for m in actions.messages { send(m) }
        for (identity, ids) in actions.acks { send(.toWorker(identity: identity, .ack(ids: ids))) }
        return CommittedBatch(plans: actions.plans, wakeAt: actions.wakeAt ?? batch.decidedAt)
    }
}

/// What one batch decided (``CoordinatorShell/decide(at:)``), held until its writes commit.
public struct DecidedBatch: Sendable {
    public var actions: CoreActions
    /// The batch's monotonic time (its tick's).
    public var decidedAt: MonotonicInstant
    /// When its first event was handed in (its tick's time if it had none).
    public var gatheredSince: MonotonicInstant
}
