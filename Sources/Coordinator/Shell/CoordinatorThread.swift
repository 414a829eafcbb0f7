import AgentFlowCore
import Foundation
import Synchronization
import ZeroMQ

/// Runs a coordinator on its own thread (embedded mode: `agentflow run`, `node`, the dispatch
/// benchmark). Its sockets and SQLite connection are created on that thread and never leave it.
public final class CoordinatorThread: Sendable {
    let stop = StopSignal()
    let endpoints = Mutex<(workers: String, clients: String)?>(nil)
    let failure = Mutex<String?>(nil)
    let finalStats = Mutex<CoordinatorStats?>(nil)
    let finished = Atomic<Bool>(false)

    public init(cluster: Cluster, options: Coordinator.Options, context: ZMQContext) {
        startThread(named: "coordinator", stackSize: 8 << 20) { [self] in
            let coordinator = Coordinator(cluster: cluster, options: options, context: context)
            do {
                let stats = try coordinator.run(stop: stop) { w, c in self.endpoints.withLock { $0 = (w, c) } }
                finalStats.withLock { $0 = stats }
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            finished.store(true, ordering: .releasing)
        }
    }

    /// Waits until the sockets are bound; throws what stopped the coordinator if it failed.
    public func waitUntilBound(timeout: Double = 10) throws -> (workers: String, clients: String) {
        // Monotonic: a wall-clock step must neither cut the wait short nor stretch it.
        let deadline = ContinuousClock.now + .clampedSeconds(timeout)
        while ContinuousClock.now < deadline {
            if let e = endpoints.withLock({ $0 }) { return e }
            if let f = failure.withLock({ $0 }) { throw CoordinatorStartError(description: "coordinator failed to start: \(f)") }
            Thread.sleep(forTimeInterval: 0.005)
        }
        throw CoordinatorStartError(description: "coordinator did not start within \(formatDuration(timeout))")
    }

    public func shutdown() -> CoordinatorStats? {
        stop.set()
        while !finished.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.005) }
        return finalStats.withLock { $0 }
    }
}

/// Why an embedded coordinator did not come up.
public struct CoordinatorStartError: Error, CustomStringConvertible {
    public var description: String
}
