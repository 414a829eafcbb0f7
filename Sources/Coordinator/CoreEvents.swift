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

    /// Commits the iteration and hands back what it decided to send, acknowledgements last.
    public func commit() throws -> [Outgoing] {
        try writeDirtyJobRows()
        try store.commit()
        for (identity, ids) in pendingAcks { outbox.append(.toWorker(identity: identity, .ack(ids: ids))) }
        pendingAcks.removeAll(keepingCapacity: true)
        let out = outbox
        outbox.removeAll(keepingCapacity: true)
        return out
    }

    /// The counters so far.
    public var counters: CoordinatorStats { stats }
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
