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
    gpus: [Int] = [], time: any TimeSource = SystemTime()
) throws -> any AttemptBackend {
    switch spec {
    case .sim(let timeScale, let seed):
        return SimBackend(timeScale: timeScale, seed: seed, time: time)
    case .openai(let endpoint):
        var configuration = ScaffoldConfiguration()
        configuration.contextTokens = context
        configuration.sandbox = sandbox
        configuration.limits.gpuDevices = SandboxLimits.nvidiaDevices(gpus)
        if let limits { configuration.limits.apply(limits) }
        return ScaffoldBackend(baseURL: endpoint.url, model: endpoint.served ?? model, configuration: configuration,
                               client: try clientSettings(endpoint, worker: worker), time: time)
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

/// What a worker registers: its GPUs' free memory and name when nvidia-smi told us (`node`),
/// else the host's memory, and its sandbox.
func workerInfo(_ spec: WorkerSpec, gpus: [GPUInfo] = [], sandbox: SandboxMode = .bubblewrap) -> WorkerInfo {
    let mine = gpus.filter { spec.gpus.contains($0.index) }
    return WorkerInfo(WorkerRecord(name: spec.name, host: ProcessInfo.processInfo.hostName, gpus: spec.gpus, model: spec.model, slots: spec.slots,
                                   freeMemory: mine.isEmpty ? hostFreeMemory() : mine.reduce(0) { $0 + $1.freeMemory },
                                   gpuName: mine.first?.name, sandbox: sandboxSummary(spec, sandbox)))
}
