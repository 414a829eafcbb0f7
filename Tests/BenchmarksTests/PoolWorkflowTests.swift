import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

/// The pool → workflow converter whose workflows `agentflow bench fleet` and `planner-scale` submit.
@Suite struct PoolWorkflowTests {
    /// Two models, a diamond-free chain 0 → 1 and a root 2; rows chosen so the means are exact.
    static func dag() -> PoolDAG {
        func rows(_ pass: Int, _ latency: Double, _ tokens: Double) -> [CalibrationSample] {
            (0..<8).map { i in CalibrationSample(latency: latency + (i % 2 == 0 ? -1 : 1), success: i < pass, tokens: tokens + (i % 2 == 0 ? -10 : 10)) }
        }
        return PoolDAG(index: 42, kind: "test", modelIDs: ["30B_ins", "4B_ins"], nodes: [
            PoolNode(id: 0, parents: [], samples: [rows(4, 10, 1000), rows(2, 4, 500)]),
            PoolNode(id: 1, parents: [0], samples: [rows(8, 20, 3000), rows(1, 8, 900)]),
            PoolNode(id: 2, parents: [], samples: [rows(6, 6, 200), rows(8, 2, 100)]),
        ])
    }

    @Test func estimatesAreTheRowMeansWithScaledSeconds() {
        let yaml = PoolWorkflow.yaml(Self.dag(), timeScale: 0.1)
        let lines = yaml.split(separator: "\n").map(String.init)
        #expect(lines.first == "name: pool-42")
        #expect(lines.contains("models: [30B_ins, 4B_ins]"))
        // Node 0: 4 of 8 pass, mean latency 10 s → 1 s at scale 0.1, mean tokens 1000.
        #expect(lines.contains("      30B_ins: {success: 0.5, tokens: 1000, seconds: 1}"))
        #expect(lines.contains("      4B_ins: {success: 0.25, tokens: 500, seconds: 0.4}"))
        #expect(lines.contains("      4B_ins: {success: 0.125, tokens: 900, seconds: 0.8}"))
        #expect(lines.contains("      30B_ins: {success: 1, tokens: 3000, seconds: 2}"))
        #expect(lines.contains("    needs: [n0]"))
        // The cap is the node's largest row on any model (node 1: 3010 tokens), as bench fleet reserves.
        #expect(lines.filter { $0.hasPrefix("    maxTokens: ") } == ["    maxTokens: 1010", "    maxTokens: 3010", "    maxTokens: 210"])
        #expect(lines.filter { $0.hasPrefix("  - id: ") } == ["  - id: n0", "  - id: n1", "  - id: n2"])
    }

    @Test func clusterModelsPriceEveryTokenAtThePoolPrice() {
        let text = PoolWorkflow.clusterModels(Self.dag())
        #expect(text == "  - {name: 30B_ins, price: {input: 0.8, output: 0.8}, context: 1000000}\n"
            + "  - {name: 4B_ins, price: {input: 0.42, output: 0.42}, context: 1000000}\n")
    }

    @Test func numbersNeverUseExponents() {
        #expect(PoolWorkflow.number(0.0000012) == "0.000001")
        #expect(PoolWorkflow.number(2665.25) == "2665.25")
        #expect(PoolWorkflow.number(3) == "3")
    }
}
