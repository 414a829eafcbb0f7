import AgentFlowCore
import Coordinator
import Foundation
import LLM
import Synchronization
import Wire
import Scaffold
import Worker
import ZeroMQ

/// Builds the backend a worker spec names: for `openai`, its key and secret headers are read
/// here, on the worker, and the model is asked for by its served name. The scaffold keeps every
/// call inside the model's context length as the cluster file gives it, and runs model code in
/// the sandbox `sandbox` says with the cluster file's `sandbox:` limits. Throws (exit 2) naming
/// the worker when a key cannot be read.
func makeBackend(
    _ spec: BackendSpec, model: String, context: Int?, worker: String, sandbox: SandboxMode = .bubblewrap, limits: SandboxSpec? = nil,
    gpus: [Int] = []
) throws -> any AttemptBackend {
    switch spec {
    case .sim(let timeScale, let seed):
        return SimBackend(timeScale: timeScale, seed: seed)
    case .openai(let endpoint):
        var configuration = ScaffoldConfiguration()
        configuration.contextTokens = context
        configuration.sandbox = sandbox
        configuration.limits.gpuDevices = SandboxLimits.nvidiaDevices(gpus)
        if let limits { configuration.limits.apply(limits) }
        return ScaffoldBackend(baseURL: endpoint.url, model: endpoint.served ?? model, configuration: configuration,
                               client: try clientSettings(endpoint, worker: worker))
    }
}

/// The LLM client's settings for a worker's `openai` backend, its secrets read from this
/// process's environment or files; exit 2 naming the worker and the source when one is missing.
func clientSettings(_ endpoint: OpenAIEndpoint, worker: String) throws -> ChatClient.Configuration {
    do {
        return try ChatClient.Configuration(endpoint)
    } catch {
        throw CLIError.badInput("worker \(worker): \(error)")
    }
}

/// Total physical memory, reported as the worker's free memory when no GPU tells us better.
func hostFreeMemory() -> Int64 {
    Int64(ProcessInfo.processInfo.physicalMemory)
}

/// Runs a coordinator on its own thread. Its sockets and SQLite connection are created on
/// that thread and never leave it.
final class CoordinatorThread: Sendable {
    let stop = StopSignal()
    let endpoints = Mutex<(workers: String, clients: String)?>(nil)
    let failure = Mutex<String?>(nil)
    let finalStats = Mutex<CoordinatorStats?>(nil)
    let finished = Atomic<Bool>(false)

    init(cluster: Cluster, options: Coordinator.Options, context: ZMQContext) {
        let thread = Thread { [self] in
            let coordinator = Coordinator(cluster: cluster, options: options, context: context)
            do {
                let stats = try coordinator.run(stop: stop) { w, c in self.endpoints.withLock { $0 = (w, c) } }
                finalStats.withLock { $0 = stats }
            } catch {
                failure.withLock { $0 = "\(error)" }
            }
            finished.store(true, ordering: .releasing)
        }
        thread.name = "coordinator"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// Waits until the sockets are bound; throws what stopped the coordinator if it failed.
    func waitUntilBound(timeout: Double = 10) throws -> (workers: String, clients: String) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let e = endpoints.withLock({ $0 }) { return e }
            if let f = failure.withLock({ $0 }) { throw CLIError(code: 1, message: "coordinator failed to start: \(f)") }
            Thread.sleep(forTimeInterval: 0.005)
        }
        throw CLIError(code: 1, message: "coordinator did not start within \(formatDuration(timeout))")
    }

    func shutdown() -> CoordinatorStats? {
        stop.set()
        while !finished.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.005) }
        return finalStats.withLock { $0 }
    }
}

/// Runs a worker on its own thread (embedded mode: one thread per worker).
final class WorkerThread: Sendable {
    let stop = StopSignal()
    let finished = Atomic<Bool>(false)

    init(info: WorkerInfo, options: WorkerProcess.Options, backend: any AttemptBackend, context: ZMQContext) {
        let thread = Thread { [self] in
            let worker = WorkerProcess(info: info, options: options, backend: backend, context: context)
            do { try worker.run(stop: stop) } catch { printError("worker \(info.name): \(error)") }
            finished.store(true, ordering: .releasing)
        }
        thread.name = "worker-\(info.name)"
        thread.start()
    }

    func shutdown() {
        stop.set()
        join()
    }

    /// Waits until the worker's loop has returned.
    func join() {
        while !finished.load(ordering: .acquiring) { Thread.sleep(forTimeInterval: 0.005) }
    }
}

/// What a worker registers: its GPUs' free memory and name when nvidia-smi told us (`node`),
/// else the host's memory, and its sandbox.
func workerInfo(_ spec: WorkerSpec, gpus: [GPUInfo] = [], sandbox: SandboxMode = .bubblewrap) -> WorkerInfo {
    let mine = gpus.filter { spec.gpus.contains($0.index) }
    var info = WorkerInfo(name: spec.name, host: ProcessInfo.processInfo.hostName, gpus: spec.gpus, model: spec.model, slots: spec.slots,
                          freeMemory: mine.isEmpty ? hostFreeMemory() : mine.reduce(0) { $0 + $1.freeMemory },
                          gpuName: mine.first?.name)
    info.sandbox = sandboxSummary(spec, sandbox)
    return info
}
