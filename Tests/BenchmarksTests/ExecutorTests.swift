import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

@Test func passAtKWaitsForTheWholeBatch() {
    // Every attempt passes and takes 2 s: a batch of 4 completes at 2 s and costs 4.
    let sim = SimModel(problem([[[row(2, true, 1)]]]), tableSize: 64)
    var rng = SplitMix64(seed: 1)
    let o = sim.drawBatch(pair: 0, kIndex: 1, rng: &rng)
    #expect(o == BatchOutcome(latency: 2, cost: 4, success: true, firstPassLatency: 2, cancelledCost: 4))
    let run = Executor().runBaseline(.sequential(k: 4), model: sim, budget: 100, deadline: 10, execSeed: 3, policySeed: 0)
    #expect(run.completed && run.constrainedSuccess)
    #expect(run.makespan == 2 && run.cost == 4 && run.rollouts == 4)
}

@Test func aBatchEndsAtItsSlowestAttemptAndPassesIfAnyPasses() {
    // Rows: fast pass (1 s), slow fail (4 s). In every batch of 16 both almost surely appear.
    let sim = SimModel(problem([[[row(1, true, 10), row(4, false, 40)]]]), tableSize: 256)
    var rng = SplitMix64(seed: 9)
    for _ in 0..<200 {
        let o = sim.drawBatch(pair: 0, kIndex: 2, rng: &rng)
        guard o.success else { continue }
        if o.latency == 4 {
            // Cancelling the slow failures at 1 s costs each a quarter of its 40: 10 per attempt.
            #expect(o.firstPassLatency == 1)
            #expect(abs(o.cancelledCost - 160) < 1e-9)
        }
    }
}

@Test func allFailMakesTheNodeReadyAgainUntilTheBudgetRunsOut() {
    // Attempts always fail and cost 1: Seq-4 with budget 10 launches 4, 4, then 2 of 4, then stops.
    let sim = SimModel(problem([[[row(1, false, 1)]]]), tableSize: 0)
    let run = Executor().runBaseline(.sequential(k: 4), model: sim, budget: 10, deadline: 100, execSeed: 1, policySeed: 0)
    #expect(!run.completed)
    #expect(run.termination == .budgetExhausted)
    #expect(run.rollouts == 10 && run.cost == 10)
    #expect(run.decisions == 4)
}

@Test func referenceRuleFailsAnActionThatDoesNotFit() {
    // One node, one model costing 1 per attempt: MCPP's candidates all cost ≥ 1 > 0.5.
    let sim = SimModel(problem([[[row(1, true, 1)]]]), tableSize: 0)
    let planner = MCPP(model: sim, config: MCPPConfig(simulations: 8, threads: 1))
    let broke = Executor().runMCPP(planner, budget: 0.5, deadline: 10, execSeed: 1, policySeed: 1)
    #expect(broke.termination == .budgetExhausted && broke.cost == 0 && !broke.constrainedSuccess)
    // Enough money but every attempt takes 5 s against a 2 s deadline.
    let slow = MCPP(model: SimModel(problem([[[row(5, true, 1)]]]), tableSize: 0), config: MCPPConfig(simulations: 8, threads: 1))
    let late = Executor().runMCPP(slow, budget: 100, deadline: 2, execSeed: 1, policySeed: 1)
    #expect(late.termination == .deadlineExhausted && late.makespan == 2)
}

@Test func liveRuleNeverLaunchesWhatDoesNotFitAndNeverOverspends() {
    // Worst case 3 per attempt, actual 1: with budget 5 at most one attempt is in flight at a time.
    var p = problem([[[row(1, false, 1), row(1, true, 1)]], [[row(1, true, 1)]]], parents: [[], [0]])
    p.worstCaseCost = [[3], [3]]
    let sim = SimModel(p, tableSize: 64)
    let planner = MCPP(model: sim, config: MCPPConfig(simulations: 16, threads: 1, rollout: RolloutOptions(semantics: .live)))
    for seed in 0..<20 as Range<UInt64> {
        let run = Executor(semantics: .live).runMCPP(planner, budget: 5, deadline: 100, execSeed: seed, policySeed: seed)
        #expect(run.cost <= 5)
        #expect(run.termination != .deadlineExhausted)
    }
}

@Test func siblingCancellationEndsTheNodeAtTheFirstPass() {
    let sim = SimModel(problem([[[row(1, true, 10), row(4, false, 40)]]]), tableSize: 0)
    let plain = Executor().runBaseline(.sequential(k: 16), model: sim, budget: 1e9, deadline: 100, execSeed: 5, policySeed: 0)
    let cancel = Executor(cancelSiblings: true).runBaseline(.sequential(k: 16), model: sim, budget: 1e9, deadline: 100,
                                                            execSeed: 5, policySeed: 0)
    #expect(plain.makespan == 4 && cancel.makespan == 1)
    #expect(cancel.cost == 160 && plain.cost > cancel.cost)
}

@Test func staticBaselinesFollowTheirDefinitions() {
    // Chain 0 → 1 → 2 with mean latencies 1, 2, 3 and success rates 1/2, 3/4, 1.
    let rows: [[[SimSample]]] = [
        [[row(1, true, 1), row(1, false, 1)]],
        [[row(2, true, 1), row(2, true, 1), row(2, true, 1), row(2, false, 1)]],
        [[row(3, true, 1)]],
    ]
    let p = problem(rows, parents: [[], [0], [1]])
    var rng = SplitMix64(seed: 0)
    #expect(Baseline.uniform.budgetShares(p, budget: 12, rng: &rng) == [4, 4, 4])
    #expect(Baseline.latencyWeighted.budgetShares(p, budget: 12, rng: &rng) == [2, 4, 6])
    let srw = Baseline.successRateWeighted.budgetShares(p, budget: 12, rng: &rng)!
    #expect(abs(srw[0] - 8) < 1e-6 && abs(srw[1] - 4) < 1e-6 && srw[2] < 1e-6)
    // Longest mean-latency path to a sink: 6, 5, 3.
    let cps = Baseline.criticalPathStatic.budgetShares(p, budget: 14, rng: &rng)!
    #expect(zip(cps, [6.0, 5, 3]).allSatisfy { abs($0 - $1) < 1e-9 })
    let random = Baseline.random.budgetShares(p, budget: 12, rng: &rng)!
    #expect(abs(random.reduce(0, +) - 12) < 1e-9 && random.allSatisfy { $0 > 0 })
    #expect(Baseline.sequential(k: 4).budgetShares(p, budget: 12, rng: &rng) == nil)
}

@Test func staticBaselinesDispatchOnceAndNeverRetry() {
    // Two independent nodes whose attempts always fail, cost 1: uniform with budget 10 gives each
    // floor(5 / 1) = 5 attempts once, then the run stalls.
    let sim = SimModel(problem([[[row(1, false, 1)]], [[row(1, false, 1)]]]), tableSize: 0)
    let run = Executor().runBaseline(.uniform, model: sim, budget: 10, deadline: 100, execSeed: 1, policySeed: 0)
    #expect(run.rollouts == 10 && run.cost == 10)
    #expect(run.termination == .stalled && !run.completed)
}

@Test func baselineDeadlineIsAppliedOffline() {
    // Completes at 3 s: a success without a deadline, not within 2 s.
    let sim = SimModel(problem([[[row(3, true, 1)]]]), tableSize: 0)
    let run = Executor().runBaseline(.sequential(k: 1), model: sim, budget: 10, deadline: 2, execSeed: 1, policySeed: 0)
    #expect(run.completed && !run.constrainedSuccess && run.makespan == 3)
}

@Test func liveSlotsCapHowManyAttemptsRunAtOnce() {
    // Attempts pass 1 time in 4; a tight deadline makes MCPP want a wide batch, but one slot
    // allows one attempt at a time.
    let rows = [row(1, true, 1), row(1, false, 1), row(1, false, 1), row(1, false, 1)]
    let sim = SimModel(problem([[rows]]), tableSize: 64)
    let planner = MCPP(model: sim, config: MCPPConfig(simulations: 16, threads: 1, rollout: RolloutOptions(semantics: .live)))
    let wide = Executor(semantics: .live).runMCPP(planner, budget: 1_000, deadline: 1.5, execSeed: 4, policySeed: 4)
    #expect(wide.rollouts >= 16)
    for seed in 0..<10 as Range<UInt64> {
        let narrow = Executor(semantics: .live).runMCPP(planner, budget: 1_000, deadline: 1.5, slots: [1], execSeed: seed, policySeed: seed)
        // One attempt at 0 s and, if it failed, one more at 1 s: never two at once.
        #expect(narrow.rollouts <= 2)
    }
}
