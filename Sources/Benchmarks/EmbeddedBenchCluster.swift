import AgentFlowCore
import Coordinator
import Foundation
import Wire
import Worker
import ZeroMQ

/// What `bench dispatch`, `bench memory` and `bench intake` run against: a coordinator in this
/// process (real ZeroMQ sockets on loopback, a real database file) and sim workers (zero latency
/// unless told otherwise), every worker serving the one model `bench-model`.
struct EmbeddedBenchCluster {
    static let modelName = "bench-model"
    /// The model of the held worker (``init(name:workers:slots:database:recordRoundTrips:timeScale:modelContext:commitLinger:internalClients:heldWorker:)``):
    /// jobs that may use only it wait in the queue for its one slot.
    static let heldModelName = "bench-held"

    let workerSpecs: [WorkerSpec]
    /// The database the coordinator writes: the one given, else a fresh temporary file.
    let database: String
    let context = ZMQContext()
    let coordinator: CoordinatorThread
    let endpoints: (workers: String, clients: String)
    private let ownsDatabase: Bool

    /// Starts the coordinator and waits until it listens. Workers are named `name0`, `name1`, …;
    /// a temporary database is `agentflow-NAME-PID.db` (`removeDatabase()` removes it). The sim
    /// backend's `timeScale` is 0 (attempts take no time) unless given; `modelContext` is the model's context window;
    /// `commitLinger` replaces the product's default group-commit linger; `internalClients` is an
    /// in-process client endpoint the coordinator also serves (as for `coordinator --http`);
    /// `prefetch` replaces the product's `coordinator.prefetch`; `heldWorker` adds a worker of one
    /// slot serving ``heldModelName`` in real time.
    init(name: String, workers: Int, slots: Int, database: String?, recordRoundTrips: Bool = false, timeScale: Double = 0,
         modelContext: Int = 4096, commitLinger: Duration? = nil, internalClients: String? = nil, prefetch: Int? = nil,
         heldWorker: Bool = false) throws {
        var specs = (0..<workers).map {
            WorkerSpec(name: "\(name)\($0)", gpus: [$0], model: Self.modelName, backend: .sim(timeScale: timeScale, seed: 1), slots: slots)
        }
        var models = [ModelSpec(name: Self.modelName, priceInput: 0.1, priceOutput: 0.2, context: modelContext)]
        if heldWorker {
            // Real time on the sim backend: an attempt planned to take an hour holds the slot for one.
            specs.append(WorkerSpec(name: "\(name)-held", gpus: [workers], model: Self.heldModelName, backend: .sim(timeScale: 1, seed: 1), slots: 1))
            models.append(ModelSpec(name: Self.heldModelName, priceInput: 0.1, priceOutput: 0.2, context: modelContext))
        }
        workerSpecs = specs
        var cluster = Cluster(models: models, workers: workerSpecs)
        if let prefetch { cluster.coordinator.prefetch = prefetch }
        self.database = database ?? NSTemporaryDirectory() + "agentflow-\(name)-\(ProcessInfo.processInfo.processIdentifier).db"
        ownsDatabase = database == nil
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: self.database + suffix) }
        var options = Coordinator.Options(cluster: cluster)
        options.workersEndpoint = "tcp://127.0.0.1:*"
        options.clientsEndpoint = "tcp://127.0.0.1:*"
        options.database = self.database
        options.internalClientsEndpoint = internalClients
        options.recordRoundTrips = recordRoundTrips
        if let commitLinger { options.commitLinger = commitLinger }
        coordinator = CoordinatorThread(cluster: cluster, options: options, context: context)
        endpoints = try coordinator.waitUntilBound()
    }

    /// One worker thread per spec (of `model`'s, if given), on the sim backend its spec names, connected now.
    func startWorkers(model: String? = nil) -> [WorkerThread] {
        workerSpecs.filter { model == nil || $0.model == model }.map { spec in
            guard case .sim(let timeScale, let seed) = spec.backend else { preconditionFailure("bench workers run the sim backend") }
            return WorkerThread(info: WorkerInfo(WorkerRecord(name: spec.name, host: "bench", gpus: spec.gpus, model: spec.model, slots: spec.slots, freeMemory: 0)),
                                options: WorkerProcess.Options(endpoint: endpoints.workers), backend: SimBackend(timeScale: timeScale, seed: seed),
                                context: context)
        }
    }

    /// Removes the temporary database's files (never a database the caller named).
    func removeDatabase() {
        guard ownsDatabase else { return }
        for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: database + suffix) }
    }
}
