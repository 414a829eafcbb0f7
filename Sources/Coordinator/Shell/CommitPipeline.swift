import AgentFlowCore
import Foundation
import Observability
import Store
import Wire
import ZeroMQ

/// Commit-then-send with the commit off the loop's thread. A batch's transaction is applied,
/// committed and fsynced on a writer thread while the loop reads and handles the next events;
/// the batch's messages leave only once its commit has returned, and batches commit and leave
/// in the order they were decided. One batch commits at a time: the next is decided (ticked
/// and taken out of the core) once the one before has committed, so every event that arrived
/// meanwhile goes into one transaction. (Deciding the next batch while the one before commits,
/// two in flight, was built and measured on 7 Dec and lost: smaller batches, more commits, no
/// more attempts per second on SQLite and fewer on PostgreSQL — docs/benchmarks.md.)
///
/// A failed commit fails the loop, as it did when the loop committed on its own thread: the
/// batch's messages are never sent, and neither is anything the core decided after it (it
/// reaches neither the store nor a peer) — the same as a crash before the commit, which every
/// peer recovers from. Every later call throws the same error.
public final class CommitPipeline {
    public let shell: CoordinatorShell
    private let writer: StoreWriter
    private var committing: DecidedBatch?
    private var failure: (any Error)?

    /// With a clock: each dispatch's time from its batch's first event to its hand-off
    /// (``CoordinatorStats/dispatchLatency``). Every stage is read on this one clock (the
    /// process's monotonic clock in production, the simulated one under the simulator).
    private let clock: (@Sendable () -> MonotonicInstant)?
    public private(set) var dispatchLatency = LatencyHistogram()
    /// With a clock, per batch that dispatched: where its dispatch latency went
    /// (``CoordinatorStats/CommitStages``).
    public private(set) var stages = CoordinatorStats.CommitStages()
    /// Batches handed to the writer (each one transaction, one fsync).
    public private(set) var commits = 0

    /// Group commit: once a batch that dispatched attempts has left, the next batch is decided
    /// when as many results have come back, or after this long, whichever is first — so one
    /// commit carries the results of quick attempts and the dispatches to their freed slots,
    /// instead of the results landing in the commit that has just begun and their slots in the
    /// one after. Zero: decide as soon as the writer is free.
    public let linger: Duration
    /// While lingering: until when, and how many results the batch that left awaits.
    private var lingerUntil: MonotonicInstant?
    private var awaited = 0

    /// When the batch in flight began to be decided, was handed to the writer, and (once it
    /// returned) ran there, on ``clock`` (the origin when there is none).
    private struct BatchTimes {
        var decideStart: MonotonicInstant
        var handed: MonotonicInstant
        var writer = StoreWriter.Run(start: .origin, applied: .origin, end: .origin)
    }
    private var committingTimes = BatchTimes(decideStart: .origin, handed: .origin)

    /// How the socket loop turns a worker-bound message into its frame, and hands a frame to
    /// ZeroMQ (routing id, frame). With these, a batch's worker messages and acknowledgements
    /// are encoded while its commit runs, and at its release only handed to ZeroMQ; without,
    /// `send` encodes each when it is sent.
    public struct WorkerFrames {
        public var encode: (CoordinatorMessage) -> Data
        public var send: (Data, Data) -> Void

        public init(encode: @escaping (CoordinatorMessage) -> Data, send: @escaping (Data, Data) -> Void) {
            self.encode = encode
            self.send = send
        }
    }
    private let frames: WorkerFrames?
    /// The batch in flight's frames, in the order ``CoordinatorShell/deliver(_:deferViews:send:)``
    /// sends its messages and then its acknowledgements (nil: not a worker message).
    private var committingFrames: [Data?] = []

    public init(shell: CoordinatorShell, linger: Duration = .zero, latencyClock: (@Sendable () -> MonotonicInstant)? = nil,
                workerFrames: WorkerFrames? = nil) {
        self.shell = shell
        writer = StoreWriter(store: shell.store, clock: latencyClock)
        self.linger = linger
        clock = latencyClock
        frames = workerFrames
    }

    /// When the loop must call ``advance(at:send:)`` again although nothing arrived: the end of
    /// a linger (nil: no linger running).
    public var decideBy: MonotonicInstant? { committing == nil ? lingerUntil : nil }

    /// Releases a committed batch, timing its dispatches when asked to (`times`: when it was
    /// decided and committed, for ``stages``).
    private func deliver(_ batch: DecidedBatch, times: BatchTimes? = nil, encoded: [Data?] = [], send: (Outgoing) -> Void) -> CommittedBatch {
        var next = 0
        let released = shell.deliver(batch, deferViews: true) { m in
            defer { next += 1 }
            if let frames, next < encoded.count, let frame = encoded[next], case .toWorker(let identity, _) = m {
                frames.send(identity, frame)
            } else {
                send(m)
            }
        }
        if let clock {
            let now = clock()
            let seconds = (now - batch.gatheredSince).seconds
            var dispatches = 0
            for case .toWorker(_, .dispatch) in batch.actions.messages {
                dispatchLatency.record(seconds)
                dispatches += 1
            }
            if dispatches > 0, let times {
                let sent = now
                func s(_ from: MonotonicInstant, _ to: MonotonicInstant) -> Double { (to - from).seconds }
                stages.gathering.record((batch.decidedAt - batch.gatheredSince).seconds)
                stages.decide.record(s(times.decideStart, times.handed))
                stages.writerWake.record(s(times.handed, times.writer.start))
                stages.apply.record(s(times.writer.start, times.writer.applied))
                stages.commit.record(s(times.writer.applied, times.writer.end))
                stages.loopWake.record(s(times.writer.end, sent))
            }
        }
        return released
    }

    /// Signalled when a commit has returned: the loop polls its `readFD` beside the sockets.
    public var wake: WakeupPipe { writer.wake }

    /// True while a batch's commit is in flight: the store's connection belongs to the writer
    /// thread until it returns.
    public var isCommitting: Bool { committing != nil }

    /// Releases the batch in flight if its commit has returned (nil: none was released). The
    /// loop calls this as soon as the commit's wake-up is seen, before it reads the events that
    /// arrived meanwhile, so the batch's dispatches leave without waiting for their handling.
    /// Views and notes of a batch that sends only to workers wait for the end of ``advance(at:send:)``.
    public func release(at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        if let failure { throw failure }
        guard let batch = committing, let outcome = writer.take() else { return nil }
        committing = nil
        let ran: StoreWriter.Run
        do { ran = try outcome.get() } catch {
            failure = error
            throw error
        }
        committingTimes.writer = ran
        let encoded = committingFrames
        committingFrames = []
        let released = deliver(batch, times: committingTimes, encoded: encoded, send: send)
        if linger > .zero {
            awaited = batch.actions.messages.reduce(0) { n, m in if case .toWorker(_, .dispatch) = m { n + 1 } else { n } }
            lingerUntil = awaited > 0 ? now.mono + linger : nil
        }
        return released
    }

    /// Once per loop iteration, after the events were handed to the shell: releases the batch
    /// in flight if its commit has returned; then, with none in flight (and no linger left, see
    /// ``linger``), decides the next batch and hands its writes to the writer (a batch without
    /// writes is released at once). Returns what the released batches left for the loop (nil:
    /// none was released).
    ///
    /// A released batch whose messages all go to workers sends them first and publishes its
    /// live views and notes only here, at the end, once the next batch is on the writer
    /// (``CoordinatorShell/deliver(_:deferViews:send:)``): they no longer stand between a
    /// commit and its dispatches, nor between the dispatches and the next commit. The loop
    /// publishes them earlier, before it reads client requests (``CoordinatorShell/publishDeferred()``).
    public func advance(at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        defer { shell.publishDeferred() }
        let released = try release(at: now, send: send)
        if committing != nil { return released }
        if let until = lingerUntil {
            if shell.resultsGathered < awaited && now.mono < until { return released }
            lingerUntil = nil
        }
        let decideStart = clock?() ?? .origin
        let next = shell.decide(at: now)
        if next.actions.writes.isEmpty {
            return Self.merge(released, deliver(next, send: send))
        }
        committing = next
        commits += 1
        committingTimes = BatchTimes(decideStart: decideStart, handed: clock?() ?? .origin)
        writer.commit(next.actions.writes)
        if let frames { committingFrames = Self.encode(next.actions, frames.encode) }
        return released
    }

    /// The frames of a batch's worker messages, then of its acknowledgements, in the order
    /// ``CoordinatorShell/deliver(_:deferViews:send:)`` sends them (nil for any other message).
    private static func encode(_ actions: CoreActions, _ encode: (CoordinatorMessage) -> Data) -> [Data?] {
        var out: [Data?] = []
        out.reserveCapacity(actions.messages.count + actions.acks.count)
        for m in actions.messages {
            if case .toWorker(_, let message) = m { out.append(encode(message)) } else { out.append(nil) }
        }
        for (_, ids) in actions.acks { out.append(encode(.ack(ids: ids))) }
        return out
    }

    /// Waits for the batch in flight and releases it, then decides, commits and releases what
    /// the core holds, on this thread (at stop).
    public func flush(at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        if let failure { throw failure }
        var released: CommittedBatch?
        if let batch = committing {
            let outcome = writer.wait()
            committing = nil
            do { _ = try outcome.get() } catch {
                failure = error
                throw error
            }
            let encoded = committingFrames
            committingFrames = []
            released = deliver(batch, encoded: encoded, send: send)
        }
        let finished = try shell.finish(at: now, mayHold: false, send: send)
        shell.publishDeferred()
        return Self.merge(released, finished)
    }

    private static func merge(_ a: CommittedBatch?, _ b: CommittedBatch?) -> CommittedBatch? {
        guard let a else { return b }
        guard let b else { return a }
        return CommittedBatch(plans: a.plans + b.plans, wakeAt: b.wakeAt)
    }
}
