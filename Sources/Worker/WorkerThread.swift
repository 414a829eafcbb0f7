import AgentFlowCore
import Foundation
import Observability
import Synchronization
import Wire
import ZeroMQ

/// Runs a worker on its own thread (embedded mode: one thread per worker).
public final class WorkerThread: Sendable {
    public let stop = StopSignal()
    public let finished = Atomic<Bool>(false)
    /// Its slots' idle gaps (an attempt ended → the slot's next attempt started), once it has
    /// returned (``WorkerCore/slotIdle``).
    public let slotIdle = Mutex(LatencyHistogram())

    public init(info: WorkerInfo, options: WorkerProcess.Options, backend: any AttemptBackend, context: ZMQContext) {
        startThread(named: "worker-\(info.worker.name)") { [self] in
            let worker = WorkerProcess(info: info, options: options, backend: backend, context: context)
            do { try worker.run(stop: stop) } catch { FileHandle.standardError.write(Data("worker \(info.worker.name): \(error)\n".utf8)) }
            let gaps = worker.core.slotIdle
            slotIdle.withLock { $0 = gaps }
            finished.store(true, ordering: .releasing)
        }
    }

    public func shutdown() {
        stop.set()
        join()
    }

    /// Waits until the worker's loop has returned.
    public func join() {
        while !finished.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.005) }
    }
}
