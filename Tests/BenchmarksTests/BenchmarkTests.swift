import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

@Test func policyListsParse() throws {
    let models = ["30B_ins", "4B_ins"]
    let all = try BenchPolicy.parse("mcpp,seq4@4B_ins,uniform", models: models)
    #expect(all.map(\.name) == ["mcpp", "seq4@4B_ins", "uniform@30B_ins", "uniform@4B_ins"])
    #expect(try BenchPolicy.parse("baselines", models: models).count == Baseline.all.count * 2)
    #expect(try BenchPolicy.parse("mcpp,mcpp", models: models) == [.mcpp])
    #expect(throws: PlannerSpecError.self) { try BenchPolicy.parse("greedy", models: models) }
    #expect(throws: PlannerSpecError.self) { try BenchPolicy.parse("seq4@70B", models: models) }
}

@Test func clusterBootstrapResamplesWholeDAGs() {
    #expect(PlannerBenchmark.clusterBootstrap((0..<20).map { ($0 % 4, true) }) == (1, 1))
    // Two DAGs, one always succeeds and one never: resampled means are 0, 0.5 or 1.
    let (low, high) = PlannerBenchmark.clusterBootstrap((0..<20).map { ($0 % 2, $0 % 2 == 0) })
    #expect(low == 0 && high == 1)
    // One DAG: no spread between DAGs, so no interval.
    let (l1, h1) = PlannerBenchmark.clusterBootstrap((0..<10).map { (7, $0 < 3) })
    #expect(l1 == 0.3 && h1 == 0.3)
}

@Test func benchmarkRunsTheGridWithPairedSeeds() throws {
    let line = sampleLine()
    let dags = try PoolParser.parse(line + "\n" + line)
    var settings = BenchSettings()
    settings.budgetRatios = [1, 2]
    settings.deadlineRatios = [1]
    settings.trials = 3
    settings.mcpp = MCPPConfig(simulations: 8, threads: 1)
    let rows = PlannerBenchmark.run(dags: dags, policies: [.mcpp, .baseline(.sequential(k: 1), model: "4B_ins")], settings: settings)
    #expect(rows.count == 4)
    #expect(rows.allSatisfy { $0.runs == 6 && $0.decisions >= 2 })
    #expect(rows.map(\.policy) == ["mcpp", "mcpp", "seq1@4B_ins", "seq1@4B_ins"])
    // Same seeds, same numbers.
    let again = PlannerBenchmark.run(dags: dags, policies: [.mcpp, .baseline(.sequential(k: 1), model: "4B_ins")], settings: settings)
    #expect(zip(rows, again).allSatisfy { $0.success == $1.success && $0.meanCost == $1.meanCost && $0.meanMakespan == $1.meanMakespan })
}
