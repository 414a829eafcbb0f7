import AgentFlowCore
import ArgumentParser
import Scaffold

/// `--unsafe-no-sandbox` for the commands that run workers (`worker`, `node`, `run`): without
/// it, a worker that runs model-written code (an `openai` backend) refuses to start on a host
/// where bubblewrap cannot build the sandbox. Its registration says which it is
/// (`agentflow workers`, SANDBOX column).
struct SandboxOptions: ParsableArguments {
    @Flag(name: .long, help: "Run model-written code without bubblewrap's namespaces (the host's files and network are reachable). Shown in the worker's registration.")
    var unsafeNoSandbox = false

    var mode: SandboxMode { unsafeNoSandbox ? .unsafeNoSandbox : .bubblewrap }

    /// Throws when one of `specs` runs model code and the sandbox cannot be built here.
    func check(_ specs: [WorkerSpec]) throws {
        guard specs.contains(where: { if case .openai = $0.backend { true } else { false } }),
              let refusal = SandboxHost.current.refusal(mode) else { return }
        throw CLIError(code: 1, message: refusal)
    }
}

/// What a worker's registration says about its sandbox: nil for a backend that runs no code.
func sandboxSummary(_ spec: WorkerSpec, _ mode: SandboxMode) -> String? {
    guard case .openai = spec.backend else { return nil }
    return SandboxHost.current.summary(mode)
}
