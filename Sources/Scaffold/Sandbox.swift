import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Resource limits of one sandboxed run.
public struct SandboxLimits: Sendable, Equatable {
    /// Wall-clock seconds before the whole process tree is killed.
    public var wallSeconds: Double
    /// CPU seconds (RLIMIT_CPU).
    public var cpuSeconds: Int
    /// Address space in bytes (RLIMIT_AS).
    public var memoryBytes: Int
    /// Largest file the code may write (RLIMIT_FSIZE).
    public var fileBytes: Int
    /// Most processes (RLIMIT_NPROC, of the sandbox user).
    public var processes: Int
    /// Output kept for the observation (head and tail; the middle is elided).
    public var keptOutputBytes: Int
    /// Output beyond which the run is killed.
    public var maxOutputBytes: Int

    public init(
        wallSeconds: Double = 10, cpuSeconds: Int = 10, memoryBytes: Int = 512 << 20, fileBytes: Int = 16 << 20,
        processes: Int = 64, keptOutputBytes: Int = 4096, maxOutputBytes: Int = 2 << 20
    ) {
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.memoryBytes = memoryBytes
        self.fileBytes = fileBytes
        self.processes = processes
        self.keptOutputBytes = keptOutputBytes
        self.maxOutputBytes = maxOutputBytes
    }
}

/// What one sandboxed run did.
public struct ExecutionResult: Sendable, Equatable {
    /// Exit status, or `nil` when a signal ended it.
    public var exitCode: Int32?
    public var signal: Int32?
    /// Standard output and error, interleaved, cut to ``SandboxLimits/keptOutputBytes``.
    public var output: String
    public var timedOut: Bool
    public var outputLimitExceeded: Bool
    public var seconds: Double

    public var succeeded: Bool { exitCode == 0 && !timedOut && !outputLimitExceeded }

    /// One line saying how it ended, for observations.
    public var summary: String {
        if timedOut { return "killed: wall-time limit" }
        if outputLimitExceeded { return "killed: output limit" }
        if let signal { return "killed by signal \(signal)" + (signal == SIGXCPU || signal == SIGKILL ? " (CPU or memory limit)" : "") }
        return "exit code \(exitCode ?? -1)"
    }
}

/// How well this host can isolate sandboxed code. Probed once per process.
public struct SandboxIsolation: Sendable, CustomStringConvertible {
    /// A network namespace: no interface but a downed loopback, so no network at all.
    public var network: Bool
    /// A PID namespace: every process of a run dies with it.
    public var processTree: Bool
    /// A mount namespace: everything but the workspace is read-only, /tmp, /var/tmp and /dev/shm
    /// are private.
    public var readOnlyFileSystem: Bool
    /// Code runs as `nobody` (only when this process is root), so it can write nowhere but the
    /// workspace.
    public var dropsPrivileges: Bool
    public var notes: [String]

    /// All three namespaces.
    public var namespaces: Bool { network && processTree && readOnlyFileSystem }

    public var description: String {
        let spaces = [network ? "net" : nil, processTree ? "pid" : nil, readOnlyFileSystem ? "mount" : nil].compactMap { $0 }
        return "namespaces: \(spaces.isEmpty ? "none" : spaces.joined(separator: "+")), user: \(dropsPrivileges ? "nobody" : "same as worker")"
            + (notes.isEmpty ? "" : " — " + notes.joined(separator: "; "))
    }
}

/// A fresh workspace directory and a way to run Python (or a shell command) in it under limits.
///
/// Isolation, best first, as the host allows (see ``isolation``):
/// - `unshare --net --pid --mount` (with `--map-root-user` when not root): no network (a fresh
///   network namespace has only a downed loopback), the run's processes die together with it,
///   every mount but the workspace is remounted read-only, and /tmp, /var/tmp and /dev/shm are
///   private tmpfs mounts;
/// - when the worker is root, the code runs as `nobody` with the workspace chowned to it, so it
///   cannot write outside the workspace;
/// - always: cwd, HOME and TMPDIR are the workspace; rlimits on CPU, address space, file size,
///   processes; a wall-time limit and an output limit enforced by this process, which kills the
///   whole process group.
/// Without namespaces (no `unshare`, or the kernel refuses it) the code still has the rlimits,
/// the process group kill and the environment, and ``isolation`` says so.
///
/// `run` blocks the calling thread; call it from the attempt's own thread.
public final class Sandbox: Sendable {
    public let workspace: URL
    public let limits: SandboxLimits
    /// The workflow's own files in the workspace (``seed(_:_:)``), restored before each verifier run.
    let seeded = Mutex<[String: Data]>([:])

    /// Creates `root/name` afresh (an existing one is removed first).
    public init(root: URL, name: String, limits: SandboxLimits = SandboxLimits()) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let safeName = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
        let workspace = root.appendingPathComponent(safeName, isDirectory: true).standardizedFileURL
        if fm.fileExists(atPath: workspace.path) { try fm.removeItem(at: workspace) }
        try fm.createDirectory(at: workspace, withIntermediateDirectories: true)
        self.workspace = workspace
        self.limits = limits
    }

    /// Writes `contents` to `path` (relative, inside the workspace; directories are created).
    /// Never follows a link the code left there. Throws ``WorkspacePathError`` for a path that is
    /// absolute, has `..`, or runs through something that is not a directory.
    public func write(_ path: String, _ contents: String) throws {
        try write(path, Data(contents.utf8))
    }

    /// Writes `data` to `path` inside the workspace (see ``write(_:_:)-(String,String)``).
    public func write(_ path: String, _ data: Data) throws {
        try SandboxFiles.write(root: workspace, path, data, replace: true)
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

    /// The bytes of the regular file at `path` in the workspace (see ``read(_:)``), at most `limit`.
    public func readData(_ path: String, limit: Int = 64 << 20) -> Data? {
        SandboxFiles.read(root: workspace, path, limit: limit)
    }

    /// Removes the workspace.
    public func remove() {
        SandboxFiles.removeTree(workspace)
    }

    /// Runs `python3 file` in the workspace.
    public func runPython(file: String, cancel: (@Sendable () -> Bool)? = nil, deadline: Double? = nil) -> ExecutionResult {
        run([Self.python, "-B", file], cancel: cancel, deadline: deadline)
    }

    /// Runs `/bin/sh -c command` in the workspace.
    public func runShell(_ command: String, cancel: (@Sendable () -> Bool)? = nil, deadline: Double? = nil) -> ExecutionResult {
        run(["/bin/sh", "-c", command], cancel: cancel, deadline: deadline)
    }

    /// The host's isolation, probed on first use.
    public static var isolation: SandboxIsolation { probed.isolation }

    /// The Python interpreter sandboxed code runs with: one that `nobody` can execute.
    static let python: String = {
        if let env = ProcessInfo.processInfo.environment["AGENTFLOW_SANDBOX_PYTHON"] { return env }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") { return "/usr/bin/python3" }
        return "python3"
    }()

    /// ``python`` with links resolved and looked up in PATH: the binary the verifier's guard runs.
    static let realPython: String = {
        var path = python
        if !path.hasPrefix("/") {
            let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            path = dirs.map { "\($0)/\(python)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? python
        }
        return URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }()

    private struct Probe: Sendable {
        var isolation: SandboxIsolation
        var unsharePrefix: [String]
    }

    private static let probed: Probe = {
        let root = geteuid() == 0
        var notes: [String] = []
        let env = ProcessInfo.processInfo.environment
        // Strongest first; containers often refuse a fresh /proc or a PID namespace.
        let candidates: [(net: Bool, pid: Bool, mount: Bool, flags: [String])] = [
            (true, true, true, ["--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc"]),
            (true, true, true, ["--net", "--pid", "--fork", "--kill-child", "--mount"]),
            (true, false, true, ["--net", "--mount"]),
            (true, false, false, ["--net"]),
        ]
        var chosen: (net: Bool, pid: Bool, mount: Bool, flags: [String])?
        if env["AGENTFLOW_SANDBOX_NO_NAMESPACES"] == "1" {
            notes.append("namespaces disabled by AGENTFLOW_SANDBOX_NO_NAMESPACES")
        } else {
            for candidate in candidates {
                let prefix = ["unshare"] + candidate.flags + (root ? [] : ["--map-root-user"])
                if let status = try? spawnAndWait(prefix + ["/bin/true"]), status == 0 {
                    chosen = (candidate.net, candidate.pid, candidate.mount, prefix)
                    break
                }
            }
            if chosen == nil { notes.append("unshare is unavailable or refused: code can reach the network") }
        }
        let drops = root && FileManager.default.isExecutableFile(atPath: python) && python.hasPrefix("/usr/")
        if chosen?.mount != true && !drops {
            notes.append("code runs as the worker's user with a writable file system: only cwd/HOME/TMPDIR keep its writes in the workspace")
        }
        if root && !drops { notes.append("no /usr/bin/python3 that nobody can run: code runs as root") }
        let isolation = SandboxIsolation(
            network: chosen?.net ?? false, processTree: chosen?.pid ?? false, readOnlyFileSystem: chosen?.mount ?? false,
            dropsPrivileges: drops, notes: notes)
        return Probe(isolation: isolation, unsharePrefix: chosen?.flags ?? [])
    }()

    /// Runs `argv` in the workspace under the limits and the host's isolation.
    public func run(_ argv: [String], cancel: (@Sendable () -> Bool)? = nil, deadline: Double? = nil) -> ExecutionResult {
        run(argv, in: workspace, environment: actionEnvironment(workspace), cancel: cancel, deadline: deadline)
    }

    /// The environment of the code's own runs: the workspace is home, temporary directory and on
    /// Python's path.
    func actionEnvironment(_ directory: URL) -> [String: String] {
        ["HOME": directory.path, "TMPDIR": directory.path, "PYTHONPATH": directory.path, "PYTHONDONTWRITEBYTECODE": "1",
         "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"]
    }

    /// Runs `argv` in `directory` (the workspace, or a verifier's copy of it) with `environment`.
    func run(
        _ argv: [String], in directory: URL, environment: [String: String], cancel: (@Sendable () -> Bool)?, deadline: Double?
    ) -> ExecutionResult {
        let probe = Self.probed
        let config: [String: Any] = [
            "workspace": directory.path,
            "env": environment,
            "uid": probe.isolation.dropsPrivileges && Self.othersCanReach(directory) ? 65534 : -1,
            "private_tmp": probe.isolation.readOnlyFileSystem,
            "cpu": limits.cpuSeconds,
            "memory": limits.memoryBytes,
            "fsize": limits.fileBytes,
            "nproc": probe.isolation.dropsPrivileges || geteuid() == 0 ? limits.processes : max(limits.processes, 4096),
        ]
        let configJSON = String(decoding: (try? JSONSerialization.data(withJSONObject: config)) ?? Data(), as: UTF8.self)
        let full = probe.unsharePrefix + [Self.python, "-I", "-S", "-c", Self.launcher, configJSON, "--"] + argv
        var wall = limits.wallSeconds
        if let deadline { wall = min(wall, deadline - Date().timeIntervalSince1970) }
        return Self.execute(full, wallSeconds: max(0, wall), limits: limits, cancel: cancel)
    }

    /// Whether every directory above `url` lets others through (`o+x`), so that `nobody` can
    /// work in it. A checkout under /root does not: the code then keeps the worker's user and
    /// relies on the read-only mounts.
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

    /// Runs inside the sandbox before the code: private tmp mounts (as the namespace's pid 1),
    /// then a child that drops privileges, sets rlimits and the environment and execs the code.
    /// The launcher waits for it and exits with its status, or 128 + the signal that killed it
    /// (`unshare` itself loses that). Its own failures are printed and end the run with 126.
    static let launcher = #"""
        import ctypes, json, os, resource, sys
        cfg = json.loads(sys.argv[1]); argv = sys.argv[3:]; ws = cfg["workspace"]
        try:
            if cfg["private_tmp"]:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
                # Everything read-only but the workspace (a bind mount of its own) and private tmpfs
                # /tmp, /var/tmp, /dev/shm. Flags the kernel locks (nosuid, nodev, noexec) are kept.
                RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC = 1, 2, 4, 8, 32, 4096, 16384
                if libc.mount(ws.encode(), ws.encode(), None, BIND | REC, None) != 0:
                    print("sandbox: cannot bind the workspace", file=sys.stderr)
                with open("/proc/self/mountinfo") as f:
                    mounts = [(line.split()[4], line.split()[5].split(",")) for line in f]
                for point, opts in mounts:
                    if point == ws or point.startswith(("/proc", "/sys", "/dev")):
                        continue
                    flags = REMOUNT | BIND | RDONLY
                    flags |= NOSUID if "nosuid" in opts else 0
                    flags |= NODEV if "nodev" in opts else 0
                    flags |= NOEXEC if "noexec" in opts else 0
                    libc.mount(None, point.encode(), None, flags, None)
                for d in ("/tmp", "/var/tmp", "/dev/shm"):
                    if os.path.isdir(d) and not (ws + "/").startswith(d + "/"):
                        if libc.mount(b"tmpfs", d.encode(), b"tmpfs", 0, b"mode=1777,size=64m") != 0:
                            print(f"sandbox: cannot mount a private {d}", file=sys.stderr)
            uid = cfg["uid"]
            if uid >= 0:
                for top, dirs, files in os.walk(ws):
                    for n in [top] + [os.path.join(top, f) for f in dirs + files]:
                        os.lchown(n, uid, uid)
        except Exception as e:
            print(f"sandbox: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(126)
        pid = os.fork()
        if pid == 0:
            try:
                if uid >= 0:
                    os.setgroups([]); os.setgid(uid); os.setuid(uid)
                def limit(r, soft, hard=None):
                    resource.setrlimit(r, (soft, soft if hard is None else hard))
                limit(resource.RLIMIT_CPU, cfg["cpu"], cfg["cpu"] + 1)
                limit(resource.RLIMIT_AS, cfg["memory"])
                limit(resource.RLIMIT_FSIZE, cfg["fsize"])
                limit(resource.RLIMIT_NPROC, cfg["nproc"])
                limit(resource.RLIMIT_CORE, 0)
                os.chdir(ws)
                os.closerange(3, 1024)
                os.execvpe(argv[0], argv, cfg["env"])
            except BaseException as e:
                print(f"sandbox: {type(e).__name__}: {e}", file=sys.stderr)
                os._exit(126)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                pass
        sys.exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        """#

    /// Spawns `argv` (first element looked up in PATH) in its own session, reads its output
    /// until it exits, and kills its process group on the wall-time or output limit.
    static func execute(
        _ argv: [String], wallSeconds: Double, limits: SandboxLimits, cancel: (@Sendable () -> Bool)?
    ) -> ExecutionResult {
        let start = Date().timeIntervalSince1970
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            return ExecutionResult(exitCode: 127, signal: nil, output: "sandbox: pipe failed: errno \(errno)", timedOut: false, outputLimitExceeded: false, seconds: 0)
        }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        posix_spawn_file_actions_addclose(&actions, writeEnd)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own session and process group, so one kill(-pid) reaches every descendant.
        posix_spawnattr_setflags(&attributes, Int16(0x80))  // POSIX_SPAWN_SETSID (glibc), not imported

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for p in cEnv { free(p) } }

        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        close(writeEnd)
        guard spawned == 0 else {
            close(readEnd)
            return ExecutionResult(
                exitCode: 127, signal: nil, output: "sandbox: cannot start \(argv[0]): \(String(cString: strerror(spawned)))",
                timedOut: false, outputLimitExceeded: false, seconds: 0)
        }

        var output = OutputBuffer(kept: limits.keptOutputBytes)
        var timedOut = false
        var overflow = false
        var status: Int32 = 0
        var exited = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        var readOpen = true
        var killedAt: Double?
        while readOpen || !exited {
            let now = Date().timeIntervalSince1970
            if !exited {
                let r = waitpid(pid, &status, WNOHANG)
                if r == pid {
                    exited = true
                    // Stragglers (daemonised children) still hold the pipe: end them too.
                    kill(-pid, SIGKILL)
                    killedAt = killedAt ?? now
                }
            }
            if killedAt == nil && (now - start >= wallSeconds || cancel?() == true) {
                timedOut = true
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                killedAt = now
            }
            if !readOpen {
                if !exited { usleep(5000) }
                continue
            }
            // After a kill, give the pipe a moment to drain, then stop reading.
            if let killedAt, now - killedAt > 1 {
                readOpen = false
                continue
            }
            var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 20)
            if ready > 0 {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
                if n > 0 {
                    output.append(buffer[0..<n])
                    if output.total > limits.maxOutputBytes && killedAt == nil {
                        overflow = true
                        kill(-pid, SIGKILL)
                        kill(pid, SIGKILL)
                        killedAt = now
                    }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    readOpen = false
                }
            }
        }
        close(readEnd)
        // Children forked while the group was being killed can outlive one kill: repeat until
        // the group is empty (ESRCH).
        for _ in 0..<200 where kill(-pid, SIGKILL) == 0 { usleep(10000) }
        // The launcher reports a signal as 128 + its number, like a shell.
        var exitCode: Int32? = (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
        var signal: Int32? = (status & 0x7f) != 0 ? status & 0x7f : nil
        if let code = exitCode, code > 128, code < 128 + 65 {
            signal = code - 128
            exitCode = nil
        }
        return ExecutionResult(
            exitCode: exitCode, signal: signal, output: output.text, timedOut: timedOut, outputLimitExceeded: overflow,
            seconds: Date().timeIntervalSince1970 - start)
    }

    /// Spawns `argv` with no output and waits for it; the exit status.
    static func spawnAndWait(_ argv: [String]) throws -> Int32 {
        let result = execute(argv, wallSeconds: 10, limits: SandboxLimits(), cancel: nil)
        return result.exitCode ?? 128 + (result.signal ?? 0)
    }
}

/// Keeps the head and the tail of a long output, counting everything.
struct OutputBuffer {
    let kept: Int
    private var head: [UInt8] = []
    private var tail: [UInt8] = []
    private(set) var total = 0

    init(kept: Int) { self.kept = kept }

    mutating func append(_ bytes: ArraySlice<UInt8>) {
        total += bytes.count
        let half = kept / 2
        var rest = bytes[...]
        if head.count < half {
            let take = min(half - head.count, rest.count)
            head.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
        }
        tail.append(contentsOf: rest)
        if tail.count > 2 * half { tail.removeFirst(tail.count - half) }
    }

    var text: String {
        let half = kept / 2
        let shownTail = tail.suffix(half)
        let omitted = total - head.count - shownTail.count
        if omitted <= 0 { return String(decoding: head + tail, as: UTF8.self) }
        return String(decoding: head, as: UTF8.self) + "\n… [\(omitted) bytes omitted] …\n"
            + String(decoding: shownTail, as: UTF8.self)
    }
}
