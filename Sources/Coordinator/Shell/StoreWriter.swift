import AgentFlowCore
import Dispatch
import Store
import Synchronization
import ZeroMQ

/// The thread that commits the pipeline's batches, in the order they were handed over, one
/// transaction each ("store writer" in `top -H` and `/proc`). Only this thread touches the
/// store's connection while any batch is in flight. Its own thread, not a dispatch queue's: the
/// queue ran each batch on whichever pool thread was free, so no tool could tell the writer's
/// CPU from the rest of the process.
///
/// Up to two batches may be handed over at once: the pipeline decides the next batch while the
/// one before commits (``CommitPipeline``), so the writer starts on it the moment that commit
/// returns. A batch that fails is the last one run: every batch handed over after it is
/// refused with the same error, never applied — they were decided on top of writes that are
/// not in the store.
///
/// The thread holds the store only while it runs a batch, and lets go of it before it posts the
/// outcome: once the loop has the last outcome, the pipeline is the store's last holder, so a
/// coordinator that stops releases its database (and the file's lock) on its own thread, at
/// once — a coordinator restarted on the same file never finds it still held.
final class StoreWriter: @unchecked Sendable {
    /// When a batch's apply and commit began and ended on this thread (the pipeline's clock;
    /// the origin without one).
    struct Run {
        var start: MonotonicInstant
        var applied: MonotonicInstant
        var end: MonotonicInstant
    }

    /// What the loop and the writer thread share; the thread holds only this.
    private final class Channel: Sendable {
        struct Batch {
            var writes: [StoreWrite]
            var store: Store
            var clock: (@Sendable () -> MonotonicInstant)?
            var beforeCommit: (@Sendable () -> Void)?
        }
        /// Batches handed over and not yet taken by the thread, oldest first.
        let inbox = Mutex<[Batch]>([])
        /// Set when the writer goes: the thread ends.
        let stopping = Atomic<Bool>(false)
        /// Signalled once per batch handed over, and when the writer goes.
        let work = DispatchSemaphore(value: 0)
        /// The outcomes not yet taken, oldest first: when each batch ran, or its error.
        let outcomes = Mutex<[Result<Run, any Error>]>([])
        /// Signalled once per outcome posted.
        let done = DispatchSemaphore(value: 0)
        /// How many batches have had their writes applied (their commit began or is over).
        let applied = Atomic<Int>(0)
        /// Signalled when a batch's writes are applied and when its commit returns.
        let wake = WakeupPipe()

        /// The thread's loop: one batch at a time until the writer goes.
        func serve() {
            var failure: (any Error)?
            while true {
                work.wait()
                if stopping.load(ordering: .acquiring) { return }
                guard let result = runHandedBatch(after: failure) else { continue }
                if case .failure(let error) = result, failure == nil { failure = error }
                outcomes.withLock { $0.append(result) }
                done.signal()
                wake.signal()
            }
        }

        /// Takes the oldest batch out of the inbox, applies and commits it — or, after a failed
        /// batch, refuses it with that batch's error; nil: the inbox was empty. The batch, its
        /// store with it, is let go of when this returns — before the outcome is posted (a local
        /// of `serve`'s loop would live to the end of the iteration).
        private func runHandedBatch(after failure: (any Error)?) -> Result<Run, any Error>? {
            guard let batch = inbox.withLock({ i -> Batch? in i.isEmpty ? nil : i.removeFirst() }) else { return nil }
            if let failure { return .failure(failure) }
            let clock = batch.clock
            let start = clock?() ?? .origin
            return Result {
                var applied = MonotonicInstant.origin
                try batch.store.applyAndCommit(batch.writes) {
                    applied = clock?() ?? .origin
                    self.applied.add(1, ordering: .releasing)
                    wake.signal()
                    batch.beforeCommit?()
                }
                return Run(start: start, applied: applied, end: clock?() ?? .origin)
            }
        }
    }

    private let store: Store
    private let clock: (@Sendable () -> MonotonicInstant)?
    private let beforeCommit: (@Sendable () -> Void)?
    private let channel = Channel()
    /// Batches handed over so far: the next one's ticket.
    private var handed = 0
    var wake: WakeupPipe { channel.wake }

    /// `beforeCommit` runs on the writer thread between each batch's writes and its commit
    /// (tests hold a commit open with it).
    init(store: Store, clock: (@Sendable () -> MonotonicInstant)?, beforeCommit: (@Sendable () -> Void)? = nil) {
        self.store = store
        self.clock = clock
        self.beforeCommit = beforeCommit
        let channel = channel
        startThread(named: "store writer") { channel.serve() }
    }

    deinit {
        channel.stopping.store(true, ordering: .releasing)
        channel.work.signal()
    }

    /// Applies `writes` in one transaction and commits, on the writer thread, after every batch
    /// handed over before. Returns the batch's ticket (0, 1, 2, … in the order handed over).
    func commit(_ writes: [StoreWrite]) -> Int {
        channel.inbox.withLock { $0.append(Channel.Batch(writes: writes, store: store, clock: clock, beforeCommit: beforeCommit)) }
        channel.work.signal()
        defer { handed += 1 }
        return handed
    }

    /// Whether the batch with this ticket has its writes applied: its commit (the fsync) is
    /// running or over.
    func isApplied(_ ticket: Int) -> Bool {
        channel.applied.load(ordering: .acquiring) > ticket
    }

    /// The oldest outcome not yet taken once that batch's commit has returned; nil while it runs.
    func take() -> Result<StoreWriter.Run, any Error>? {
        guard let result = channel.outcomes.withLock({ o -> Result<StoreWriter.Run, any Error>? in
            o.isEmpty ? nil : o.removeFirst()
        }) else { return nil }
        channel.done.wait()
        return result
    }

    /// Blocks until the oldest batch not yet taken has committed (or failed).
    func wait() -> Result<StoreWriter.Run, any Error> {
        channel.done.wait()
        return channel.outcomes.withLock { $0.removeFirst() }
    }
}
