import AgentFlowCore
import Planner

extension PoolDAG {
    /// The DAG as a live planner sees it: estimates from the rows' means, and a book holding
    /// every calibration row as an observed attempt (as the fleet benchmark does).
    public func planNodes() -> ([PlanNode], EstimateBook) {
        let dag = self
        var book = EstimateBook()
        var nodes: [PlanNode] = []
        for (v, node) in dag.nodes.enumerated() {
            let cap = Int(node.samples.flatMap { $0.map(\.tokens) }.max()?.rounded(.up) ?? 1)
            let estimates = dag.modelIDs.indices.map { m -> Estimate? in
                let t = dag.template(node: v, model: m)
                return Estimate(success: t.success, tokens: t.tokens, seconds: t.latency)
            }
            nodes.append(PlanNode(id: "n\(v)", needs: node.parents, estimates: estimates, tokenCap: max(cap, 1)))
            for (m, rows) in node.samples.enumerated() {
                for r in rows {
                    book.record(subtask: "n\(v)", model: dag.modelIDs[m], passed: r.success, tokens: Int(r.tokens.rounded()), seconds: r.latency)
                }
            }
        }
        return (nodes, book)
    }
}
