import AgentFlowCore
import Foundation
import Observability
import Store
import Synchronization
import Wire
import ZeroMQ

/// Commit-then-send with the commit off the loop's thread. A batch's transaction is applied,
/// committed and fsynced on a writer thread (``StoreWriter``) while the loop reads and handles
/// the next events; the batch's messages leave only once its commit has returned, and batches
/// commit and leave in the order they were decided.
///
/// Pipelined: once the batch in flight has its writes applied — its commit, the fsync, is what
/// is left — the loop decides the next batch from what arrived meanwhile and hands it over, so
/// the writer starts on it the moment the commit returns, instead of idling while the loop
/// releases, reads and decides. At most two batches with writes are in flight. The next batch
/// is decided on top of the one committing, which changes nothing a peer can see: its messages
/// leave only after its own commit, which comes after the one before. A batch without writes
/// decided while others are in flight waits for them and leaves right after them.
///
/// A failed commit fails the loop, as it did when the loop committed on its own thread: the
/// batch's messages are never sent, and neither is anything the core decided after it (it
/// reaches neither the store — the writer refuses every batch after a failed one — nor a peer):
/// the same as a crash before the commit, which every peer recovers from. Every later call
/// throws the same error.
public final class CommitPipeline {
    public let shell: CoordinatorShell
    private let writer: StoreWriter
    /// Batches decided and not yet released, oldest first: at most two with writes (on the
    /// writer), and batches without writes that wait for those before them.
    private var inFlight: [InFlight] = []
    private var failure: (any Error)?

    private struct InFlight {
        var batch: DecidedBatch
        var times: BatchTimes
        /// Its frames, encoded while it commits (``WorkerFrames``); empty: `send` encodes.
        var frames: [Data?]
        /// Its ticket on the writer; nil: it has no writes and leaves right after the batch before.
        var ticket: Int?
    }

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

    /// `beforeEachCommit` runs on the writer thread between each batch's writes and its commit
    /// (tests hold a commit open with it to see the next batch decided meanwhile).
    public init(shell: CoordinatorShell, linger: Duration = .zero, latencyClock: (@Sendable () -> MonotonicInstant)? = nil,
                workerFrames: WorkerFrames? = nil, beforeEachCommit: (@Sendable () -> Void)? = nil) {
        self.shell = shell
        writer = StoreWriter(store: shell.store, clock: latencyClock, beforeCommit: beforeEachCommit)
        self.linger = linger
        clock = latencyClock
        frames = workerFrames
    }

    /// When the loop must call ``advance(at:send:)`` again although nothing arrived: the end of
    /// a linger (nil: no linger running).
    public var decideBy: MonotonicInstant? { inFlight.isEmpty ? lingerUntil : nil }

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

    /// Signalled when a batch's writes are applied and when its commit has returned: the loop
    /// polls its `readFD` beside the sockets.
    public var wake: WakeupPipe { writer.wake }

    /// True while a batch is in flight: the store's connection belongs to the writer thread
    /// until every commit has returned.
    public var isCommitting: Bool { !inFlight.isEmpty }
    /// Batches decided and not yet released (at most two with writes).
    public var batchesInFlight: Int { inFlight.count }
    /// Batches handed to the writer while the one before was still committing.
    public private(set) var pipelinedCommits = 0

    /// Releases the batches in flight whose commits have returned, oldest first (nil: none was
    /// released). The loop calls this as soon as a commit's wake-up is seen, before it reads the
    /// events that arrived meanwhile, so the batch's dispatches leave without waiting for their
    /// handling. Views and notes of a batch that sends only to workers wait for the end of
    /// ``advance(at:send:)``.
    public func release(at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        if let failure { throw failure }
        var released: CommittedBatch?
        var last: DecidedBatch?
        while let first = inFlight.first {
            var times: BatchTimes?
            if first.ticket != nil {
                guard let outcome = writer.take() else { break }
                do { times = first.times; times?.writer = try outcome.get() } catch {
                    failure = error
                    throw error
                }
            }
            inFlight.removeFirst()
            released = Self.merge(released, deliver(first.batch, times: times, encoded: first.frames, send: send))
            last = first.batch
        }
        if linger > .zero, let last {
            awaited = last.actions.messages.reduce(0) { n, m in if case .toWorker(_, .dispatch) = m { n + 1 } else { n } }
            lingerUntil = awaited > 0 ? now.mono + linger : nil
        }
        return released
    }

    /// Once per loop iteration, after the events were handed to the shell: releases the batches
    /// whose commits have returned; then decides the next batch and hands its writes to the
    /// writer — with none in flight (and no linger left, see ``linger``), or, without a linger,
    /// with one in flight whose writes are applied once something arrived since it was decided.
    /// A batch without writes is released at once when nothing is in flight, else right after
    /// the batches before it. Returns what the released batches left for the loop (nil: none
    /// was released).
    ///
    /// A released batch whose messages all go to workers sends them first and publishes its
    /// live views and notes only here, at the end, once the next batch is on the writer
    /// (``CoordinatorShell/deliver(_:deferViews:send:)``): they no longer stand between a
    /// commit and its dispatches, nor between the dispatches and the next commit. The loop
    /// publishes them earlier, before it reads client requests (``CoordinatorShell/publishDeferred()``).
    public func advance(at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        defer { shell.publishDeferred() }
        let released = try release(at: now, send: send)
        guard mayDecide(at: now) else { return released }
        let decideStart = clock?() ?? .origin
        let next = shell.decide(at: now)
        if next.actions.writes.isEmpty {
            if inFlight.isEmpty { return Self.merge(released, deliver(next, send: send)) }
            inFlight.append(InFlight(batch: next, times: BatchTimes(decideStart: decideStart, handed: decideStart), frames: [], ticket: nil))
            return released
        }
        commits += 1
        if !inFlight.isEmpty { pipelinedCommits += 1 }
        let times = BatchTimes(decideStart: decideStart, handed: clock?() ?? .origin)
        let ticket = writer.commit(next.actions.writes)
        inFlight.append(InFlight(batch: next, times: times, frames: frames.map { Self.encode(next.actions, $0.encode) } ?? [], ticket: ticket))
        return released
    }

    /// Whether ``advance(at:send:)`` decides the next batch now (see there).
    private func mayDecide(at now: CoreTime) -> Bool {
        guard let first = inFlight.first else {
            if let until = lingerUntil {
                if shell.resultsGathered < awaited && now.mono < until { return false }
                lingerUntil = nil
            }
            return true
        }
        guard linger == .zero, inFlight.count == 1, let ticket = first.ticket else { return false }
        return shell.hasGathered && writer.isApplied(ticket)
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

    /// Waits for the batches in flight and releases them, then decides, commits and releases
    /// what the core holds, on this thread (at stop).
    public func flush(at now: CoreTime, send: (Outgoing) -> Void) throws -> CommittedBatch? {
        if let failure { throw failure }
        var released: CommittedBatch?
        while let first = inFlight.first {
            if first.ticket != nil {
                do { _ = try writer.wait().get() } catch {
                    failure = error
                    throw error
                }
            }
            inFlight.removeFirst()
            released = Self.merge(released, deliver(first.batch, encoded: first.frames, send: send))
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
