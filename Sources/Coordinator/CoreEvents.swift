import AgentFlowCore
import Foundation
import Store
import Wire

/// A message the coordinator decided to send. It is held in the outbox until the loop
/// iteration that decided it has committed.
public enum Outgoing: Sendable {
    case toWorker(identity: Data, CoordinatorMessage)
    case toClient(route: [Data], ClientReply)
}

/// The coordinator's events-in, messages-out surface. The socket loop (`run`) and the
/// deterministic simulator both drive the coordinator through these and nothing else:
///
///     begin → events (worker messages, client requests, submissions, timers) → commit → send
///
/// `commit()` returns the messages of the iteration only once the store has committed it.
/// A crash before that loses the iteration's decisions and its messages together; a crash
/// after it loses only messages, which every peer recovers from (workers re-register with what
/// they run and hold, clients ask again), so nothing acknowledged is ever lost.
extension Coordinator {
    /// Opens a coordinator on `store` (the simulator's; `run` opens the configured file) and
    /// rebuilds every unfinished job from it.
    public func start(store: Store) throws {
        self.store = store
        try start()
    }

    func start() throws {
        try store.begin()
        try resume()
        flush(try commit())
    }

    /// Starts a loop iteration's transaction.
    public func begin() throws { try store.begin() }

    /// A message from a worker's connection, identified by its routing id.
    public func workerMessage(_ message: WorkerMessage, from identity: Data) throws {
        try handle(message, from: identity)
    }

    /// A client request other than a submission; the reply goes to `route`.
    public func clientRequest(_ request: ClientRequest, route: [Data]) throws {
        reply(try handle(request), to: route)
    }

    /// A submission whose workflow has been parsed (off the loop, in the socket shell).
    public func submission(_ request: SubmitRequest, parsed: Result<Workflow, ConfigError>, received: Double, route: [Data]) throws {
        reply(try submit(request, parsed: parsed, received: received), to: route)
    }

    /// Timers: heartbeats, liveness, deadlines, reclaims, planning and dispatch.
    public func timers() throws {
        try tick()
    }

    /// What one loop iteration decided, as data: the state changes to persist (in order) and the
    /// messages to send once they are durable, acknowledgements last. Taking it empties both.
    public func takeIteration() -> Iteration {
        writeDirtyJobRows()
        for (identity, ids) in pendingAcks { outbox.append(.toWorker(identity: identity, .ack(ids: ids))) }
        pendingAcks.removeAll(keepingCapacity: true)
        defer {
            writes.removeAll(keepingCapacity: true)
            outbox.removeAll(keepingCapacity: true)
            planRequests.removeAll(keepingCapacity: true)
        }
        return Iteration(writes: writes, messages: outbox, plans: planRequests, wakeIn: nextWake())
    }

    /// The shell's end of an iteration: applies its writes in the open transaction, commits,
    /// hands its planning requests to the planning thread, and returns the messages, which may
    /// leave now that what they announce is durable.
    public func commit() throws -> [Outgoing] {
        let iteration = takeIteration()
        try store.apply(iteration.writes)
        try store.commit()
        for r in iteration.plans { planningThread.submit(r) }
        return iteration.messages
    }

    /// Records a state change for this iteration's transaction.
    func persist(_ write: StoreWrite) {
        writes.append(write)
    }

    /// The store, for reading what is already decided: this iteration's writes so far are
    /// applied first (inside the still-open transaction), so a read sees them.
    func readStore() throws -> Store {
        writeDirtyJobRows()
        if !writes.isEmpty {
            try store.apply(writes)
            writes.removeAll(keepingCapacity: true)
        }
        return store
    }

    /// The counters so far.
    public var counters: CoordinatorStats { stats }
}

/// One loop iteration's decisions: what to persist, then what to send.
public struct Iteration: Sendable {
    /// State changes, in order, for the iteration's transaction.
    public var writes: [StoreWrite]
    /// Messages to send once the writes are committed (acknowledgements last).
    public var messages: [Outgoing]
    /// Planning requests for the planning thread (MCPP; `seq:K` decides inline).
    public var plans: [PlanRequest]
    /// Seconds until the next timer is due: the shell calls `timers()` by then at the latest.
    public var wakeIn: Double
}

/// What the simulator's invariant checks read from a running coordinator (no mutation).
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

extension Coordinator {
    /// The jobs held in memory, by id order.
    public var jobSnapshots: [JobSnapshot] {
        jobs.values.sorted { $0.record.id < $1.record.id }.map { j in
            JobSnapshot(id: j.record.id, state: j.record.state, reason: j.record.reason, limitTokens: j.record.limitTokens,
                        limitUSD: j.record.limitUSD, spent: j.ledger.spent, reserved: j.ledger.reserved, consistent: j.ledger.isConsistent)
        }
    }

    /// Seconds until the coordinator's next timer is due.
    public var wakeIn: Double { nextWake() }

    /// Names of the workers it considers alive.
    public var aliveWorkerNames: [String] { workers.filter { $0.value.alive }.map(\.key).sorted() }
}
