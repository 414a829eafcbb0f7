import AgentFlowCore
import Foundation
import Testing
@testable import Planner

// `FleetOutlook.estimate` and `EstimateBook` were made cheaper for the coordinator's loop (flags
// instead of set lookups, a flat topological order, estimates learned in place). The policy's
// order, and `bench fleet`, read these numbers, so they must not move by a bit: each is checked
// against the code it replaced, kept here as the reference, over random DAGs and states.

/// The outlook as computed before (set lookups, `PlanState.ready`, an array of children per node).
private func referenceEstimate(_ state: PlanState, wait: [Double] = []) -> FleetOutlook {
    let n = state.nodes.count
    guard state.done.count < n else { return .finished(horizon: state.remainingSeconds) }
    var mean = [Double](repeating: 0, count: n)
    var variance = [Double](repeating: 0, count: n)
    var costMean = 0.0, costVariance = 0.0, tokenMean = 0.0, tokenVariance = 0.0
    var slotSeconds = 0.0
    var attemptSeconds = 0.0
    let ready = Set(state.ready)
    for v in 0..<n where !state.done.contains(v) {
        var best: (time: Double, m: Int, e: Estimate)?
        for (m, e) in state.nodes[v].estimates.enumerated() {
            guard let e, m < state.models.count else { continue }
            let p = min(max(e.success, 1e-3), 1)
            let w = m < wait.count ? max(wait[m], 0) : 0
            let t = (max(e.seconds, 0) + w) / p
            if best == nil || t < best!.time { best = (t, m, e) }
        }
        guard let (_, m, e) = best else {
            mean[v] = .infinity
            continue
        }
        let p = min(max(e.success, 1e-3), 1)
        let w = m < wait.count ? max(wait[m], 0) : 0
        let s = max(e.seconds, 0)
        let running = (state.inFlight[v] ?? 0) > 0
        let retries = (1 - p) / p
        mean[v] = (running ? s / 2 : s + w) + retries * (s + w)
        variance[v] = (s + w) * (s + w) * (1 - p) / (p * p)
        slotSeconds += (running ? s / 2 : s) + retries * s
        let tokens = running ? retries * e.tokens : e.tokens / p
        let price = max(state.models[m].priceInput, state.models[m].priceOutput) / 1_000_000
        let tv = e.tokens * e.tokens * (1 - p) / (p * p)
        tokenMean += tokens
        tokenVariance += tv
        costMean += tokens * price
        costVariance += tv * price * price
        if ready.contains(v) && attemptSeconds == 0 { attemptSeconds = s }
    }
    var pathMean = [Double](repeating: 0, count: n)
    var pathVar = [Double](repeating: 0, count: n)
    var longest = 0.0, longestVar = 0.0
    for v in referenceTopologicalOrder(state.nodes) where !state.done.contains(v) {
        var before = 0.0, beforeVar = 0.0
        for u in state.nodes[v].needs where !state.done.contains(u) && pathMean[u] > before {
            before = pathMean[u]
            beforeVar = pathVar[u]
        }
        pathMean[v] = before + mean[v]
        pathVar[v] = beforeVar + variance[v]
        if pathMean[v] > longest { longest = pathMean[v]; longestVar = pathVar[v] }
    }
    var budget = 1.0
    if let usd = state.remainingUSD {
        budget *= costVariance > 0 ? normalCDF((usd - costMean) / costVariance.squareRoot()) : (usd >= costMean ? 1 : 0)
    }
    if let tokens = state.remainingTokens {
        let t = Double(tokens)
        budget *= tokenVariance > 0 ? normalCDF((t - tokenMean) / tokenVariance.squareRoot()) : (t >= tokenMean ? 1 : 0)
    }
    return FleetOutlook(pathSeconds: longest, pathDeviation: longestVar.squareRoot(), horizon: state.remainingSeconds,
                        budgetProbability: budget, slotSeconds: slotSeconds, attemptSeconds: attemptSeconds)
}

private func referenceTopologicalOrder(_ nodes: [PlanNode]) -> [Int] {
    var indegree = nodes.map { $0.needs.count }
    var children = [[Int]](repeating: [], count: nodes.count)
    for v in nodes.indices { for u in nodes[v].needs where u < nodes.count { children[u].append(v) } }
    var order = nodes.indices.filter { indegree[$0] == 0 }
    var i = 0
    while i < order.count {
        for c in children[order[i]] {
            indegree[c] -= 1
            if indegree[c] == 0 { order.append(c) }
        }
        i += 1
    }
    return order
}

/// A random DAG (needs point to earlier or, shuffled, to any acyclic predecessor), with ties in
/// the estimates on purpose (equal path lengths are where an order change would show), some
/// nodes done, some in flight, and some pairs not candidates.
private func randomState(_ rng: inout SplitMix64, nodes n: Int, models: Int) -> PlanState {
    // A random permutation, so the index order is not already a topological order.
    let rank = Array(0..<n).shuffled(using: &rng)
    var nodes: [PlanNode] = []
    let choices = [Estimate(success: 0.5, tokens: 1_000, seconds: 10), Estimate(success: 0.9, tokens: 400, seconds: 3),
                   Estimate(success: 1, tokens: 0, seconds: 0), Estimate(success: 0.0001, tokens: 5_000, seconds: 120)]
    for v in 0..<n {
        var needs: [Int] = []
        for u in 0..<n where rank[u] < rank[v] && Int.random(in: 0..<max(1, n / 3), using: &rng) == 0 { needs.append(u) }
        let estimates: [Estimate?] = (0..<models).map { _ in
            Int.random(in: 0..<5, using: &rng) == 0 ? nil : choices[Int.random(in: 0..<choices.count, using: &rng)]
        }
        nodes.append(PlanNode(id: "s\(v)", needs: needs, estimates: estimates, tokenCap: 2_000))
    }
    var done: Set<Int> = []
    var inFlight: [Int: Int] = [:]
    for v in 0..<n {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: done.insert(v)
        case 1: inFlight[v] = Int.random(in: 1...3, using: &rng)
        case 2: if Bool.random(using: &rng) { inFlight[v] = 0 }
        default: break
        }
    }
    let planModels = (0..<models).map { PlanModel(name: "m\($0)", priceInput: Double($0), priceOutput: 2 * Double($0)) }
    return PlanState(nodes: nodes, models: planModels, done: done, inFlight: inFlight,
                     remainingTokens: Bool.random(using: &rng) ? Int.random(in: 0...100_000, using: &rng) : nil,
                     remainingUSD: Bool.random(using: &rng) ? Double.random(in: 0...1, using: &rng) : nil,
                     remainingSeconds: Double.random(in: 0...600, using: &rng))
}

private func sameBits(_ a: FleetOutlook, _ b: FleetOutlook) -> Bool {
    [a.pathSeconds, a.pathDeviation, a.horizon, a.budgetProbability, a.slotSeconds, a.attemptSeconds].map(\.bitPattern)
        == [b.pathSeconds, b.pathDeviation, b.horizon, b.budgetProbability, b.slotSeconds, b.attemptSeconds].map(\.bitPattern)
}

/// Equal to the bit (NaN seconds included: a hostile report's NaN survives into estimates).
private func sameBits(_ a: [PlanNode], _ b: [PlanNode]) -> Bool {
    func bits(_ e: Estimate?) -> [UInt64]? { e.map { [$0.success.bitPattern, $0.tokens.bitPattern, $0.seconds.bitPattern] } }
    return a.count == b.count && zip(a, b).allSatisfy { x, y in
        x.id == y.id && x.needs == y.needs && x.tokenCap == y.tokenCap && x.estimates.map(bits) == y.estimates.map(bits)
    }
}

@Test(arguments: [1, 2, 3, 7, 40, 200])
func outlookMatchesTheReferenceBitForBit(nodes: Int) {
    var rng = SplitMix64(seed: UInt64(nodes) &* 7_919)
    for _ in 0..<50 {
        let state = randomState(&rng, nodes: nodes, models: Int.random(in: 1...3, using: &rng))
        let wait = (0..<Int.random(in: 0...3, using: &rng)).map { _ in Double.random(in: -5...60, using: &rng) }
        #expect(FleetOutlook.topologicalOrder(state.nodes) == referenceTopologicalOrder(state.nodes))
        let reference = referenceEstimate(state, wait: wait)
        #expect(sameBits(FleetOutlook.estimate(state, wait: wait), reference))
        // With the order handed in, as the coordinator does.
        #expect(sameBits(FleetOutlook.estimate(state, wait: wait, order: FleetOutlook.topologicalOrder(state.nodes)), reference))
    }
}

@Test func outlookOfAStateWithNothingReadyOrEverythingDone() {
    let e = Estimate(success: 0.5, tokens: 1_000, seconds: 10)
    let nodes = (0..<5).map { PlanNode(id: "s\($0)", needs: $0 == 0 ? [] : [$0 - 1], estimates: [e], tokenCap: 100) }
    let models = [PlanModel(name: "m", priceInput: 1, priceOutput: 1)]
    // Every node in flight: none is ready, so no attempt length is reported.
    let busy = PlanState(nodes: nodes, models: models, done: [], inFlight: Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, 1) }),
                         remainingTokens: nil, remainingUSD: nil, remainingSeconds: 100)
    #expect(sameBits(FleetOutlook.estimate(busy), referenceEstimate(busy)))
    #expect(FleetOutlook.estimate(busy).attemptSeconds == 0)
    let finished = PlanState(nodes: nodes, models: models, done: Set(0..<5), inFlight: [:], remainingTokens: nil, remainingUSD: nil, remainingSeconds: 100)
    #expect(FleetOutlook.estimate(finished) == .finished(horizon: 100))
}

@Test func reapplyingABookInPlaceGivesWhatApplyGives() {
    var rng = SplitMix64(seed: 42)
    let state = randomState(&rng, nodes: 30, models: 3)
    var book = EstimateBook()
    var kept = book.apply(to: state.nodes, models: state.models)
    for round in 0..<200 {
        let v = Int.random(in: 0..<state.nodes.count, using: &rng)
        book.record(subtask: "s\(v)", model: "m\(Int.random(in: 0..<3, using: &rng))", passed: Bool.random(using: &rng),
                    tokens: Int.random(in: -10...5_000, using: &rng), seconds: round % 17 == 0 ? .nan : Double.random(in: -1...90, using: &rng))
        book.reapply(state.nodes[v], into: &kept[v], models: state.models)
        let applied = book.apply(to: state.nodes, models: state.models)
        #expect(sameBits(kept, applied), "round \(round)")
    }
    // Past the window: the oldest observations leave, in place as before.
    for _ in 0..<100 { book.record(subtask: "s0", model: "m0", passed: true, tokens: 10, seconds: 1) }
    #expect(book.observations(subtask: "s0", model: "m0")?.tokens.count == book.window)
    #expect(book.observations(subtask: "s0", model: "m0")?.passed.count == book.window)
}
