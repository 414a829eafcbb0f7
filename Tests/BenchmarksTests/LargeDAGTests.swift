import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

/// A small pool of two models whose rows spread like the public pool's: model 0 cheap, fast
/// and unreliable, model 1 three times the price, slower, more reliable.
func largeDAGPool(seed: UInt64 = 9) -> [PoolDAG] {
    var rng = SplitMix64(seed: seed)
    let nodes = (0..<12).map { v -> PoolNode in
        let rows = (0..<2).map { m -> [CalibrationSample] in
            let pass = m == 0 ? 0.4 + 0.4 * rng.unit() : 0.7 + 0.3 * rng.unit()
            let latency = (m == 0 ? 2.0 : 6.0) * (0.5 + rng.unit())
            return (0..<8).map { i in
                CalibrationSample(latency: latency * (0.7 + 0.6 * rng.unit()), success: i == 0 || rng.unit() < pass,
                                  tokens: (m == 0 ? 400 : 900) * (0.6 + 0.8 * rng.unit()))
            }
        }
        return PoolNode(id: v, parents: [], samples: rows)
    }
    return [PoolDAG(index: 0, kind: "test", modelIDs: ["4B_ins", "30B_ins"], nodes: nodes)]
}

/// MCPP at settings cheap enough for a debug build: the same code path as the coordinator's
/// (live rule, rolling window over 64 nodes), with fewer simulations and smaller tables.
func cheapMCPP(seed: UInt64) -> MCPPPlanner {
    var config = MCPPPlanner.defaultConfig
    config.simulations = 2
    config.maxCandidates = 16
    config.threads = 1
    var planner = MCPPPlanner(seed: seed, config: config)
    planner.tableSize = 4
    planner.windowNodes = 12
    return planner
}

@Test func aSyntheticDAGIsLayeredAcyclicAndDrawnFromThePool() {
    let pool = largeDAGPool()
    let dag = PlannerScaleBenchmark.syntheticDAG(nodes: 500, pool: pool, seed: 3)
    #expect(dag.nodes.count == 500)
    #expect(dag.topologicalOrder().count == 500)
    #expect(dag.nodes.allSatisfy { node in node.parents.allSatisfy { $0 < node.id } })
    #expect(dag.nodes.filter { $0.parents.isEmpty }.count < 50)
    let rows = pool[0].nodes.map { $0.samples }
    #expect(dag.nodes.allSatisfy { rows.contains($0.samples) })
    #expect(dag.nominalBudgetUSD > 0 && dag.nominalDeadlineSeconds > 0)
}

@Test func theWindowIsTheNextPartOfTheDAGWithItsShare() {
    let dag = PlannerScaleBenchmark.syntheticDAG(nodes: 200, pool: largeDAGPool(), seed: 4)
    let (nodes, _) = dag.planNodes()
    let models = [PlanModel(name: "4B_ins", priceInput: 0, priceOutput: 0.42), PlanModel(name: "30B_ins", priceInput: 0, priceOutput: 0.8)]
    var state = PlanState(nodes: nodes, models: models, done: [], inFlight: [:], remainingTokens: 1_000_000,
                          remainingUSD: 1, remainingSeconds: 1_000)
    // Some progress: the first 30 nodes (in id order, parents first) done, two in flight.
    state.done = Set(0..<30)
    let running = state.ready.prefix(2)
    for v in running { state.inFlight[v] = 3 }
    let ready = state.ready
    let window = PlanWindow(state, limit: 48)
    #expect(window.nodes.count == 48)
    #expect(Set(window.nodes).isSuperset(of: ready))
    #expect(Set(window.nodes).isSuperset(of: running))
    #expect(window.nodes.allSatisfy { !state.done.contains($0) })
    // Down-closed: every remaining parent of a window node is in the window, and needs map to window indices.
    let inside = Set(window.nodes)
    for (i, v) in window.nodes.enumerated() {
        #expect(nodes[v].needs.allSatisfy { state.done.contains($0) || inside.contains($0) })
        #expect(window.state.nodes[i].needs.map { window.nodes[$0] } == nodes[v].needs.filter { !state.done.contains($0) })
    }
    #expect(window.state.inFlight.count == 2)
    #expect(window.state.done.isEmpty)
    // Its shares: part of what is left, not all of it.
    #expect(window.budgetShare.usd > 0.05 && window.budgetShare.usd < 0.9)
    #expect(window.timeShare > 0.05 && window.timeShare < 0.95)
    #expect(abs((window.state.remainingUSD ?? 0) - window.budgetShare.usd) < 1e-12)
    #expect(window.state.remainingSeconds == 1_000 * window.timeShare)
    // With at most `limit` nodes left, the window is all of them, with everything that is left.
    state.done = Set(0..<170)
    state.inFlight = [:]
    let last = PlanWindow(state, limit: 48)
    #expect(last.nodes.sorted() == Array(170..<200))
    #expect(last.budgetShare.tokens == 1 && last.budgetShare.usd == 1 && last.timeShare == 1)
}

@Test func mcppOnAFiveHundredNodeDAGLaunchesOnlyReadyNodesWithinBudgetAndSlots() {
    let dag = PlannerScaleBenchmark.syntheticDAG(nodes: 500, pool: largeDAGPool(), seed: 5)
    let (nodes, book) = dag.planNodes()
    let models = [PlanModel(name: "4B_ins", priceInput: 0, priceOutput: 0.42, freeSlots: 6, totalSlots: 6),
                  PlanModel(name: "30B_ins", priceInput: 0, priceOutput: 0.8, freeSlots: 6, totalSlots: 6)]
    let budget = 0.2 * dag.nominalBudgetUSD
    var state = PlanState(nodes: nodes, models: models, done: [], inFlight: [:], remainingTokens: nil,
                          remainingUSD: budget, remainingSeconds: dag.nominalDeadlineSeconds)
    state.estimateBook = book
    var planner = cheapMCPP(seed: 2)
    planner.windowNodes = MCPPPlanner().windowNodes
    let launches = planner.decide(state)
    let ready = Set(state.ready)
    #expect(!launches.isEmpty)
    #expect(launches.allSatisfy { ready.contains($0.node) && $0.samples >= 1 })
    #expect(Set(launches.map(\.node)).count == launches.count)
    for m in models.indices { #expect(launches.filter { $0.model == m }.reduce(0) { $0 + $1.samples } <= 6) }
    let reserved = launches.reduce(0.0) { $0 + Double($1.samples) * models[$1.model].worstCaseUSD(tokens: nodes[$1.node].tokenCap) }
    #expect(reserved <= budget + 1e-12)
    #expect(planner.decide(state) == launches)
    let p = planner.completionProbability(state) ?? -1
    #expect(p >= 0 && p <= 1)
}

/// The 64-node limit is gone: MCPP (not seq:1) plans a 500-node DAG to completion on the real
/// coordinator (through the simulator), within budget and deadline.
@Test func mcppPlansAFiveHundredNodeDAGToCompletion() throws {
    let dag = PlannerScaleBenchmark.syntheticDAG(nodes: 500, pool: largeDAGPool(), seed: 6)
    let budget = 2 * dag.nominalBudgetUSD, deadline = 2 * dag.nominalDeadlineSeconds
    let run = try PlannerScaleBenchmark.run(dag: dag, planner: "mcpp", makePlanner: { _, seed in cheapMCPP(seed: seed) }, budgetUSD: budget,
                                            deadline: deadline, slots: 16, seed: 7)
    #expect(run.planner == "mcpp")
    #expect(run.success)
    #expect(run.completed == 500)
    #expect(run.spentUSD <= budget)
    #expect(run.makespan <= deadline)
    #expect(run.decisionMillis.count >= 100)
}

@Test func windowTablesHoldFewerOutcomesOnlyForLargeBatches() {
    let rows = [row(1, true, 1), row(2, false, 2), row(4, false, 4)]
    let plain = SimModel(problem([[rows]]), tableSize: 256, seed: 3)
    let shrunk = SimModel(problem([[rows]]), tableSize: 256, seed: 3, shrinkLargeBatches: true)
    // ks = 1, 4, 16, 64: k = 1 is drawn exactly (no table); k > 4 holds 256 × 4 / k outcomes, at least 8.
    #expect((0..<4).map { plain.tableEntries[$0] } == [0, 256, 256, 256])
    #expect((0..<4).map { shrunk.tableEntries[$0] } == [0, 256, 64, 16])
    var a = SplitMix64(seed: 1), b = SplitMix64(seed: 1)
    for ki in 0..<4 {
        for _ in 0..<200 {
            let x = plain.drawBatch(pair: 0, kIndex: ki, rng: &a), y = shrunk.drawBatch(pair: 0, kIndex: ki, rng: &b)
            let k = Double(plain.ks[ki])
            for o in [x, y] {
                #expect(o.cost >= k && o.cost <= 4 * k)
                #expect(o.latency >= 1 && o.latency <= 4 && o.firstPassLatency <= o.latency)
            }
            // The same stream for k ≤ 4: identical outcomes.
            if ki <= 1 { #expect(x == y) }
        }
    }
}
