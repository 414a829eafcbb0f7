import AgentFlowCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Resource limits of one attempt's sandbox. Memory, processes and CPU share hold for the whole
/// attempt (its cgroup) where the host gives cgroups, else per process (rlimits).
public struct SandboxLimits: Sendable, Equatable {
    /// How long one run may take before everything it started is killed (the attempt's
    /// deadline cuts it shorter).
    public var wall: Duration
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
    /// The worker's GPUs' device nodes (and the driver's), given to an attempt whose subtask
    /// says `sandbox: {gpu: true}`.
    public var gpuDevices: [String] = []

    public init(
        wall: Duration = .seconds(10), cpuSeconds: Int = 10, memoryBytes: Int = 512 << 20, fileBytes: Int = 16 << 20,
        processes: Int = 64, keptOutputBytes: Int = 4096, maxOutputBytes: Int = 2 << 20, cpus: Double = 1,
        workspaceBytes: Int = 256 << 20, devices: [String] = []
    ) {
        self.wall = wall
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
        if let v = spec.wall { wall = v }
        if let v = spec.cpuSeconds { cpuSeconds = v }
        if let v = spec.devices { devices = v }
        if spec.gpu == true { devices += gpuDevices }
    }

    /// The limits of an attempt whose subtask asks for `spec`: a limit it sets only lowers
    /// this one (the worker's, from the cluster file, is the ceiling), and `gpu: true` adds the
    /// worker's GPU device nodes.
    public func narrowed(by spec: SandboxSpec) -> SandboxLimits {
        var limits = self
        if let v = spec.memoryBytes { limits.memoryBytes = min(memoryBytes, v) }
        if let v = spec.processes { limits.processes = min(processes, v) }
        if let v = spec.cpus { limits.cpus = cpus > 0 ? min(cpus, v) : v }
        if let v = spec.workspaceBytes { limits.workspaceBytes = min(workspaceBytes, v) }
        if let v = spec.wall { limits.wall = min(wall, v) }
        if let v = spec.cpuSeconds { limits.cpuSeconds = min(cpuSeconds, v) }
        if spec.gpu == true { limits.devices += gpuDevices }
        return limits
    }
}

extension SandboxLimits {
    /// The device nodes of NVIDIA GPUs `gpus` and of the driver, as the sandbox binds them.
    public static func nvidiaDevices(_ gpus: [Int]) -> [String] {
        gpus.map { "/dev/nvidia\($0)" } + ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"]
    }
}
