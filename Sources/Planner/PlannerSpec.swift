/// A planner named on the command line: `mcpp`, `seq:K`, `seq:K:MODEL`, `uniform`.
public struct PlannerSpecError: Error, CustomStringConvertible {
    public var description: String
}

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
        guard parts.count >= 2, parts.count <= 3, let k = Int(parts[1]), k >= 1 else {
            throw PlannerSpecError(description: "planner '\(spec)': expected seq:K or seq:K:MODEL with K ≥ 1")
        }
        return SequentialPlanner(samples: k, model: parts.count == 3 ? parts[2] : nil)
    default:
        throw PlannerSpecError(description: "unknown planner '\(spec)': expected mcpp, seq:K, seq:K:MODEL or uniform")
    }
}
