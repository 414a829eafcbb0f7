import Foundation
import Yams

/// The cluster file's `sandbox:` block: limits of every attempt's sandbox on the cluster's
/// workers (DESIGN.md §11); unset fields keep the worker's defaults. A subtask's `sandbox:`
/// may ask for less (never more than its worker's), and for its worker's GPUs (`gpu: true`);
/// `devices` is the cluster file's only.
///
/// ```yaml
/// sandbox: {memory: 1GiB, processes: 128, cpus: 2, workspace: 512MiB, wall: 30s, cpuTime: 30s, devices: [/dev/nvidia0, /dev/nvidiactl]}
/// ```
public struct SandboxSpec: Codable, Sendable, Equatable {
    /// Memory of one attempt's processes together (bytes).
    public var memoryBytes: Int?
    /// Processes of one attempt together.
    public var processes: Int?
    /// CPUs one attempt may use at once.
    public var cpus: Double?
    /// Size of the workspace and of the private /tmp (bytes).
    public var workspaceBytes: Int?
    /// Wall-clock seconds of one run of code, as files, the wire and the store carry it; read
    /// it as ``wall``.
    public var wallSeconds: Double?
    /// How long one run of code may take.
    public var wall: Duration? { wallSeconds.map(Duration.clampedSeconds) }
    /// CPU seconds of one process.
    public var cpuSeconds: Int?
    /// Device nodes the code may open (GPUs: `/dev/nvidia0`, `/dev/nvidiactl`, `/dev/nvidia-uvm`).
    public var devices: [String]?
    /// The attempt may open its worker's GPUs (`/dev/nvidiaN` of the worker's `gpus`, and the
    /// driver's control nodes).
    public var gpu: Bool?

    public init() {}

    static func parse(_ node: Node, _ r: YAMLReader, subtask: Bool = false) throws -> SandboxSpec {
        let m = try r.mapping(node, "sandbox")
        var keys: Set<String> = ["memory", "processes", "cpus", "workspace", "wall", "cpuTime", "gpu"]
        if !subtask { keys.insert("devices") }
        try r.checkKeys(m, allowed: keys, in: "sandbox")
        var spec = SandboxSpec()
        if let n = m["gpu"] { spec.gpu = try r.bool(n, "sandbox.gpu") }
        if let n = m["memory"] { spec.memoryBytes = try size(n, r, "sandbox.memory", within: (16 << 20)...(1 << 40)) }
        if let n = m["workspace"] { spec.workspaceBytes = try size(n, r, "sandbox.workspace", within: (1 << 20)...(1 << 40)) }
        if let n = m["processes"] {
            let v = try r.int(n, "sandbox.processes")
            guard (4...65536).contains(v) else { throw r.error(n, "sandbox.processes must be from 4 to 65536, got \(v)") }
            spec.processes = v
        }
        if let n = m["cpus"] {
            let v = try r.double(n, "sandbox.cpus")
            guard v.isFinite, v >= 0.01, v <= 1024 else { throw r.error(n, "sandbox.cpus must be from 0.01 to 1024, got \(v)") }
            spec.cpus = v
        }
        if let n = m["wall"] {
            spec.wallSeconds = try r.duration(n, "sandbox.wall", in: .milliseconds(100) ... .seconds(86_400)).seconds
        }
        if let n = m["cpuTime"] {
            let v = try r.duration(n, "sandbox.cpuTime", in: .seconds(1) ... .seconds(86_400))
            spec.cpuSeconds = Int(v.seconds.rounded(.up))
        }
        if let n = m["devices"] {
            let list = try r.strings(n, "sandbox.devices")
            for device in list where !device.hasPrefix("/dev/") || device.contains("..") || device.count > 200 {
                throw r.error(n, "sandbox.devices: '\(device.prefix(80))' is not a path under /dev")
            }
            spec.devices = list
        }
        return spec
    }

    /// A size: bytes as an integer, or a number with `KiB`, `MiB`, `GiB`, `TiB` (or `KB`, `MB`,
    /// `GB`, `TB`, powers of 1000).
    static func size(_ node: Node, _ r: YAMLReader, _ what: String, within range: ClosedRange<Int>) throws -> Int {
        let text = try r.string(node, what).trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776),
                                         ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)]
        var number = text
        var factor = 1.0
        if let unit = units.first(where: { text.hasSuffix($0.0) }) {
            number = String(text.dropLast(unit.0.count)).trimmingCharacters(in: .whitespaces)
            factor = unit.1
        }
        guard let value = Double(number), value.isFinite, value >= 0 else {
            throw r.error(node, "\(what): '\(text.prefix(40))' is not a size (bytes, or a number with KiB, MiB, GiB)")
        }
        let bytes = value * factor
        guard bytes >= Double(range.lowerBound), bytes <= Double(range.upperBound) else {
            throw r.error(node, "\(what) must be from \(range.lowerBound >> 20) MiB to \(range.upperBound >> 30) GiB, got \(text.prefix(40))")
        }
        return Int(bytes)
    }
}
