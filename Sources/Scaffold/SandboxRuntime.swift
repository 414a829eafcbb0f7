import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Files every sandboxed run may need, written once per worker process and workspace root into
/// a private directory there (`mkdtemp`, so no other user can plant anything in it): the
/// verifier's guard — the `python3` and `python` of verifier runs — and its harness
/// (``VerifierHarness``).
struct SandboxRuntime: Sendable {
    /// The private directory, readable by everyone (the sandbox user), writable by this user.
    let directory: URL
    /// Holds `python3` and `python` as the guard, for verifier runs.
    let verifierBin: URL
    let harness: URL

    private static let made = Mutex<[String: SandboxRuntime]>([:])

    /// The runtime of this process under `root` (a workspace root), created on first use.
    static func shared(in root: URL) throws -> SandboxRuntime {
        try made.withLock { made in
            if let runtime = made[root.path] { return runtime }
            let runtime = try create(in: root)
            made[root.path] = runtime
            return runtime
        }
    }

    private static let prefix = ".agentflow-runtime-"

    static func create(in temporary: URL) throws -> SandboxRuntime {
        removeStale(in: temporary)
        var template = Array(temporary.appendingPathComponent("\(prefix)\(getpid())-XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SandboxRuntimeError(message: "cannot create the sandbox runtime directory in \(temporary.path): \(String(cString: strerror(errno)))")
        }
        let directory = URL(fileURLWithPath: String(cString: made), isDirectory: true)
        chmod(directory.path, 0o755)
        let bin = directory.appendingPathComponent("verify-bin", isDirectory: true)
        let harness = directory.appendingPathComponent("verify-harness.py")
        do {
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: false)
            chmod(bin.path, 0o755)
            try Data(VerifierHarness.harness.utf8).write(to: harness)
            chmod(harness.path, 0o644)
            let guardScript = VerifierHarness.guardScript(python: Sandbox.realPython, harness: harness.path)
            for name in ["python3", "python"] {
                let url = bin.appendingPathComponent(name)
                try Data(guardScript.utf8).write(to: url)
                chmod(url.path, 0o755)
            }
        } catch {
            throw SandboxRuntimeError(message: "cannot write the sandbox runtime in \(directory.path): \(error)")
        }
        return SandboxRuntime(directory: directory, verifierBin: bin, harness: harness)
    }

    /// Removes runtime directories of this user whose process is gone.
    private static func removeStale(in temporary: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: temporary.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let pid = rest.split(separator: "-").first.flatMap({ Int32($0) }), pid != getpid() else { continue }
            var info = stat()
            let path = temporary.appendingPathComponent(name)
            guard lstat(path.path, &info) == 0, info.st_uid == geteuid(), info.st_mode & S_IFMT == S_IFDIR else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { SandboxFiles.removeTree(path) }
        }
    }
}

/// The sandbox runtime could not be written.
struct SandboxRuntimeError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
