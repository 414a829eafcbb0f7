import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Files the sandbox brings into every run, written once per worker process and workspace root
/// into a private directory there (`mkdtemp`, so no other user can plant anything in it):
///
/// - `usr-bin/`: the sandbox's `/usr/bin` — a shell, the coreutils, grep, sed, awk, find, diff,
///   tar, gzip (hard links to the host's binaries where the file system allows, else copies),
///   and `python3`/`python` as links to the interpreter, which is bound at its own path;
/// - `usr-bin-verify/`: the same, with `python3` and `python` as the verifier's guard
///   (``VerifierHarness``);
/// - `etc/`: `passwd` and `group` naming the sandbox user, and the loader's cache;
/// - `agentflow/verify-harness.py`, bound at `/run/agentflow`;
/// - `verify-bin/`: the guard with host paths, first on `PATH` for verifiers without bubblewrap.
struct SandboxRuntime: Sendable {
    /// The private directory, readable by everyone (the sandbox user), writable by this user.
    let directory: URL
    /// Holds `python3` and `python` as the guard, for verifier runs without bubblewrap.
    let verifierBin: URL
    let harness: URL

    var sandboxBin: URL { directory.appendingPathComponent("usr-bin", isDirectory: true) }
    var sandboxVerifierBin: URL { directory.appendingPathComponent("usr-bin-verify", isDirectory: true) }
    var sandboxEtc: URL { directory.appendingPathComponent("etc", isDirectory: true) }
    var sandboxAgentFlow: URL { directory.appendingPathComponent("agentflow", isDirectory: true) }

    /// Where ``sandboxAgentFlow`` is inside the sandbox.
    static let agentflowMount = "/run/agentflow"

    /// Programs of the sandbox's `/usr/bin` besides Python: a shell and the coreutils, and the
    /// text tools verifier commands use.
    static let programs = [
        "sh", "dash", "bash",
        "[", "arch", "b2sum", "base32", "base64", "basename", "basenc", "cat", "chgrp", "chmod", "chown", "cksum", "comm", "cp",
        "csplit", "cut", "date", "dd", "df", "dir", "dircolors", "dirname", "du", "echo", "env", "expand", "expr", "factor", "false",
        "fmt", "fold", "groups", "head", "hostid", "id", "install", "join", "link", "ln", "logname", "ls", "md5sum", "mkdir",
        "mkfifo", "mktemp", "mv", "nice", "nl", "nohup", "nproc", "numfmt", "od", "paste", "pathchk", "pr", "printenv", "printf",
        "ptx", "pwd", "readlink", "realpath", "rm", "rmdir", "seq", "sha1sum", "sha224sum", "sha256sum", "sha384sum", "sha512sum",
        "shred", "shuf", "sleep", "sort", "split", "stat", "sum", "sync", "tac", "tail", "tee", "test", "timeout", "touch", "tr",
        "true", "truncate", "tsort", "tty", "uname", "unexpand", "uniq", "unlink", "vdir", "wc", "whoami", "yes",
        "grep", "egrep", "fgrep", "sed", "awk", "mawk", "gawk", "find", "xargs", "diff", "cmp", "diff3", "sdiff", "tar", "gzip",
        "gunzip", "zcat", "which",
    ]

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

    static func create(in parent: URL) throws -> SandboxRuntime {
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        removeStale(in: parent)
        var template = Array(parent.appendingPathComponent("\(prefix)\(getpid())-XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SandboxRuntimeError(message: "cannot create the sandbox runtime directory in \(parent.path): \(String(cString: strerror(errno)))")
        }
        let directory = URL(fileURLWithPath: String(cString: made), isDirectory: true)
        chmod(directory.path, 0o755)
        let runtime = SandboxRuntime(
            directory: directory, verifierBin: directory.appendingPathComponent("verify-bin", isDirectory: true),
            harness: directory.appendingPathComponent("verify-harness.py"))
        do {
            try runtime.populate(python: SandboxHost.current.python)
        } catch {
            SandboxFiles.removeTree(directory)
            throw SandboxRuntimeError(message: "cannot write the sandbox runtime in \(directory.path): \(error)")
        }
        return runtime
    }

    private func populate(python: PythonLayout) throws {
        for dir in [verifierBin, sandboxBin, sandboxVerifierBin, sandboxEtc, sandboxAgentFlow] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false)
            chmod(dir.path, 0o755)
        }
        let harnessText = Data(VerifierHarness.harness.utf8)
        try write(harnessText, to: harness, mode: 0o644)
        try write(harnessText, to: sandboxAgentFlow.appendingPathComponent("verify-harness.py"), mode: 0o644)
        let hostGuard = Data(VerifierHarness.guardScript(python: python.executable, harness: harness.path).utf8)
        let sandboxGuard = Data(VerifierHarness.guardScript(
            python: python.executable, harness: Self.agentflowMount + "/verify-harness.py").utf8)
        // An interpreter in /usr/bin is one of the sandbox's /usr/bin; any other is bound at its own path.
        if python.inUsrBin {
            let name = URL(fileURLWithPath: python.executable).lastPathComponent
            for dir in [sandboxBin, sandboxVerifierBin] { try linkOrCopy(python.executable, to: dir.appendingPathComponent(name)) }
        }
        for name in ["python3", "python"] {
            try write(hostGuard, to: verifierBin.appendingPathComponent(name), mode: 0o755)
            try write(sandboxGuard, to: sandboxVerifierBin.appendingPathComponent(name), mode: 0o755)
            for dir in [sandboxBin] {
                try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(name).path, withDestinationPath: python.executable)
            }
        }
        for name in Self.programs {
            guard let source = ["/usr/bin/", "/bin/"].map({ $0 + name }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
                continue
            }
            let real = URL(fileURLWithPath: source).resolvingSymlinksInPath().path
            for dir in [sandboxBin, sandboxVerifierBin] { try linkOrCopy(real, to: dir.appendingPathComponent(name)) }
        }
        let user = SandboxHost.sandboxUser
        try write(Data("root:x:0:0:root:/root:/bin/sh\nsandbox:x:\(user):\(user):sandbox:/nonexistent:/bin/sh\n".utf8),
                  to: sandboxEtc.appendingPathComponent("passwd"), mode: 0o644)
        try write(Data("root:x:0:\nsandbox:x:\(user):\n".utf8), to: sandboxEtc.appendingPathComponent("group"), mode: 0o644)
        if let cache = FileManager.default.contents(atPath: "/etc/ld.so.cache") {
            try write(cache, to: sandboxEtc.appendingPathComponent("ld.so.cache"), mode: 0o644)
        }
    }

    private func write(_ data: Data, to url: URL, mode: mode_t) throws {
        try data.write(to: url)
        chmod(url.path, mode)
    }

    /// A hard link to the host's file (no copy, and it stays what the package installed), or a
    /// copy where linking is refused (another file system, `protected_hardlinks`).
    private func linkOrCopy(_ source: String, to destination: URL) throws {
        if link(source, destination.path) == 0 { return }
        try FileManager.default.copyItem(atPath: source, toPath: destination.path)
        chmod(destination.path, 0o755)
    }

    /// Removes runtime directories in `parent` of this user whose process is gone.
    private static func removeStale(in parent: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let pid = rest.split(separator: "-").first.flatMap({ Int32($0) }), pid != getpid() else { continue }
            var info = stat()
            let path = parent.appendingPathComponent(name)
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
