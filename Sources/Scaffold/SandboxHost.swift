import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Whether a worker runs model-written code in the sandbox.
public enum SandboxMode: Sendable, Equatable {
    /// Under bubblewrap, or not at all: a run without it fails with the reason.
    case bubblewrap
    /// Without namespaces (`--unsafe-no-sandbox`): the code sees the host's file system and
    /// network; only the cgroup (or rlimits), the clean environment and the `nobody` user (for a
    /// root worker) are kept.
    case unsafeNoSandbox
}

/// What this host gives the sandbox, probed once per process (``current``).
public struct SandboxHost: Sendable {
    /// The `bwrap` binary, when one runs here with every namespace the sandbox asks for.
    public var bubblewrap: String?
    /// Why bubblewrap cannot be used (not installed, or refused by the kernel), else nil.
    public var bubblewrapProblem: String?
    public var cgroups: CgroupSupport
    /// Workspaces are size-limited tmpfs mounts (the worker may mount: it is root).
    public var tmpfsWorkspaces: Bool
    /// The user sandboxed code runs as outside its namespaces when the worker is root
    /// (`nobody`), nil to keep the worker's user.
    public var dropToUser: uid_t?
    /// The interpreter's real path and the directories it needs (standard library, site
    /// packages, its own libraries), bound read-only into the sandbox.
    public var python: PythonLayout

    /// The host this process runs on.
    public static let current = SandboxHost.probe()

    /// The user id sandboxed code has inside its user namespace (named `sandbox` there).
    static let sandboxUser: uid_t = 65534

    /// One line for a worker's registration and `agentflow workers`.
    public func summary(_ mode: SandboxMode) -> String {
        var parts: [String] = []
        switch mode {
        case .unsafeNoSandbox: parts.append("none (--unsafe-no-sandbox)")
        case .bubblewrap: parts.append(bubblewrap != nil ? "bubblewrap" : "bubblewrap unavailable")
        }
        switch cgroups {
        case .off: parts.append("cgroups: off")
        default: parts.append(cgroups.description)
        }
        parts.append(tmpfsWorkspaces ? "workspace: tmpfs" : "workspace: not size-limited")
        return parts.joined(separator: ", ")
    }

    /// Why a worker in `mode` must not run model code here, or nil.
    public func refusal(_ mode: SandboxMode) -> String? {
        guard mode == .bubblewrap, let problem = bubblewrapProblem else { return nil }
        return "the sandbox needs bubblewrap: \(problem). Install it (tools/install-deps.sh, or apt-get install bubblewrap), "
            + "or start the worker with --unsafe-no-sandbox to run model-written code without namespaces"
    }

    static func probe() -> SandboxHost {
        let python = PythonLayout.probe(Sandbox.python)
        let cgroups = CgroupSupport.probe()
        SandboxCgroup.removeStale(cgroups)
        let root = geteuid() == 0
        if root { Sandbox.unmountStale() }
        var host = SandboxHost(
            bubblewrap: nil, bubblewrapProblem: nil, cgroups: cgroups, tmpfsWorkspaces: root && Self.canMountTmpfs(),
            dropToUser: root ? 65534 : nil, python: python)
        let env = ProcessInfo.processInfo.environment
        let path = env["AGENTFLOW_BWRAP"] ?? ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let path, FileManager.default.isExecutableFile(atPath: path) else {
            host.bubblewrapProblem = "bwrap is not installed"
            return host
        }
        // A run with every namespace and option the sandbox uses, as the user it runs as.
        var argv = ["/bin/sh", "-c", "exec \"$@\"", "sh"]
        if let user = host.dropToUser { argv += setprivArguments(user) }
        argv += [path, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--disable-userns",
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
        argv += rootLinks().flatMap { ["--symlink", $0.target, $0.path] }
        argv += ["--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
        let result = SandboxProcess.execute(argv, environment: SandboxProcess.minimalEnvironment, wall: .seconds(20), limits: SandboxLimits(), cancel: nil)
        if result.exitCode == 0 {
            host.bubblewrap = path
        } else {
            let said = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            host.bubblewrapProblem = "bwrap cannot create the sandbox's namespaces here (\(said.isEmpty ? result.summary : said))"
        }
        return host
    }

    /// `setpriv` arguments that run the rest as `user` with no groups and no capabilities.
    static func setprivArguments(_ user: uid_t) -> [String] {
        ["/usr/bin/setpriv", "--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--inh-caps=-all", "--"]
    }

    /// `/bin`, `/lib`, `/lib64`, `/sbin` as links into `/usr` where the host has merged them.
    static func rootLinks() -> [(path: String, target: String)] {
        ["/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin"].compactMap { path in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) else { return nil }
            return (path, target)
        }
    }

    /// Whether this process may mount a tmpfs (it is root, outside a container that forbids it).
    private static func canMountTmpfs() -> Bool {
        var template = Array(FileManager.default.temporaryDirectory.appendingPathComponent("agentflow-mount-XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else { return false }
        let dir = String(cString: made)
        defer { rmdir(dir) }
        guard mount("agentflow-probe", dir, "tmpfs", UInt(MS_NOSUID | MS_NODEV), "size=1m") == 0 else { return false }
        umount2(dir, Int32(MNT_DETACH))
        return true
    }
}

/// Where the sandbox's Python lives on the host.
public struct PythonLayout: Sendable, Equatable {
    /// The interpreter binary, links resolved.
    public var executable: String
    /// Directories it reads (standard library, extension modules, site packages, its shared
    /// library's directory), outermost first, none inside another.
    public var directories: [String]

    /// The interpreter is in `/usr/bin` (through a merged `/bin` too): the sandbox's `/usr/bin`
    /// holds it, at the same path.
    var inUsrBin: Bool { (executable as NSString).deletingLastPathComponent == "/usr/bin" }

    static func probe(_ python: String) -> PythonLayout {
        let executable = Sandbox.realPython
        let script = """
            import json, site, sys, sysconfig
            paths = sysconfig.get_paths()
            dirs = [paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")] + site.getsitepackages()
            libdir = sysconfig.get_config_var("LIBDIR")
            if libdir and sysconfig.get_config_var("Py_ENABLE_SHARED"):
                dirs.append(libdir)
            print(json.dumps(dirs))
            """
        let result = SandboxProcess.execute(
            [executable, "-I", "-S", "-c", script], environment: SandboxProcess.minimalEnvironment, wall: .seconds(20),
            limits: SandboxLimits(), cancel: nil)
        var directories: [String] = []
        if result.exitCode == 0, let data = result.output.data(using: .utf8),
           let list = try? JSONSerialization.jsonObject(with: data) as? [String] {
            let existing = Set(list.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }).filter {
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && isDirectory.boolValue
            }
            directories = existing.sorted().filter { dir in !existing.contains { dir != $0 && dir.hasPrefix($0 + "/") } }
        }
        return PythonLayout(executable: executable, directories: directories)
    }
}
