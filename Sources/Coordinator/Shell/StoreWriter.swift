import AgentFlowCore
import Dispatch
import Store
import Synchronization
import ZeroMQ

/// The thread that commits the pipeline's batches, one at a time ("store writer" in `top -H`
/// and `/proc`). While a batch is in flight only this thread touches the store's connection;
/// the loop hands it the next batch only after `take()` or `wait()` has returned the previous
/// one's outcome. Its own thread, not a dispatch queue's: the queue ran each batch on whichever
/// pool thread was free, so no tool could tell the writer's CPU from the rest of the process.
///
/// The thread holds the store only while it runs a batch, and lets go of it before it posts the
/// outcome: once the loop has the outcome, the pipeline is the store's last holder, so a
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
        }
        /// The batch handed over and not yet taken by the thread.
        let inbox = Mutex<Batch?>(nil)
        /// Set when the writer goes: the thread ends.
        let stopping = Atomic<Bool>(false)
        /// Signalled when a batch is in the inbox, and when the writer goes.
        let work = DispatchSemaphore(value: 0)
        /// The batch's outcome: when it ran, or the error.
        let outcome = Mutex<Result<Run, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let wake = WakeupPipe()

        /// The thread's loop: one batch at a time until the writer goes.
        func serve() {
            while true {
                work.wait()
                if stopping.load(ordering: .acquiring) { return }
                guard let result = runHandedBatch() else { continue }
                outcome.withLock { $0 = result }
                done.signal()
                wake.signal()
            }
        }

        /// Takes the batch out of the inbox, applies and commits it; nil: the inbox was empty.
        /// The batch, its store with it, is let go of when this returns — before the outcome is
        /// posted (a local of `serve`'s loop would live to the end of the iteration).
        private func runHandedBatch() -> Result<Run, any Error>? {
            guard let batch = inbox.withLock({ i -> Batch? in
                defer { i = nil }
                return i
            }) else { return nil }
            let clock = batch.clock
            let start = clock?() ?? .origin
            return Result {
                var applied = MonotonicInstant.origin
                try batch.store.applyAndCommit(batch.writes) { applied = clock?() ?? .origin }
                return Run(start: start, applied: applied, end: clock?() ?? .origin)
            }
        }
    }

    private let store: Store
    private let clock: (@Sendable () -> MonotonicInstant)?
    private let channel = Channel()
    var wake: WakeupPipe { channel.wake }

    init(store: Store, clock: (@Sendable () -> MonotonicInstant)?) {
        self.store = store
        self.clock = clock
        let channel = channel
        startThread(named: "store writer") { channel.serve() }
    }

    deinit {
        channel.stopping.store(true, ordering: .releasing)
        channel.work.signal()
    }

    /// Applies `writes` in one transaction and commits, on the writer thread.
    func commit(_ writes: [StoreWrite]) {
        channel.inbox.withLock { $0 = Channel.Batch(writes: writes, store: store, clock: clock) }
        channel.work.signal()
    }

    /// The outcome of the batch in flight once its commit has returned; nil while it runs.
    func take() -> Result<StoreWriter.Run, any Error>? {
        guard let result = channel.outcome.withLock({ o -> Result<StoreWriter.Run, any Error>? in
            defer { o = nil }
            return o
        }) else { return nil }
        channel.done.wait()
        return result
    }

    /// Blocks until the batch in flight has committed (or failed).
    func wait() -> Result<StoreWriter.Run, any Error> {
        channel.done.wait()
        return channel.outcome.withLock { o in
            defer { o = nil }
            return o!
        }
    }
}
