import AgentFlowCore
import Archive
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One attempt's workspace and the way to run model-written code, shell actions and verifiers
/// in it: the same sandbox for all three (DESIGN.md §11; issue 18).
///
/// With bubblewrap (``SandboxMode/bubblewrap``, the default; a run fails with the reason when
/// the host has none): new user, pid, ipc, uts, net and cgroup namespaces and no user
/// namespace inside; no capabilities; an empty root holding only Python, a shell, the coreutils
/// and a few text tools, the system libraries read-only, a fresh `/proc`, a minimal `/dev`
/// (no GPU unless ``SandboxLimits/devices`` names one) and a private `/tmp`; the workspace
/// read-write at its own path; an environment of a few variables, nothing of the worker's. A
/// root worker runs it as `nobody`.
///
/// Per attempt, not per user: a cgroup of its own where the host gives one (memory with swap,
/// processes, CPU quota; ``SandboxHost/cgroups``), else per-process rlimits; the workspace is a
/// tmpfs of ``SandboxLimits/workspaceBytes`` where the worker may mount one. Each run has a
/// wall-clock limit (cut to the attempt's deadline) and an output limit, and when it ends every
/// process it started is gone: the pid namespace dies with its first process, and the cgroup
/// is emptied (double-forked daemons included).
///
/// `run` blocks the calling thread; call it from the attempt's own thread.
public final class Sandbox: Sendable {
    public let workspace: URL
    public let limits: SandboxLimits
    public let mode: SandboxMode
    /// The workflow's own files in the workspace (``seed(_:_:)-(String,String)``), restored before each verifier run.
    let seeded = Mutex<[String: Data]>([:])
    let cgroup: SandboxCgroup?
    /// The workspace is a tmpfs mount of its own (unmounted by ``remove()``).
    let mountedWorkspace: Bool
    let runtime: Result<SandboxRuntime, SandboxRuntimeError>
    /// The clock run deadlines are instants on and wall limits are measured with (the worker's).
    let time: any TimeSource

    /// What this host gives the sandbox (bubblewrap, cgroups, tmpfs), probed on first use.
    public static var host: SandboxHost { SandboxHost.current }

    /// Creates `root/name` afresh (an existing one is removed first), with a cgroup for the
    /// attempt where the host gives one. `time` is the worker's clock: the `deadline` of a run is
    /// an instant on its monotonic clock.
    public init(root: URL, name: String, limits: SandboxLimits = SandboxLimits(), mode: SandboxMode = .bubblewrap,
                time: any TimeSource = SystemTime()) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let safeName = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        let workspace = root.appendingPathComponent(safeName, isDirectory: true).standardizedFileURL
        Self.unmountIfMounted(workspace)
        SandboxFiles.removeTree(workspace)
        try fm.createDirectory(at: workspace, withIntermediateDirectories: true)
        let host = SandboxHost.current
        self.workspace = workspace
        self.limits = limits
        self.mode = mode
        self.time = time
        self.runtime = Result { try SandboxRuntime.shared(in: root) }.mapError {
            $0 as? SandboxRuntimeError ?? SandboxRuntimeError(message: "\($0)")
        }
        let owner = Self.codeOwner(host: host, workspace: workspace)
        self.mountedWorkspace = host.tmpfsWorkspaces && Self.mountTmpfs(at: workspace, bytes: limits.workspaceBytes, owner: owner)
        if let owner, !mountedWorkspace { chown(workspace.path, owner, owner) }
        self.cgroup = SandboxCgroup(support: host.cgroups, name: safeName.suffix(60) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16), limits: limits)
    }

    deinit { cgroup?.remove() }

    /// The user the code's files must belong to so that it can change them: `nobody` when a root
    /// worker runs the sandbox as `nobody` (the workspace's directories let it through), else
    /// nil (the worker's own user).
    static func codeOwner(host: SandboxHost, workspace: URL) -> uid_t? {
        guard let user = host.dropToUser, othersCanReach(workspace) else { return nil }
        return user
    }

    var fileOwner: uid_t? { Self.codeOwner(host: SandboxHost.current, workspace: workspace) }

    /// Writes `contents` to `path` (relative, inside the workspace; directories are created).
    /// Never follows a link the code left there. Throws ``WorkspacePathError`` for a path that is
    /// absolute, has `..`, or runs through something that is not a directory.
    public func write(_ path: String, _ contents: String) throws {
        try write(path, Data(contents.utf8))
    }

    /// Writes `data` to `path` inside the workspace (see ``write(_:_:)-(String,String)``).
    public func write(_ path: String, _ data: Data) throws {
        try SandboxFiles.write(root: workspace, path, data, replace: true, owner: fileOwner)
    }

    /// Writes one of the workflow's own files (a need's output, an input): unlike a file the code
    /// writes, it is restored in the copy every verifier runs on, so the code cannot rewrite a
    /// test or a module the check relies on.
    public func seed(_ path: String, _ contents: String) throws {
        try seed(path, Data(contents.utf8))
    }

    /// Writes one of the workflow's own files (see ``seed(_:_:)-(String,String)``).
    public func seed(_ path: String, _ data: Data) throws {
        let normal = try SandboxFiles.components(path).joined(separator: "/")
        try write(normal, data)
        seeded.withLock { $0[normal] = data }
    }

    /// The text of the regular file at `path` in the workspace; nil when it is missing, not UTF-8,
    /// a link (never followed: it could point at the worker's files) or not a regular file.
    public func read(_ path: String) -> String? {
        readData(path).flatMap { String(data: $0, encoding: .utf8) }
    }

    /// The bytes of the regular file at `path` in the workspace (see ``read(_:)``), at most
    /// `limit`; nil for a file with other hard links too (it may be a host file's).
    public func readData(_ path: String, limit: Int = 64 << 20) -> Data? {
        try? SafeDirectory(root: workspace).read(path, limit: limit)
    }

    /// Kills what is left of the attempt, removes its cgroup and the workspace.
    public func remove() {
        cgroup?.remove()
        if mountedWorkspace { umount2(workspace.path, Int32(MNT_DETACH)) }
        SandboxFiles.removeTree(workspace)
    }

    /// Runs `python3 file` in the workspace.
    public func runPython(file: String, cancel: (@Sendable () -> Bool)? = nil, deadline: MonotonicInstant? = nil) -> ExecutionResult {
        run([SandboxHost.current.python.executable, "-B", file], cancel: cancel, deadline: deadline)
    }

    /// Runs `/bin/sh -c command` in the workspace.
    public func runShell(_ command: String, cancel: (@Sendable () -> Bool)? = nil, deadline: MonotonicInstant? = nil) -> ExecutionResult {
        run(["/bin/sh", "-c", command], cancel: cancel, deadline: deadline)
    }

    /// Runs `argv` in the workspace (`argv[0]` looked up in the sandbox's `PATH`).
    public func run(_ argv: [String], cancel: (@Sendable () -> Bool)? = nil, deadline: MonotonicInstant? = nil) -> ExecutionResult {
        run(SandboxLaunch.Run(command: argv, directory: workspace, environment: environment(for: workspace), verifier: false),
            cancel: cancel, deadline: deadline)
    }

    /// The environment inside: the run's directory is home and on Python's path; nothing else
    /// of the worker's.
    func environment(for directory: URL) -> [String: String] {
        ["HOME": directory.path, "TMPDIR": mode == .bubblewrap ? "/tmp" : directory.path, "PYTHONPATH": directory.path,
         "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8",
         "PATH": mode == .bubblewrap ? "/usr/bin:/bin" : "/usr/local/bin:/usr/bin:/bin"]
    }

    func run(_ run: SandboxLaunch.Run, cancel: (@Sendable () -> Bool)?, deadline: MonotonicInstant?) -> ExecutionResult {
        let runtime: SandboxRuntime
        switch self.runtime {
        case .success(let r): runtime = r
        case .failure(let e): return .sandboxFailure("sandbox: \(e)")
        }
        let launch = SandboxLaunch(host: SandboxHost.current, runtime: runtime, limits: limits, cgroup: cgroup, mode: mode)
        let line: (argv: [String], environment: [String: String])
        switch launch.commandLine(run) {
        case .success(let l): line = l
        case .failure(let e): return .sandboxFailure("sandbox: \(e)")
        }
        var wall = limits.wall
        if let deadline { wall = min(wall, deadline.remaining(at: time.instant)) }
        return SandboxProcess.execute(
            line.argv, environment: line.environment, wall: wall, limits: limits, cancel: cancel, cgroup: cgroup, time: time)
    }

    /// The Python interpreter sandboxed code runs with.
    static let python: String = {
        if let env = ProcessInfo.processInfo.environment["AGENTFLOW_SANDBOX_PYTHON"] { return env }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") { return "/usr/bin/python3" }
        return "python3"
    }()

    /// ``python`` with links resolved and looked up in PATH: the binary bound into the sandbox.
    static let realPython: String = {
        var path = python
        if !path.hasPrefix("/") {
            let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            path = dirs.map { "\($0)/\(python)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? python
        }
        return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }()

    /// Whether every directory above `url` lets others through (`o+x`), so that `nobody` can
    /// reach it. A checkout under /root does not: a root worker then runs the sandbox as root
    /// (in its own user namespace, without capabilities).
    static func othersCanReach(_ url: URL) -> Bool {
        var path = url.deletingLastPathComponent().path
        while !path.isEmpty {
            var info = stat()
            guard stat(path, &info) == 0, info.st_mode & S_IXOTH != 0 else { return false }
            if path == "/" { break }
            path = (path as NSString).deletingLastPathComponent
        }
        return true
    }

    /// Mounts a tmpfs of `bytes` at `url`, owned by `owner`. Its source names this process, so
    /// a later worker can unmount what a dead one left.
    static func mountTmpfs(at url: URL, bytes: Int, owner: uid_t?) -> Bool {
        var options = "size=\(max(1 << 20, bytes)),mode=0755"
        if let owner { options += ",uid=\(owner),gid=\(owner)" }
        return mount("agentflow-\(getpid())", url.path, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0
    }

    /// Unmounts a tmpfs a sandbox of this path left mounted (a crashed run, a kept workspace).
    static func unmountIfMounted(_ url: URL) {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[4] == url.path { umount2(url.path, Int32(MNT_DETACH)) }
        }
    }

    /// Unmounts workspace tmpfs mounts whose worker process is gone.
    static func unmountStale() {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " "), tail = halves[1].split(separator: " ")
            guard fields.count > 4, tail.count > 1, tail[0] == "tmpfs", tail[1].hasPrefix("agentflow-"),
                  let pid = pid_t(tail[1].dropFirst("agentflow-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            umount2(String(fields[4]), Int32(MNT_DETACH))
        }
    }
}
