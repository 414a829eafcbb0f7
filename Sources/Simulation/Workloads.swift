import AgentFlowCore
import Planner

/// The simulated cluster and the workflows submitted to it, all drawn from the seed.
enum Workloads {
    static let models = [
        ModelSpec(name: "m-small", priceInput: 0.02, priceOutput: 0.05, context: 8192),
        ModelSpec(name: "m-big", priceInput: 0.04, priceOutput: 0.10, context: 8192),
    ]

    static func cluster(prefetch: Int? = nil) -> Cluster {
        var spec = CoordinatorSpec()
        if let prefetch { spec.prefetch = prefetch }
        spec.database = ":memory:"
        spec.heartbeat = .seconds(1)
        spec.liveness = 3
        var cluster = Cluster(coordinator: spec, models: models, workers: [])
        cluster.tenants = tenants
        return cluster
    }

    /// Tenants the jobs belong to: two with period budgets small enough that concurrent jobs run
    /// into them (the simulator checks they never pass them), one without.
    static let tenants = [
        TenantSpec(name: "t-hourly", weight: 2, budget: TenantBudget(tokens: 20_000, per: .hour)),
        TenantSpec(name: "t-daily", budget: TenantBudget(usd: 0.0004, per: .day)),
        TenantSpec(name: "t-free"),
    ]

    /// Worker names, models and slots.
    static let workers: [(name: String, model: String, slots: Int)] = [("w0", "m-small", 2), ("w1", "m-small", 1), ("w2", "m-big", 2)]

    /// A random DAG of 1–5 subtasks with estimates per model, a budget and a deadline.
    static func workflow(_ rng: inout SplitMix64, index: Int) -> (yaml: String, planner: String) {
        let n = 1 + rng.below(5)
        var yaml = "name: sim-\(index % 3)\n"
        if rng.unit() < 0.5 { yaml += "budget: {tokens: \(500 + rng.below(12_000))}\n" }
        else if rng.unit() < 0.5 { yaml += "budget: {usd: \(Double(5 + rng.below(400)) / 1_000_000)}\n" }
        else { yaml += "budget: {tokens: \(800 + rng.below(12_000)), usd: \(Double(20 + rng.below(400)) / 1_000_000)}\n" }
        yaml += "deadline: \(8 + rng.below(50))s\nsubtasks:\n"
        for i in 0..<n {
            var needs: [String] = []
            for j in 0..<i where rng.unit() < 0.4 { needs.append("s\(j)") }
            yaml += "  - id: s\(i)\n    prompt: p\(i)\n"
            if !needs.isEmpty { yaml += "    needs: [\(needs.joined(separator: ", "))]\n" }
            if rng.unit() < 0.3 { yaml += "    maxAttempts: \(1 + rng.below(4))\n" }
            yaml += "    estimates:\n"
            for m in models {
                let success = Double(20 + rng.below(80)) / 100
                yaml += "      \(m.name): {success: \(success), tokens: \(80 + rng.below(700)), seconds: \(Double(1 + rng.below(60)) / 10)}\n"
            }
        }
        return (yaml, "seq:\(1 + rng.below(3))")
    }
}
