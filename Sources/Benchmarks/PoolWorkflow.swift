import Planner
import Foundation

/// A pool DAG (MCPP format, ../shared/bench/README.md) as an AgentFlow workflow, so the real
/// coordinator runs the benchmarks' jobs (`agentflow bench fleet`, `planner-scale`).
///
/// Each (node, model) pair's `estimates` are its calibration rows' means: success = the pass
/// fraction of its 8 rows, tokens = mean tokens, seconds = mean latency × `timeScale` (real
/// seconds per pool second). The `sim` backend draws pass/fail with that probability and tokens
/// and seconds log-normally around those means (σ = 0.25), so over many attempts it spends, passes
/// and takes as long as the rows on average; the spread differs from the rows' (their latency CV
/// is about 0.33, tokens follow latency; docs/benchmarks.md). Every subtask's `maxTokens` is the
/// largest tokens of any row of its node on any model, the cap the fleet benchmark reserves at.
/// Times are scaled in the workflow itself, not in the workers, because the coordinator's
/// planners compare the estimates with the job's remaining real seconds.
public enum PoolWorkflow {
    /// Workflow name of a pool row: `pool-<dag_idx>` (the coordinator's estimate book is per name).
    public static func name(_ dag: PoolDAG) -> String { "pool-\(dag.index)" }

    /// Subtask id of node `v`: `n<v>`, as the fleet benchmark names nodes.
    public static func subtaskID(_ v: Int) -> String { "n\(v)" }

    /// The token cap of one attempt at node `v`: the largest tokens of any of its rows, any model.
    public static func tokenCap(_ dag: PoolDAG, node v: Int) -> Int {
        max(1, Int(dag.nodes[v].samples.flatMap { $0.map(\.tokens) }.max()?.rounded(.up) ?? 1))
    }

    /// The workflow YAML of `dag`, every latency × `timeScale`. No budget or deadline: the
    /// submission gives them.
    public static func yaml(_ dag: PoolDAG, timeScale: Double) -> String {
        var out = "name: \(name(dag))\n"
        out += "description: pool row \(dag.index) (\(dag.kind), \(dag.nodes.count) nodes) for the sim backend; seconds x \(number(timeScale))\n"
        out += "models: [\(dag.modelIDs.joined(separator: ", "))]\n"
        out += "subtasks:\n"
        for (v, node) in dag.nodes.enumerated() {
            out += "  - id: \(subtaskID(v))\n"
            out += "    prompt: pool row \(dag.index) node \(node.id)\n"
            out += "    verify: {command: \"true\"}\n"
            if !node.parents.isEmpty { out += "    needs: [\(node.parents.map(subtaskID).joined(separator: ", "))]\n" }
            out += "    maxTokens: \(tokenCap(dag, node: v))\n"
            out += "    estimates:\n"
            for m in dag.modelIDs.indices {
                let t = dag.template(node: v, model: m)
                out += "      \(dag.modelIDs[m]): {success: \(number(t.success)), tokens: \(number(t.tokens)), seconds: \(number(t.latency * timeScale))}\n"
            }
        }
        return out
    }

    /// The `models:` entries of a cluster file serving the pool's models: the reference price per
    /// 1M output tokens on both axes, so an attempt costs tokens × price as in the pool.
    public static func clusterModels(_ dag: PoolDAG) -> String {
        dag.modelIDs.indices.map { m in
            let p = number(dag.price(ofModel: m))
            return "  - {name: \(dag.modelIDs[m]), price: {input: \(p), output: \(p)}, context: 1000000}\n"
        }.joined()
    }

    /// Plain decimal (YAML reads it as a float; no exponent).
    public static func number(_ x: Double) -> String {
        var s = String(format: "%.6f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
