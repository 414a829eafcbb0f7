/// One row the simulator resamples for a (node, model) pair: latency, pass/fail and cost together.
public struct SimSample: Sendable, Equatable {
    public var latency: Double
    public var success: Bool
    /// In the unit of the budget (USD in the benchmark; see ``MCPPPlanner`` for live jobs).
    public var cost: Double

    public init(latency: Double, success: Bool, cost: Double) {
        self.latency = latency
        self.success = success
        self.cost = cost
    }
}

/// A workflow as the simulator and the planners see it: a DAG and, per (node, model), the rows
/// one attempt is drawn from. An empty row list means the model is not a candidate for the node.
public struct PlanProblem: Sendable, Equatable {
    /// Node sets are 64-bit masks inside the simulator; the live planner plans larger DAGs on a
    /// rolling window of at most this many nodes (``PlanWindow``).
    public static let maxNodes = 64

    public var modelNames: [String]
    /// Per node, the nodes that must complete before it may start.
    public var parents: [[Int]]
    /// `samples[node][model]`.
    public var samples: [[[SimSample]]]
    /// Worst-case cost of one attempt per `[node][model]` (what a live coordinator reserves);
    /// `nil`: the largest sample cost.
    public var worstCaseCost: [[Double]]?

    public init(modelNames: [String], parents: [[Int]], samples: [[[SimSample]]], worstCaseCost: [[Double]]? = nil) {
        self.modelNames = modelNames
        self.parents = parents
        self.samples = samples
        self.worstCaseCost = worstCaseCost
    }

    public var nodeCount: Int { parents.count }
    public var modelCount: Int { modelNames.count }

    /// Mean success of one attempt of the pair.
    public func successRate(node v: Int, model m: Int) -> Double {
        let rows = samples[v][m]
        return rows.isEmpty ? 0 : Double(rows.filter(\.success).count) / Double(rows.count)
    }

    public func meanLatency(node v: Int, model m: Int) -> Double {
        let rows = samples[v][m]
        return rows.isEmpty ? 0 : rows.reduce(0) { $0 + $1.latency } / Double(rows.count)
    }

    public func meanCost(node v: Int, model m: Int) -> Double {
        let rows = samples[v][m]
        return rows.isEmpty ? 0 : rows.reduce(0) { $0 + $1.cost } / Double(rows.count)
    }
}
