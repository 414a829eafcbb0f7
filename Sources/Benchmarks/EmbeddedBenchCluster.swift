import AgentFlowCore
import Coordinator
import Foundation
import Wire
import Worker
import ZeroMQ

/// What `bench dispatch` and `bench memory` run against: a coordinator in this process (real
/// ZeroMQ sockets on loopback, a real database file) and sim workers with zero latency, every
/// worker serving the one model `bench-model`.
struct EmbeddedBenchCluster {
    static let model = ModelSpec(name: "bench-model", priceInput: 0.1, priceOutput: 0.2, context: 4096)

    let workerSpecs: [WorkerSpec]
    /// The database the coordinator writes: the one given, else a fresh temporary file.
    let database: String
    let context = ZMQContext()
    let coordinator: CoordinatorThread
    let endpoints: (workers: String, clients: String)
    private let ownsDatabase: Bool

    /// Starts the coordinator and waits until it listens. Workers are named `name0`, `name1`, …;
    /// a temporary database is `agentflow-NAME-PID.db` (`removeDatabase()` removes it).
    init(name: String, workers: Int, slots: Int, database: String?, recordRoundTrips: Bool = false) throws {
        workerSpecs = (0..<workers).map {
            WorkerSpec(name: "\(name)\($0)", gpus: [$0], model: Self.model.name, backend: .sim(timeScale: 0, seed: 1), slots: slots)
        }
        let cluster = Cluster(models: [Self.model], workers: workerSpecs)
        self.database = database ?? NSTemporaryDirectory() + "agentflow-\(name)-\(ProcessInfo.processInfo.processIdentifier).db"
        ownsDatabase = database == nil
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: self.database + suffix) }
        var options = Coordinator.Options(cluster: cluster)
        options.workersEndpoint = "tcp://127.0.0.1:*"
        options.clientsEndpoint = "tcp://127.0.0.1:*"
        options.database = self.database
        options.recordRoundTrips = recordRoundTrips
        coordinator = CoordinatorThread(cluster: cluster, options: options, context: context)
        endpoints = try coordinator.waitUntilBound()
    }

    /// One worker thread per spec, on the sim backend with zero latency, connected now.
    func startWorkers() -> [WorkerThread] {
        workerSpecs.map {
            WorkerThread(info: WorkerInfo(WorkerRecord(name: $0.name, host: "bench", gpus: $0.gpus, model: $0.model, slots: $0.slots, freeMemory: 0)),
                         options: WorkerProcess.Options(endpoint: endpoints.workers), backend: SimBackend(timeScale: 0, seed: 1), context: context)
        }
    }

    /// Removes the temporary database's files (never a database the caller named).
    func removeDatabase() {
        guard ownsDatabase else { return }
        for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: database + suffix) }
    }
}
