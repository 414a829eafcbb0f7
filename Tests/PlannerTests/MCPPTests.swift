import Testing
@testable import Planner
import TestSupport

@Test func tightDeadlineBuysManySamplesOfTheFastModel() {
    // Model 0: 1 s, passes 1 time in 4. Model 1: 10 s, always passes. Deadline 1.5 s (one round),
    // ample budget: only a wide batch of the fast model is likely to pass in time.
    let fast = [row(1, true, 1), row(1, false, 1), row(1, false, 1), row(1, false, 1)]
    let sim = SimModel(problem([[fast, [row(10, true, 1)]]]))
    let mcpp = MCPP(model: sim, config: MCPPConfig(simulations: 64, threads: 1))
    let d = mcpp.decide(SimState(done: 0, budget: 1_000, horizon: 1.5), seed: 7)
    #expect(d.action.count == 1)
    #expect(d.action[0].model == 0)
    #expect(sim.ks[d.action[0].kIndex] >= 16)
    #expect(d.score > 0.95)
}

@Test func tightBudgetBuysOneSampleOfTheCheapestAdequateModel() {
    // Both models always pass; model 1 costs 10× model 0. Budget 1.5, a day of time.
    let sim = SimModel(problem([[[row(5, true, 1)], [row(1, true, 10)]]]))
    let mcpp = MCPP(model: sim, config: MCPPConfig(simulations: 64, threads: 1))
    let d = mcpp.decide(SimState(done: 0, budget: 1.5, horizon: 86_400), seed: 7)
    #expect(d.action == [Assignment(node: 0, model: 0, kIndex: 0)])
    #expect(d.score == 1)
}

@Test func candidatesFollowTheReferenceOrder() {
    let sim = SimModel(problem([[[row(1, true, 1)], [row(1, true, 1)]],
                                [[row(1, true, 1)], [row(1, true, 1)]]]))
    let mcpp = MCPP(model: sim)
    var rng = SplitMix64(seed: 1)
    let single = mcpp.candidates(ready: [0], rng: &rng)
    // One ready node: the 2 models × 4 k levels, k-major from the uniform part.
    #expect(single.count == 8)
    #expect(single[0] == [Assignment(node: 0, model: 0, kIndex: 0)])
    #expect(single[1] == [Assignment(node: 0, model: 1, kIndex: 0)])
    let both = mcpp.candidates(ready: [0, 1], rng: &rng)
    // Uniform (m, k) on both (8), then the 8 × 8 product (64, of which the 8 uniform ones repeat).
    #expect(both.count == 64)
    #expect(Set(both).count == both.count)
    #expect(both[0] == [Assignment(node: 0, model: 0, kIndex: 0), Assignment(node: 1, model: 0, kIndex: 0)])
    var capped = MCPP(model: sim)
    capped.config.maxCandidates = 10
    #expect(capped.candidates(ready: [0, 1], rng: &rng).count == 10)
}

@Test func referenceShortcutDoesNotChangeDecisions() {
    // Actions whose cheapest draw does not fit are scored 0 without simulation; the chosen pair
    // must be the one the exhaustive scoring picks.
    let rows = [row(1, true, 1), row(2, false, 2)]
    let sim = SimModel(problem([[rows, rows], [rows, rows]]))
    var config = MCPPConfig.reference
    config.threads = 1
    let mcpp = MCPP(model: sim, config: config)
    let d = mcpp.decide(SimState(done: 0, budget: 6, horizon: 100), seed: 3)
    let total = d.action.reduce(0) { $0 + sim.ks[$1.kIndex] }
    #expect(total <= 6)
    #expect(d.score > 0)
}

@Test func surelyHopelessStatesAreRecognisedExactly() {
    // Chain 0 → 1; the fastest row takes 1 s and the cheapest costs 1.
    let rows = [row(1, true, 1), row(3, true, 2)]
    let sim = SimModel(problem([[rows], [rows]], parents: [[], [0]]))
    let reference = RolloutOptions()
    #expect(sim.surelyHopeless(SimState(done: 0, budget: 100, horizon: 1.5), options: reference))
    #expect(!sim.surelyHopeless(SimState(done: 0, budget: 100, horizon: 2.5), options: reference))
    #expect(sim.surelyHopeless(SimState(done: 0, budget: 1.5, horizon: 100), options: reference))
    // Live: reservations come back, so the budget bound does not apply.
    #expect(!sim.surelyHopeless(SimState(done: 0, budget: 1.5, horizon: 100), options: RolloutOptions(semantics: .live)))
    // Node 0 running with 0.5 s left: 0.5 + 1 fits 1.6 s.
    let running = SimState(done: 0, budget: 100, horizon: 1.6,
                           inFlight: [InFlightBatch(node: 0, model: 0, running: 1, remaining: 0.5)])
    #expect(!sim.surelyHopeless(running, options: reference))
    let d = MCPP(model: sim, config: MCPPConfig(simulations: 8, threads: 1)).decide(SimState(done: 0, budget: 100, horizon: 1.5), seed: 1)
    #expect(d.score == 0 && d.rollouts == 0 && d.action == [Assignment(node: 0, model: 0, kIndex: 0)])
}
