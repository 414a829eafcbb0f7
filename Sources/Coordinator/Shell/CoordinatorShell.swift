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
    /// How long a batch that only applied planner decisions, and sends nothing, may wait for
    /// the next batch's commit instead of committing (an fsync) on its own; nil: never. Nothing
    /// it decided has left the process, so a crash meanwhile loses only decisions the restart
    /// makes again; the next batch commits both in one transaction before it sends anything.
    /// Under steady intake this halves the commits per job (the submission's, which its
    /// acknowledgement waits for, and its plan's).
    public var planOnlyHold: Duration?
    /// Whether every event since the last decision was a planner decision.
    private var onlyPlanned = true
    /// A held batch's writes, views, forgotten jobs and notes, and since when it is held.
    private var held: CoreActions?
    private var heldSince: MonotonicInstant?
    /// True while a batch waits for the next one's commit (``planOnlyHold``).
    public var isHolding: Bool { held != nil }
    /// Worker results handed in since the last ``decide(at:)``.
    public private(set) var resultsGathered = 0
    /// Sees every committed batch's notes after the telemetry has (the benchmarks read planner
    /// decisions' times from them).
    public var onNotes: (([CoreNote]) -> Void)?
    /// Views and notes of delivered batches not yet published (``deliver(_:deferViews:send:)``).
    private var deferred: [DeferredViews] = []

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
        if case .planned = event {} else { onlyPlanned = false }
        if case .worker(.result, _, _, _) = event { resultsGathered += 1 }
        core.handle(event, at: now, into: &pending)
    }

    /// Ends the batch: the tick, then the batch's writes in one transaction, the commit, and —
    /// only then — the live views, the notes, the messages and the acknowledgements (last).
    /// Returns nil when `fault` crashed it (the driver then throws the core away).
    /// (``decide(at:)``, the commit, ``deliver(_:send:)``: the socket loop runs the same three
    /// steps with the commit on a writer thread, ``CommitPipeline``.)
    /// `mayHold`: false commits a held batch whatever it is (at stop).
    @discardableResult
    public func finish(at now: CoreTime, fault: ShellFault = .none, mayHold: Bool = true, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        let batch = decide(at: now, mayHold: mayHold)
        if case .crashBeforeCommit = fault { return nil }
        if !batch.actions.writes.isEmpty { try store.applyAndCommit(batch.actions.writes) }
        if case .crashAfterCommit = fault { return nil }
        return deliver(batch, send: send)
    }

    /// Ends the batch's decisions: the tick, and what the batch decided, taken out of the core.
    /// Its writes must be committed before ``deliver(_:send:)`` releases anything of it.
    /// A batch of planner decisions that sends nothing is kept back (``planOnlyHold``): what
    /// returns then carries only its planning requests and when to come back, and the next
    /// batch carries its writes, views and notes, before its own.
    public func decide(at now: CoreTime, mayHold: Bool = true) -> DecidedBatch {
        core.handle(.tick, at: now, into: &pending)
        var actions = CoreActions()
        swap(&actions, &pending)
        defer {
            gatheringSince = nil
            resultsGathered = 0
        }
        let planOnly = onlyPlanned
        onlyPlanned = true
        if var earlier = held {
            earlier.append(actions)
            actions = earlier
            held = nil
        }
        if mayHold, planOnly, let hold = planOnlyHold, actions.messages.isEmpty, actions.acks.isEmpty, !actions.writes.isEmpty {
            let since = heldSince ?? now.mono
            if now.mono - since < hold {
                heldSince = since
                var left = CoreActions()
                left.plans = actions.plans
                left.wakeAt = min(actions.wakeAt ?? now.mono, since + hold)
                actions.plans = []
                held = actions
                return DecidedBatch(actions: left, decidedAt: now.mono, gatheredSince: gatheringSince ?? now.mono)
            }
        }
        heldSince = nil
        return DecidedBatch(actions: actions, decidedAt: now.mono, gatheredSince: gatheringSince ?? now.mono)
    }

    /// Releases a batch whose writes are committed: the live views, the notes, the messages,
    /// then the acknowledgements.
    ///
    /// `deferViews`: a batch whose messages all go to workers (no client reply or query among
    /// them) sends them and its acknowledgements first and keeps its live views and notes for
    /// ``publishDeferred()``, which the socket loop calls once it has handed the next batch to
    /// the writer — so the views and telemetry run while that batch commits, not between a
    /// commit and its dispatches. Nothing a client can see moves relative to what it is sent:
    /// a batch that answers a client publishes everything held first, then its own views and
    /// notes, before any message (as without deferral), and the loop publishes what it holds
    /// before it reads client requests. A worker reads neither views nor notes.
    public func deliver(_ batch: DecidedBatch, deferViews: Bool = false, send: (Outgoing) -> Void) -> CommittedBatch {
        let actions = batch.actions
        let onlyWorkers = actions.messages.allSatisfy { if case .toWorker = $0 { true } else { false } }
        if deferViews && onlyWorkers {
            deferred.append(DeferredViews(views: actions.views, forgotten: actions.forgotten, notes: actions.notes))
        } else {
            publishDeferred()
            publish(DeferredViews(views: actions.views, forgotten: actions.forgotten, notes: actions.notes))
        }
        for m in actions.messages { send(m) }
        for (identity, ids) in actions.acks { send(.toWorker(identity: identity, .ack(ids: ids))) }
        return CommittedBatch(plans: actions.plans, wakeAt: actions.wakeAt ?? batch.decidedAt)
    }

    /// Publishes the live views and applies the notes that ``deliver(_:deferViews:send:)`` held
    /// back, in the order their batches were delivered.
    public func publishDeferred() {
        guard !deferred.isEmpty else { return }
        let held = deferred
        deferred = []
        for batch in held { publish(batch) }
    }

    /// Whether views or notes of a delivered batch wait for ``publishDeferred()``.
    public var hasDeferred: Bool { !deferred.isEmpty }

    private func publish(_ batch: DeferredViews) {
        board.publish(batch.views, forgetting: batch.forgotten)
        telemetry.apply(batch.notes)
        onNotes?(batch.notes)
    }
}

/// A delivered batch's live views and notes, held for ``CoordinatorShell/publishDeferred()``.
struct DeferredViews {
    var views: [LiveJobView]
    var forgotten: [String]
    var notes: [CoreNote]
}

/// What one batch decided (``CoordinatorShell/decide(at:)``), held until its writes commit.
public struct DecidedBatch: Sendable {
    public var actions: CoreActions
    /// The batch's monotonic time (its tick's).
    public var decidedAt: MonotonicInstant
    /// When its first event was handed in (its tick's time if it had none).
    public var gatheredSince: MonotonicInstant
}
