import AgentFlowCore
import Testing
@testable import Planner

func outlook(slack: Double, path: Double = 10, attempt: Double = 10, work: Double = 10) -> FleetOutlook {
    FleetOutlook(pathSeconds: path, pathDeviation: 1, horizon: path + slack, budgetProbability: 1, slotSeconds: work, attemptSeconds: attempt)
}

@Test func fifoAndEDFOrderByPriorityThenSubmissionOrDeadline() {
    let jobs = [
        FleetJobView(id: "a", submittedAt: 1, deadline: 100, waitingSince: 1, outlook: outlook(slack: 50)),
        FleetJobView(id: "b", submittedAt: 2, deadline: 50, waitingSince: 2, outlook: outlook(slack: 20)),
        FleetJobView(id: "c", priority: 1, submittedAt: 3, deadline: 200, waitingSince: 3, outlook: outlook(slack: 100)),
    ]
    #expect(FleetPolicy(kind: .fifo).rank(jobs, now: 5) == [2, 0, 1])
    #expect(FleetPolicy(kind: .edf).rank(jobs, now: 5) == [2, 1, 0])
}

@Test func fleetServesTheJobThatLosesMostByWaitingAndPutsHopelessJobsLast() {
    let urgent = FleetJobView(id: "urgent", submittedAt: 3, deadline: 20, waitingSince: 3, outlook: outlook(slack: 2))
    let relaxed = FleetJobView(id: "relaxed", submittedAt: 1, deadline: 900, waitingSince: 1, outlook: outlook(slack: 800))
    let hopeless = FleetJobView(id: "hopeless", submittedAt: 0, deadline: 12, waitingSince: 0, outlook: outlook(slack: -30))
    let policy = FleetPolicy(kind: .fleet)
    #expect(policy.rank([relaxed, hopeless, urgent], now: 5) == [2, 0, 1])
    // Priority outweighs the rest.
    var important = hopeless
    important.priority = 3
    #expect(policy.rank([relaxed, important, urgent], now: 5).first == 1)
}

@Test func fleetAgingLiftsAStarvedJob() {
    let policy = FleetPolicy(kind: .fleet, agingSeconds: 60)
    let fresh = FleetJobView(id: "fresh", submittedAt: 1_000, deadline: 5_000, waitingSince: 1_000, outlook: outlook(slack: 10, work: 10))
    // A job with ten times the work left ranks below a fresh one, until it has waited long enough.
    let big = FleetJobView(id: "big", submittedAt: 0, deadline: 1e9, waitingSince: 1_000, outlook: outlook(slack: 1e8, work: 100))
    #expect(policy.rank([big, fresh], now: 1_000) == [1, 0])
    var old = big
    old.waitingSince = 1_000 - 60 * 6
    #expect(policy.rank([old, fresh], now: 1_000) == [0, 1])
}

@Test func fairShareSplitsSlotSecondsByWeight() {
    let policy = FleetPolicy(kind: .fleet, tenantWeights: ["a": 2, "b": 1])
    // Tenant b's job would win on score alone; fair share still gives a two thirds of the slots.
    let jobs = [
        FleetJobView(id: "a1", tenant: "a", submittedAt: 0, deadline: 1e6, waitingSince: 0, outlook: outlook(slack: 1e5, work: 50)),
        FleetJobView(id: "b1", tenant: "b", submittedAt: 0, deadline: 1e6, waitingSince: 0, outlook: outlook(slack: 1e5, work: 5)),
    ]
    var order = policy.dispatchOrder(jobs, now: 0, usage: [:])
    var given = [0, 0]
    for _ in 0..<300 {
        let j = order.next { _ in true }!
        given[j] += 1
        order.charge(j, seconds: 1)
    }
    #expect(given == [200, 100])
    #expect(abs(jainIndex(usage: ["a": 200, "b": 100], weights: ["a": 2, "b": 1]) - 1) < 1e-12)
    #expect(abs(jainIndex(usage: ["a": 300, "b": 0]) - 0.5) < 1e-12)
}

@Test func outlookSeesTheDeadlineTheBudgetAndTheQueue() {
    let model = PlanModel(name: "m", priceInput: 1, priceOutput: 1)
    let e = Estimate(success: 0.5, tokens: 1_000, seconds: 10)
    let nodes = [PlanNode(id: "a", needs: [], estimates: [e], tokenCap: 2_000), PlanNode(id: "b", needs: [0], estimates: [e], tokenCap: 2_000)]
    let roomy = PlanState(nodes: nodes, models: [model], done: [], inFlight: [:], remainingTokens: nil, remainingUSD: 1, remainingSeconds: 400)
    let o = FleetOutlook.estimate(roomy)
    #expect(abs(o.pathSeconds - 40) < 1e-9)  // two nodes, 10 s / 0.5 each
    #expect(o.success > 0.95)
    #expect(FleetOutlook.estimate(roomy, wait: [300]).success < 0.2)  // each attempt queues 300 s
    var tight = roomy
    tight.remainingSeconds = 5
    #expect(FleetOutlook.estimate(tight).success < 0.1)
    var poor = roomy
    poor.remainingUSD = 0.0005  // expected spend $0.004
    #expect(FleetOutlook.estimate(poor).success < 0.1)
    var finished = roomy
    finished.done = [0, 1]
    #expect(FleetOutlook.estimate(finished).success == 1)
}

/// One slot, busy until t = 10. Two loose jobs queue, then a tight one that makes its deadline
/// only if it goes first: FIFO loses it, EDF and fleet keep all three.
