import AgentFlowCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

extension Sandbox {
    /// The name the Python verifier's snippet gets in the verifier's copy.
    static let verifierSnippet = "_verify.py"

    /// Runs `verifier` in its own process, in the same sandbox as the code, after the code's
    /// runs have ended, on a copy of the workspace in which the workflow's own files
    /// (``seed(_:_:)-(String,String)``) and the snippet are restored, and with the guard as
    /// `python3` (``VerifierHarness``): exit 0 only when the check reached its end. The copy
    /// leaves out `__pycache__` and `.pyc` files (stale bytecode planted for a restored test would
    /// run instead of it) and is removed afterwards, with whatever the check wrote. Paths in the
    /// output name the workspace, not the copy.
    public func runVerifier(_ verifier: Verifier, cancel: (@Sendable () -> Bool)? = nil, deadline: MonotonicInstant? = nil) -> ExecutionResult {
        let runtime: SandboxRuntime
        switch self.runtime {
        case .success(let r): runtime = r
        case .failure(let e): return .sandboxFailure("verifier: \(e)")
        }
        let copy = URL(fileURLWithPath: workspace.path + ".verify", isDirectory: true)
        let manifest = URL(fileURLWithPath: workspace.path + ".verify-files")
        Self.unmountIfMounted(copy)
        SandboxFiles.removeTree(copy)
        var mounted = false
        defer {
            if mounted { umount2(copy.path, Int32(MNT_DETACH)) }
            SandboxFiles.removeTree(copy)
            try? FileManager.default.removeItem(at: manifest)
        }
        var restored = seeded.withLock { $0 }
        let guardPython = mode == .bubblewrap ? "/usr/bin/python3" : runtime.verifierBin.appendingPathComponent("python3").path
        let command: [String]
        switch verifier {
        case .python(let snippet):
            restored[Self.verifierSnippet] = Data(snippet.utf8)
            command = [guardPython, Self.verifierSnippet]
        case .command(let line):
            command = ["/bin/sh", "-c", line]
        }
        let owner = fileOwner
        do {
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: false)
            mounted = mountedWorkspace && Self.mountTmpfs(at: copy, bytes: limits.workspaceBytes, owner: owner)
            try SandboxFiles.copyTree(workspace, to: copy) { $0 == "__pycache__" || $0.hasSuffix(".pyc") }
            for (path, data) in restored { try SandboxFiles.write(root: copy, path, data, replace: true) }
            if let owner { SandboxFiles.chownTree(copy, to: owner) }
            try Data(restored.keys.sorted().joined(separator: "\n").utf8).write(to: manifest)
            chmod(manifest.path, 0o644)
        } catch {
            return .sandboxFailure("verifier: cannot prepare the workspace copy: \(error)")
        }
        var environment = self.environment(for: copy)
        environment["PYTHONPATH"] = nil
        environment["PYTHONSAFEPATH"] = "1"
        environment["PYTHONNOUSERSITE"] = "1"
        environment["AGENTFLOW_VERIFY_MANIFEST"] = manifest.path
        if mode == .unsafeNoSandbox { environment["PATH"] = runtime.verifierBin.path + ":" + environment["PATH", default: "/usr/bin:/bin"] }
        let check = SandboxLaunch.Run(command: command, directory: copy, environment: environment, verifier: true, extraFiles: [manifest.path])
        var result = run(check, cancel: cancel, deadline: deadline)
        result.output = result.output.replacingOccurrences(of: copy.path, with: workspace.path)
        return result
    }
}
