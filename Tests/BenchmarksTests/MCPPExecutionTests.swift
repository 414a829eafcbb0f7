import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

@Test func decisionsAreDeterministicUnderASeedWhateverTheThreads() throws {
    guard let pool = SharedBench.text("pool-public.jsonl") else { return }
    let line = pool.split(separator: "\n")[5]
    let dag = try PoolParser.parseLine(line, lineNumber: 6, index: 5)
    let sim = SimModel(dag.problem())
    let budget = dag.nominalBudgetUSD, deadline = dag.nominalDeadlineSeconds
    var results: [RunResult] = []
    for threads in [1, 2, 2] {
        let mcpp = MCPP(model: sim, config: MCPPConfig(simulations: 16, threads: threads))
        var r = Executor().runMCPP(mcpp, budget: budget, deadline: deadline, execSeed: 11, policySeed: 12)
        // Wall time, and how many simulations racing skipped, depend on the machine; the run does not.
        r.plannerNanoseconds = 0
        r.maxDecisionNanoseconds = 0
        r.plannerRollouts = 0
        results.append(r)
    }
    #expect(results[0] == results[1] && results[1] == results[2])
    let other = Executor().runMCPP(MCPP(model: sim, config: MCPPConfig(simulations: 16)), budget: budget, deadline: deadline,
                                   execSeed: 12, policySeed: 12)
    #expect(other.makespan != results[0].makespan)
}

