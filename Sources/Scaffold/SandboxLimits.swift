import AgentFlowCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Resource limits of one attempt's sandbox. Memory, processes and CPU share hold for the whole
/// attempt (its cgroup) where the host gives cgroups, else per process (rlimits).
public struct SandboxLimits: Sendable, Equatable {
    /// Wall-clock seconds of one run before everything it started is killed (the attempt's
    /// deadline cuts it shorter).
    public var wallSeconds: Double
    /// CPU seconds of one process (RLIMIT_CPU).
    public var cpuSeconds: Int
    /// Memory of the attempt's processes together, swap included (cgroup); per process address
    /// space (RLIMIT_AS) without cgroups.
    public var memoryBytes: Int
    /// Largest file the code may write (RLIMIT_FSIZE).
    public var fileBytes: Int
    /// Most processes of the attempt (cgroup `pids.max`); without cgroups, of the sandbox user
    /// (RLIMIT_NPROC).
    public var processes: Int
    /// Output kept for the observation (head and tail; the middle is elided).
    public var keptOutputBytes: Int
    /// Output beyond which the run is killed.
    public var maxOutputBytes: Int
    /// CPUs the attempt may use at once (cgroup CPU quota); 0: no quota.
    public var cpus: Double
    /// Size of the workspace (a tmpfs of its own where the worker may mount one) and of the
    /// private `/tmp`.
    public var workspaceBytes: Int
    /// Device nodes the code may open (`/dev/nvidia0`, `/dev/nvidiactl`, …). None by default: the
    /// sandbox's `/dev` has only null, zero, full, random, urandom, tty and a pty.
    public var devices: [String]

    public init(
        wallSeconds: Double = 10, cpuSeconds: Int = 10, memoryBytes: Int = 512 << 20, fileBytes: Int = 16 << 20,
        processes: Int = 64, keptOutputBytes: Int = 4096, maxOutputBytes: Int = 2 << 20, cpus: Double = 1,
        workspaceBytes: Int = 256 << 20, devices: [String] = []
    ) {
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.memoryBytes = memoryBytes
        self.fileBytes = fileBytes
        self.processes = processes
        self.keptOutputBytes = keptOutputBytes
        self.maxOutputBytes = maxOutputBytes
        self.cpus = cpus
        self.workspaceBytes = workspaceBytes
        self.devices = devices
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
    /// The kernel killed a process of the run for the attempt's memory limit.
    public var memoryLimitHit: Bool

    public init(
        exitCode: Int32?, signal: Int32?, output: String, timedOut: Bool, outputLimitExceeded: Bool, seconds: Double,
        memoryLimitHit: Bool = false
    ) {
        self.exitCode = exitCode
        self.signal = signal
        self.output = output
        self.timedOut = timedOut
        self.outputLimitExceeded = outputLimitExceeded
        self.seconds = seconds
        self.memoryLimitHit = memoryLimitHit
    }

    public var succeeded: Bool { exitCode == 0 && !timedOut && !outputLimitExceeded }

    /// One line saying how it ended, for observations.
    public var summary: String {
        if timedOut { return "killed: wall-time limit" }
        if outputLimitExceeded { return "killed: output limit" }
        if memoryLimitHit { return "killed: memory limit" + (exitCode.map { ", exit code \($0)" } ?? "") }
        if let signal { return "killed by signal \(signal)" + (signal == SIGXCPU || signal == SIGKILL ? " (CPU or memory limit)" : "") }
        return "exit code \(exitCode ?? -1)"
    }
}

extension SandboxLimits {
    /// Takes the limits the cluster file's `sandbox:` block sets; the others stay.
    public mutating func apply(_ spec: SandboxSpec) {
        if let v = spec.memoryBytes { memoryBytes = v }
        if let v = spec.processes { processes = v }
        if let v = spec.cpus { cpus = v }
        if let v = spec.workspaceBytes { workspaceBytes = v }
        if let v = spec.wallSeconds { wallSeconds = v }
        if let v = spec.cpuSeconds { cpuSeconds = v }
        if let v = spec.devices { devices = v }
    }
}
