/// A planner named on the command line: `mcpp`, `seq:K`, `seq:K:MODEL`, `uniform`.
public struct PlannerSpecError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

/// The most samples `seq:K` may launch per ready subtask (a larger K is refused, not looped on).
public let maxSequentialSamples = 64

/// Builds the live planner a `--planner` value names.
public func makeLivePlanner(_ spec: String, seed: UInt64) throws -> any LivePlanner {
    let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    switch parts[0] {
    case "mcpp":
        guard parts.count == 1 else { throw PlannerSpecError(description: "planner '\(spec)': mcpp takes no parameters") }
        return MCPPPlanner(seed: seed)
    case "uniform":
        guard parts.count == 1 else { throw PlannerSpecError(description: "planner '\(spec)': uniform takes no parameters") }
        return UniformSplitPlanner()
    case "seq":
        guard parts.count >= 2, parts.count <= 3, let k = Int(parts[1]), (1...maxSequentialSamples).contains(k) else {
            throw PlannerSpecError(description: "planner '\(spec.prefix(64))': expected seq:K or seq:K:MODEL with K from 1 to \(maxSequentialSamples)")
        }
        return SequentialPlanner(samples: k, model: parts.count == 3 ? parts[2] : nil)
    default:
        throw PlannerSpecError(description: "unknown planner '\(spec.prefix(64))': expected mcpp, seq:K, seq:K:MODEL or uniform")
    }
}
