import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The command line that starts one sandboxed run:
///
///     /bin/sh -c PRELUDE sh DIRECTORY CGROUP-PROCS… -- [setpriv …] bwrap ARGS… -- COMMAND…
///
/// The prelude (a POSIX shell, so no exec of anything else) writes its pid into the attempt's
/// cgroup — every process of the run is in it from the start — sets the per-process rlimits and
/// execs the rest; `setpriv` drops a root worker to `nobody`; bubblewrap builds the sandbox.
struct SandboxLaunch {
    var host: SandboxHost
    var runtime: SandboxRuntime
    var limits: SandboxLimits
    var cgroup: SandboxCgroup?
    var mode: SandboxMode

    /// What runs inside: the command, the directory it runs in (the workspace or a verifier's
    /// copy, at the same path inside), its environment, and read-only files it needs besides.
    struct Run {
        var command: [String]
        var directory: URL
        var environment: [String: String]
        var verifier: Bool
        var extraFiles: [String] = []
    }

    /// The full command line and the launcher's environment, or why the run cannot start.
    func commandLine(_ run: Run) -> Result<(argv: [String], environment: [String: String]), SandboxRuntimeError> {
        var argv = ["/bin/sh", "-c", prelude(), "sh", run.directory.path] + (cgroup?.procsFiles ?? []) + ["--"]
        let dropTo = host.dropToUser.flatMap { Sandbox.othersCanReach(run.directory) && Sandbox.othersCanReach(runtime.directory) ? $0 : nil }
        if let user = dropTo { argv += SandboxHost.setprivArguments(user) }
        switch mode {
        case .unsafeNoSandbox:
            return .success((argv + run.command, run.environment))
        case .bubblewrap:
            guard let bwrap = host.bubblewrap else {
                return .failure(SandboxRuntimeError(message: host.refusal(.bubblewrap) ?? "bubblewrap is unavailable"))
            }
            return .success((argv + [bwrap] + bubblewrapArguments(run) + ["--"] + run.command, SandboxProcess.minimalEnvironment))
        }
    }

    /// Enters the run's directory, joins the cgroup, sets the rlimits (in the shell's own units:
    /// seconds, 512-byte blocks, KiB), execs the rest. Without a cgroup, memory and processes are
    /// limited per process.
    func prelude() -> String {
        var script = #"cd -- "$1" || exit 125; shift; "#
        script += #"while [ "$1" != -- ]; do echo $$ > "$1" || { echo "sandbox: cannot join the cgroup ($1)" >&2; exit 125; }; shift; done; shift; "#
        script += "ulimit -c 0; ulimit -S -t \(limits.cpuSeconds); ulimit -H -t \(limits.cpuSeconds + 1); "
        script += "ulimit -f \(max(1, limits.fileBytes / 512)); "
        if cgroup == nil {
            script += "ulimit -v \(max(1024, limits.memoryBytes / 1024)); "
            // RLIMIT_NPROC counts every process of the user: it binds only a user of its own.
            if host.dropToUser != nil || mode == .bubblewrap { script += "ulimit -\(Self.processLimitFlag) \(limits.processes); " }
        }
        return script + #"exec "$@""#
    }

    /// bubblewrap's arguments: new user, pid, ipc, uts, net and cgroup namespaces, no further
    /// user namespaces, no capabilities; an empty root with the runtime's `/usr/bin`, the system
    /// libraries and Python read-only, `passwd`/`group`, a fresh `/proc`, a minimal `/dev` (plus
    /// the devices ``SandboxLimits/devices`` names), a private size-limited `/tmp`; the run's
    /// directory read-write at its own path; a cleared environment.
    func bubblewrapArguments(_ run: Run) -> [String] {
        var args = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
                    "--disable-userns", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                    "--uid", String(SandboxHost.sandboxUser), "--gid", String(SandboxHost.sandboxUser), "--hostname", "sandbox"]
        args += ["--ro-bind", (run.verifier ? runtime.sandboxVerifierBin : runtime.sandboxBin).path, "/usr/bin"]
        for dir in Self.libraryDirectories { args += ["--ro-bind", dir, dir] }
        for link in SandboxHost.rootLinks() where !link.path.hasSuffix("bin") || link.path == "/bin" {
            args += ["--symlink", link.target, link.path]
        }
        if !host.python.inUsrBin { args += ["--ro-bind", host.python.executable, host.python.executable] }
        for dir in host.python.directories where !Self.libraryDirectories.contains(where: { dir == $0 || dir.hasPrefix($0 + "/") }) {
            args += ["--ro-bind", dir, dir]
        }
        args += ["--ro-bind", runtime.sandboxEtc.path, "/etc", "--ro-bind", runtime.sandboxAgentFlow.path, SandboxRuntime.agentflowMount]
        args += ["--proc", "/proc", "--dev", "/dev"]
        for device in limits.devices where FileManager.default.fileExists(atPath: device) { args += ["--dev-bind", device, device] }
        args += ["--size", String(limits.workspaceBytes), "--tmpfs", "/tmp"]
        args += ["--bind", run.directory.path, run.directory.path]
        for file in run.extraFiles { args += ["--ro-bind", file, file] }
        args += ["--chdir", run.directory.path, "--clearenv"]
        for (key, value) in run.environment.sorted(by: { $0.key < $1.key }) { args += ["--setenv", key, value] }
        return args
    }

    /// The shell's `ulimit` option for RLIMIT_NPROC: `-p` in dash, `-u` in bash.
    static let processLimitFlag = URL(fileURLWithPath: "/bin/sh").resolvingSymlinksInPath().lastPathComponent == "dash" ? "p" : "u"

    /// The host's shared-library directories (multiarch first), bound read-only.
    static let libraryDirectories: [String] = {
        var dirs: [String] = []
        var candidates = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib32"]
        // Hosts whose /lib is not a link into /usr keep libraries there too.
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: "/lib")) == nil {
            candidates += ["/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu"]
        }
        if (try? FileManager.default.destinationOfSymbolicLink(atPath: "/lib64")) == nil { candidates.append("/lib64") }
        for dir in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue,
               (try? FileManager.default.destinationOfSymbolicLink(atPath: dir)) == nil {
                dirs.append(dir)
            }
        }
        return dirs
    }()
}
