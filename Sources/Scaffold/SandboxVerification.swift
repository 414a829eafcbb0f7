import AgentFlowCore
import Foundation

extension Sandbox {
    /// The name the Python verifier's snippet gets in the verifier's copy.
    static let verifierSnippet = "_verify.py"

    /// Runs `verifier` in its own process, after the code's runs have ended, on a copy of the
    /// workspace in which the workflow's own files (``seed(_:_:)-(String,String)``) and the
    /// snippet are restored, and with the guard as `python3` (``VerifierHarness``): exit 0 only
    /// when the check reached its end. The copy leaves out `__pycache__` and `.pyc` files (stale
    /// bytecode planted for a restored test would run instead of it) and is removed afterwards,
    /// with whatever the check wrote. Paths in the output name the workspace, not the copy.
    public func runVerifier(_ verifier: Verifier, cancel: (@Sendable () -> Bool)? = nil, deadline: Double? = nil) -> ExecutionResult {
        let runtime: SandboxRuntime
        do {
            runtime = try SandboxRuntime.shared(in: workspace.deletingLastPathComponent())
        } catch {
            return .sandboxFailure("verifier: \(error)")
        }
        let copy = URL(fileURLWithPath: workspace.path + ".verify", isDirectory: true)
        let manifest = URL(fileURLWithPath: workspace.path + ".verify-files")
        SandboxFiles.removeTree(copy)
        defer {
            SandboxFiles.removeTree(copy)
            try? FileManager.default.removeItem(at: manifest)
        }
        var restored = seeded.withLock { $0 }
        let argv: [String]
        switch verifier {
        case .python(let snippet):
            restored[Self.verifierSnippet] = Data(snippet.utf8)
            argv = [runtime.verifierBin.appendingPathComponent("python3").path, Self.verifierSnippet]
        case .command(let command):
            argv = ["/bin/sh", "-c", command]
        }
        do {
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: false)
            try SandboxFiles.copyTree(workspace, to: copy) { $0 == "__pycache__" || $0.hasSuffix(".pyc") }
            for (path, data) in restored { try SandboxFiles.write(root: copy, path, data, replace: true) }
            try Data(restored.keys.sorted().joined(separator: "\n").utf8).write(to: manifest)
            chmod(manifest.path, 0o644)
        } catch {
            return .sandboxFailure("verifier: cannot prepare the workspace copy: \(error)")
        }
        var environment = actionEnvironment(copy)
        environment["PYTHONPATH"] = nil
        environment["PYTHONSAFEPATH"] = "1"
        environment["PYTHONNOUSERSITE"] = "1"
        environment["AGENTFLOW_VERIFY_MANIFEST"] = manifest.path
        environment["PATH"] = runtime.verifierBin.path + ":" + environment["PATH", default: "/usr/bin:/bin"]
        var result = run(argv, in: copy, environment: environment, cancel: cancel, deadline: deadline)
        result.output = result.output.replacingOccurrences(of: copy.path, with: workspace.path)
        return result
    }
}

extension ExecutionResult {
    /// A run that never started because the sandbox could not be set up.
    static func sandboxFailure(_ message: String) -> ExecutionResult {
        ExecutionResult(exitCode: 126, signal: nil, output: message, timedOut: false, outputLimitExceeded: false, seconds: 0)
    }
}
