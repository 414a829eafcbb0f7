import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How this host can hold an attempt's processes in a cgroup of their own.
public enum CgroupSupport: Sendable, Equatable, CustomStringConvertible {
    /// The unified hierarchy: `parent` is the directory attempt cgroups are created in.
    case v2(parent: String)
    /// Separate hierarchies: the directory attempt cgroups are created in, per controller
    /// (`memory` and `pids` always, `cpu` where mounted).
    case v1(parents: [String: String])
    /// No cgroups: per-process rlimits only. `reason` says why.
    case off(reason: String)

    public var description: String {
        switch self {
        case .v2: "cgroups v2 (memory, pids, cpu)"
        case .v1(let parents): "cgroups v1 (\(parents.keys.sorted().joined(separator: ", ")))"
        case .off(let reason): "cgroups: off (\(reason))"
        }
    }

    public var isOn: Bool {
        if case .off = self { return false }
        return true
    }

    /// Finds the cgroup this process may create children in: its own, in the unified
    /// hierarchy when the memory, pids and cpu controllers are there, else in the v1 memory and
    /// pids hierarchies (cpu too where mounted). A probe child is created and removed.
    static func probe() -> CgroupSupport {
        if ProcessInfo.processInfo.environment["AGENTFLOW_SANDBOX_NO_CGROUPS"] == "1" {
            return .off(reason: "disabled by AGENTFLOW_SANDBOX_NO_CGROUPS")
        }
        let own = ownCgroups()
        let mounts = cgroupMounts()
        var problems: [String] = []
        if let unified = mounts.unified, let path = own[""] {
            let dir = unified + (path == "/" ? "" : path)
            let controllers = (try? String(contentsOfFile: dir + "/cgroup.controllers", encoding: .utf8))?.split(separator: " ").map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines)
            } ?? []
            if ["memory", "pids", "cpu"].allSatisfy(controllers.contains) {
                if let parent = CgroupV2.prepare(dir) { return .v2(parent: parent) }
                problems.append("cannot delegate controllers in \(dir)")
            }
        }
        var parents: [String: String] = [:]
        for controller in ["memory", "pids", "cpu"] {
            guard let mount = mounts.v1[controller], let path = own[controller] else { continue }
            let dir = mount + (path == "/" ? "" : path)
            let probe = dir + "/agentflow-probe-\(getpid())"
            if mkdir(probe, 0o755) == 0 || errno == EEXIST {
                rmdir(probe)
                parents[controller] = dir
            } else {
                problems.append("cannot create a cgroup in \(dir): \(String(cString: strerror(errno)))")
            }
        }
        if parents["memory"] != nil && parents["pids"] != nil { return .v1(parents: parents) }
        if mounts.unified == nil && mounts.v1.isEmpty { problems.append("no cgroup file system is mounted") }
        return .off(reason: problems.first ?? "no memory and pids controllers this worker may use")
    }

    /// This process's cgroup per v1 controller, and `""` for the unified hierarchy.
    private static func ownCgroups() -> [String: String] {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return [:] }
        var own: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[1].isEmpty { own[""] = path } else {
                for controller in parts[1].split(separator: ",") { own[String(controller)] = path }
            }
        }
        return own
    }

    /// Mount points of the unified hierarchy and of each v1 controller.
    private static func cgroupMounts() -> (unified: String?, v1: [String: String]) {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return (nil, [:]) }
        var unified: String?
        var v1: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " ")
            let tail = halves[1].split(separator: " ")
            guard fields.count >= 5, tail.count >= 3 else { continue }
            let point = String(fields[4])
            if tail[0] == "cgroup2" { unified = unified ?? point }
            if tail[0] == "cgroup" {
                for option in tail[2].split(separator: ",") where ["memory", "pids", "cpu"].contains(String(option)) {
                    v1[String(option)] = v1[String(option)] ?? point
                }
            }
        }
        return (unified, v1)
    }
}

/// The unified hierarchy's rule that a cgroup with processes cannot hand controllers to its
/// children: the worker moves itself into a leaf first.
enum CgroupV2 {
    static func prepare(_ dir: String) -> String? {
        if write(dir + "/cgroup.subtree_control", "+memory +pids +cpu") { return dir }
        guard errno == EBUSY else { return nil }
        let leaf = dir + "/agentflow-worker"
        guard mkdir(leaf, 0o755) == 0 || errno == EEXIST else { return nil }
        let procs = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
        for pid in procs.split(separator: "\n") { _ = write(leaf + "/cgroup.procs", String(pid)) }
        return write(dir + "/cgroup.subtree_control", "+memory +pids +cpu") ? dir : nil
    }

    @discardableResult
    static func write(_ path: String, _ value: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return value.withCString { Glibc.write(fd, $0, strlen($0)) } >= 0
    }
}

/// One attempt's cgroup: memory (swap included), process and CPU limits over every process of
/// the attempt, not per process or per user. Created with the sandbox, removed with it; every
/// process still in it is killed first.
final class SandboxCgroup: Sendable {
    /// The directories of this cgroup (one, or one per v1 controller).
    let directories: [String: String]
    let version: Int

    /// Creates the cgroup named `name` with `limits`, or nil when the host has none to give.
    init?(support: CgroupSupport, name: String, limits: SandboxLimits) {
        let leaf = "agentflow-\(getpid())-\(name)"
        var directories: [String: String] = [:]
        switch support {
        case .off:
            return nil
        case .v2(let parent):
            directories[""] = parent + "/" + leaf
            version = 2
        case .v1(let parents):
            for (controller, parent) in parents { directories[controller] = parent + "/" + leaf }
            version = 1
        }
        for dir in directories.values {
            guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
                for made in directories.values { rmdir(made) }
                return nil
            }
        }
        self.directories = directories
        let memory = String(limits.memoryBytes)
        let cpuQuota = limits.cpus > 0 && limits.cpus.isFinite ? String(Int(limits.cpus * 100_000)) : nil
        if version == 2 {
            let dir = directories[""]!
            CgroupV2.write(dir + "/memory.max", memory)
            CgroupV2.write(dir + "/memory.swap.max", "0")
            CgroupV2.write(dir + "/pids.max", String(limits.processes))
            if let cpuQuota { CgroupV2.write(dir + "/cpu.max", "\(cpuQuota) 100000") }
        } else {
            if let dir = directories["memory"] {
                CgroupV2.write(dir + "/memory.limit_in_bytes", memory)
                CgroupV2.write(dir + "/memory.memsw.limit_in_bytes", memory)
                CgroupV2.write(dir + "/memory.swappiness", "0")
            }
            if let dir = directories["pids"] { CgroupV2.write(dir + "/pids.max", String(limits.processes)) }
            if let dir = directories["cpu"], let cpuQuota {
                CgroupV2.write(dir + "/cpu.cfs_period_us", "100000")
                CgroupV2.write(dir + "/cpu.cfs_quota_us", cpuQuota)
            }
        }
    }

    /// The files a process writes its pid to, to join the cgroup (every hierarchy).
    var procsFiles: [String] { directories.values.sorted().map { $0 + "/cgroup.procs" } }

    private var memoryDirectory: String? { directories[version == 2 ? "" : "memory"] }

    /// How many times the kernel killed a process of the cgroup for memory so far.
    var oomKills: Int {
        guard let dir = memoryDirectory else { return 0 }
        let file = version == 2 ? "/memory.events" : "/memory.oom_control"
        guard let text = try? String(contentsOfFile: dir + file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("oom_kill ") {
            return Int(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    /// Pids in the cgroup (as this process sees them).
    var pids: [pid_t] {
        guard let dir = memoryDirectory ?? directories.values.first,
              let text = try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Kills every process in the cgroup, repeating until it is empty (a process may fork while
    /// it is being killed), for at most `seconds` of real time (a grace for real processes, not
    /// an attempt's deadline: it never reads the worker's clock).
    func killAll(seconds: Double = 2) {
        if version == 2, let dir = directories[""], CgroupV2.write(dir + "/cgroup.kill", "1") {
            let until = ContinuousClock.now + .seconds(seconds)
            var pause: useconds_t = 100
            while !pids.isEmpty && ContinuousClock.now < until {
                usleep(pause)
                pause = min(pause * 2, 5000)
            }
            return
        }
        let until = ContinuousClock.now + .seconds(seconds)
        var pause: useconds_t = 100
        while ContinuousClock.now < until {
            let left = pids
            if left.isEmpty { return }
            for pid in left { kill(pid, SIGKILL) }
            usleep(pause)
            pause = min(pause * 2, 5000)
        }
    }

    /// Kills what is left and removes the cgroup.
    func remove() {
        killAll()
        for dir in directories.values {
            for _ in 0..<100 where rmdir(dir) != 0 && errno == EBUSY { usleep(10000) }
        }
    }

    /// Removes cgroups left by worker processes that are gone (their names carry the pid).
    static func removeStale(_ support: CgroupSupport) {
        let parents: [String]
        switch support {
        case .off: return
        case .v2(let parent): parents = [parent]
        case .v1(let map): parents = Array(map.values)
        }
        for parent in parents {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { continue }
            for name in names where name.hasPrefix("agentflow-") {
                guard let pid = name.dropFirst("agentflow-".count).split(separator: "-").first.flatMap({ pid_t($0) }),
                      pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
                let dir = parent + "/" + name
                for p in ((try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n") {
                    if let p = pid_t(p) { kill(p, SIGKILL) }
                }
                rmdir(dir)
            }
        }
    }
}
