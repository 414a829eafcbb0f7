import AgentFlowCore
import Testing
@testable import Planner
import TestSupport

/// The live planner's batch-outcome tables, shared per pair rows (OutcomeTables.swift).
private let ks = [1, 4, 16, 64]
private let entries = [0, 32, 32, 32]
private let offsets = [0, 0, 32, 64]

private func rows(_ seconds: Double, passEvery: Int = 2, count: Int = 16) -> [SimSample] {
    (0..<count).map { i in SimSample(latency: seconds * (0.6 + 0.05 * Double(i)), success: i % passEvery == 0, cost: 100 + Double(i)) }
}

private func outcomes(_ t: PairOutcomeTable) -> [BatchOutcome] { (0..<t.count).map { t[$0] } }

@Test func theSameRowsShareOneTableAndOtherRowsGetTheirOwn() {
    let cache = OutcomeTableCache(capacityBytes: 1 << 20)
    let a = cache.table(rows: rows(10), ks: ks, entries: entries, offsets: offsets)
    let again = cache.table(rows: rows(10), ks: ks, entries: entries, offsets: offsets)
    #expect(a === again)
    #expect(a.count == 96)
    // One row's latency, one pass, or the sizes differ: another table.
    var moved = rows(10)
    moved[3].latency += 1e-9
    var flipped = rows(10)
    flipped[5].success.toggle()
    let b = cache.table(rows: moved, ks: ks, entries: entries, offsets: offsets)
    let c = cache.table(rows: flipped, ks: ks, entries: entries, offsets: offsets)
    let d = cache.table(rows: rows(10), ks: ks, entries: [0, 16, 16, 16], offsets: [0, 0, 16, 32])
    #expect(b !== a && c !== a && d !== a)
    #expect(outcomes(b) != outcomes(a))
    #expect(outcomes(c) != outcomes(a))
    let s = cache.statistics
    #expect(s.tables == 4 && s.built == 4 && s.reused == 1)
}

@Test func aTableIsAFunctionOfItsRowsAloneNotOfTheCacheOrTheOrderOfRequests() {
    let first = OutcomeTableCache(capacityBytes: 1 << 20)
    let second = OutcomeTableCache(capacityBytes: 1 << 20)
    _ = second.table(rows: rows(3), ks: ks, entries: entries, offsets: offsets)
    let x = first.table(rows: rows(10), ks: ks, entries: entries, offsets: offsets)
    let y = second.table(rows: rows(10), ks: ks, entries: entries, offsets: offsets)
    #expect(x !== y)
    #expect(outcomes(x) == outcomes(y))
    // The outcomes are real draws: a batch's latency is its slowest attempt, at most the slowest row.
    let slowest = rows(10).map(\.latency).max()!
    #expect(outcomes(x).allSatisfy { $0.latency <= slowest && $0.firstPassLatency <= $0.latency && $0.cancelledCost <= $0.cost + 1e-9 })
    #expect(Set(outcomes(x).map(\.latency)).count > 1)
}

@Test func theCacheStaysWithinItsBytesAndKeepsTheRecentlyUsed() {
    let capacity = 64 << 10
    let cache = OutcomeTableCache(capacityBytes: capacity)
    let hot = rows(1)
    let kept = cache.table(rows: hot, ks: ks, entries: entries, offsets: offsets)
    for i in 0..<200 {
        _ = cache.table(rows: rows(100 + Double(i)), ks: ks, entries: entries, offsets: offsets)
        _ = cache.table(rows: hot, ks: ks, entries: entries, offsets: offsets)
        #expect(cache.statistics.bytes <= capacity)
    }
    let s = cache.statistics
    #expect(s.built == 201)
    #expect(s.tables < 40)
    #expect(cache.table(rows: hot, ks: ks, entries: entries, offsets: offsets) === kept)
    // A table larger than the whole cache is built and used, never kept.
    let tiny = OutcomeTableCache(capacityBytes: 1_000)
    let big = tiny.table(rows: hot, ks: ks, entries: entries, offsets: offsets)
    #expect(big.count == 96 && tiny.statistics.tables == 0 && tiny.statistics.bytes == 0)
}

@Test func aSharedTableIsDrawnWithTheWaitAddedAndTheCostScaled() {
    let raw = [rows(10), rows(4)]
    let wait = 7.5, factor = 1e-3
    let problem = PlanProblem(modelNames: ["m0"], parents: [[], [0]],
                              samples: raw.map { [$0.map { SimSample(latency: $0.latency + wait, success: $0.success, cost: $0.cost * factor) }] })
    let cache = OutcomeTableCache(capacityBytes: 1 << 20)
    let sim = SimModel(problem, tableSize: 32, shared: SharedOutcomes(cache: cache, rows: raw.map { [$0] }, shift: [wait], scale: [factor]))
    let table = cache.table(rows: raw[1], ks: ks, entries: entries, offsets: offsets)
    for kIndex in 1..<ks.count {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42)
        for _ in 0..<50 {
            let o = sim.drawBatch(pair: sim.pair(1, 0), kIndex: kIndex, rng: &a)
            let r = table[offsets[kIndex] + b.below(entries[kIndex])]
            #expect(o.latency == r.latency + wait && o.firstPassLatency == r.firstPassLatency + wait && o.success == r.success)
            #expect(o.cost == r.cost * factor && o.cancelledCost == r.cancelledCost * factor)
        }
    }
    // k = 1 draws a row of the problem as before.
    var g = SplitMix64(seed: 1)
    let one = sim.drawBatch(pair: 0, kIndex: 0, rng: &g)
    #expect(problem.samples[0][0].contains { $0.latency == one.latency && $0.cost == one.cost })
}

/// A five-subtask workflow as a live job sees it, at a queue wait and a budget left.
private func etlState(wait: Double, usd: Double, tokens: Double = 800) -> PlanState {
    let e = Estimate(success: 0.8, tokens: tokens, seconds: 3_600)
    let nodes = [PlanNode(id: "extract", needs: [], estimates: [e], tokenCap: 2_000),
                 PlanNode(id: "clean", needs: [0], estimates: [e], tokenCap: 2_000),
                 PlanNode(id: "dedupe", needs: [0], estimates: [e], tokenCap: 2_000),
                 PlanNode(id: "enrich", needs: [0], estimates: [e], tokenCap: 2_000),
                 PlanNode(id: "load", needs: [1, 2, 3], estimates: [e], tokenCap: 2_000)]
    var s = PlanState(nodes: nodes, models: [PlanModel(name: "bench-model", priceInput: 1, priceOutput: 2, freeSlots: 4, totalSlots: 4)],
                      done: [], inFlight: [:], remainingTokens: nil, remainingUSD: usd, remainingSeconds: 86_400)
    s.queueWait = [wait]
    return s
}

@Test func jobsOfOneWorkflowShareTablesWhateverTheirSeedQueueWaitOrBudget() {
    let cache = OutcomeTableCache(capacityBytes: 8 << 20)
    func planner(_ seed: UInt64) -> MCPPPlanner {
        var p = MCPPPlanner(seed: seed)
        p.tableCache = cache
        return p
    }
    _ = planner(1).decide(etlState(wait: 0, usd: 5))
    let built = cache.statistics.built
    // Every node has the same estimate and cap, so the same rows: one table serves all five.
    #expect(built == 1)
    for (i, wait) in [0.0, 3_600, 36_000_000].enumerated() {
        _ = planner(UInt64(10 + i)).decide(etlState(wait: wait, usd: 5 - Double(i)))
        _ = planner(UInt64(20 + i)).completionProbability(etlState(wait: wait, usd: 1))
    }
    #expect(cache.statistics.built == built)
    // Another workflow (other estimates) has tables of its own.
    _ = planner(1).decide(etlState(wait: 0, usd: 5, tokens: 900))
    #expect(cache.statistics.built > built)
}

@Test func aDecisionDoesNotDependOnWhatTheCacheHolds() {
    let warm = OutcomeTableCache(capacityBytes: 8 << 20)
    var p = MCPPPlanner(seed: 9)
    p.tableCache = warm
    for w in [0.0, 100, 5_000] { _ = p.decide(etlState(wait: w, usd: 3)) }
    for (wait, usd) in [(0.0, 5.0), (1_800, 0.004), (40_000, 2)] {
        let state = etlState(wait: wait, usd: usd)
        var cold = p
        cold.tableCache = OutcomeTableCache(capacityBytes: 8 << 20)
        var uncached = p
        uncached.tableCache = OutcomeTableCache(capacityBytes: 0)
        #expect(p.decide(state) == cold.decide(state))
        #expect(p.decide(state) == uncached.decide(state))
        #expect(p.completionProbability(state) == cold.completionProbability(state))
    }
}

@Test func noBudgetLeftPlansNothingWithSharedTables() {
    var p = MCPPPlanner(seed: 4)
    p.tableCache = OutcomeTableCache(capacityBytes: 1 << 20)
    #expect(p.decide(etlState(wait: 0, usd: 0)).isEmpty)
    #expect(p.decide(etlState(wait: .infinity, usd: 0)).isEmpty)
    let probability = p.completionProbability(etlState(wait: 0, usd: 0)) ?? 0
    #expect(probability.isFinite && probability <= 0.01)
}
