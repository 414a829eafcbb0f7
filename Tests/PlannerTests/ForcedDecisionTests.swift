import AgentFlowCore
import Testing
@testable import Planner

/// MCPP skips its simulations when the free slots leave every candidate one outcome
/// (`MCPPPlanner.forcedAction`): the launches must be those of the full search, in every state.
@Suite struct ForcedDecisionTests {
    /// A random job state: 1–6 nodes in a random DAG, 1–3 models (some nodes without some
    /// models), free slots 0/1/2/unlimited per model, budgets from hopeless to ample, some
    /// nodes done or in flight, a queue wait.
    static func randomState(_ rng: inout SplitMix64) -> PlanState {
        func below(_ n: Int) -> Int { rng.below(n) }
        let modelCount = 1 + below(3)
        let models = (0..<modelCount).map { m in
            let free: Int? = [0, 1, 1, 2, nil][below(5)]
            return PlanModel(name: "m\(m)", priceInput: [0.1, 1, 10][below(3)], priceOutput: [0.2, 2, 20][below(3)],
                             freeSlots: free, totalSlots: free.map { $0 + below(3) })
        }
        let nodeCount = 1 + below(6)
        var nodes: [PlanNode] = []
        for v in 0..<nodeCount {
            let needs = (0..<v).filter { _ in below(3) == 0 }
            var estimates: [Estimate?] = (0..<modelCount).map { _ in
                below(4) == 0 ? nil : Estimate(success: [0.2, 0.5, 0.9, 1][below(4)], tokens: Double(100 + below(900)), seconds: Double(1 + below(60)))
            }
            if estimates.allSatisfy({ $0 == nil }) { estimates[below(modelCount)] = Estimate(success: 0.7, tokens: 400, seconds: 10) }
            nodes.append(PlanNode(id: "n\(v)", needs: needs, estimates: estimates, tokenCap: 500 + below(2_000)))
        }
        var done = Set<Int>(), inFlight: [Int: Int] = [:]
        for v in 0..<nodeCount where nodes[v].needs.allSatisfy(done.contains) {
            switch below(4) {
            case 0: done.insert(v)
            case 1: inFlight[v] = 1 + below(2)
            default: break
            }
        }
        var state = PlanState(nodes: nodes, models: models, done: done, inFlight: inFlight, remainingTokens: below(3) == 0 ? 500 + below(20_000) : nil,
                              remainingUSD: [nil, 0.0001, 0.001, 0.01, 1][below(5)], remainingSeconds: Double([5, 60, 600, 86_400][below(4)]))
        state.queueWait = models.map { _ in Double([0, 0, 30, 3_000][below(4)]) }
        return state
    }

    @Test func forcedDecisionsLaunchWhatTheFullSearchLaunches() {
        var rng = SplitMix64(seed: 16)
        var forced = 0, searched = 0
        for i in 0..<400 {
            let state = Self.randomState(&rng)
            var full = MCPPPlanner(seed: UInt64(i))
            full.skipsForcedDecisions = false
            var quick = full
            quick.skipsForcedDecisions = true
            let (ordered, _) = MCPPPlanner.cheapestPassFirst(state)
            if let c = quick.compile(ordered, tables: quick.tableSize),
               MCPPPlanner.forcedAction(c, ready: MCPP(model: c.model, config: quick.config).dispatchable(c.state)) != nil {
                forced += 1
            } else {
                searched += 1
            }
            #expect(quick.decide(state) == full.decide(state), "state \(i): \(state.models.map { $0.freeSlots as Any }) ready \(state.ready)")
        }
        // Both paths were exercised.
        #expect(forced > 50 && searched > 50, "forced \(forced), searched \(searched)")
    }

    @Test func oneFreeSlotOfTheOnlyModelGoesToTheFirstReadyNodeTheBudgetCovers() {
        let est = Estimate(success: 0.9, tokens: 100, seconds: 5)
        let model = PlanModel(name: "m", priceInput: 1, priceOutput: 1, freeSlots: 1, totalSlots: 4)
        // a is dear (its token cap needs more than is left), b and c are cheap: b gets the slot.
        let nodes = [PlanNode(id: "a", needs: [], estimates: [est], tokenCap: 5_000),
                     PlanNode(id: "b", needs: [], estimates: [est], tokenCap: 100),
                     PlanNode(id: "c", needs: [], estimates: [est], tokenCap: 100)]
        let state = PlanState(nodes: nodes, models: [model], done: [], inFlight: [:], remainingTokens: 1_000, remainingUSD: nil, remainingSeconds: 600)
        #expect(MCPPPlanner().decide(state) == [Launch(node: 1, model: 0, samples: 1)])
        var none = state
        none.models[0].freeSlots = 0
        #expect(MCPPPlanner().decide(none) == [])
    }
}
