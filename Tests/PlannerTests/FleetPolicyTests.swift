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

/// Admission: a job not yet admitted that cannot finish after the wait in front of it goes after
/// every job that can (it is not dropped: alone, it is still served); an admitted job is never
/// held; no test, no hold.
@Test func fleetAdmissionHoldsANewJobThatCannotFinishBehindTheQueue() {
    let policy = FleetPolicy(kind: .fleet, admissionThreshold: 0.2)
    // Urgent and new: 20 s of slack, but 100 s of admitted work queued in front of it.
    let late = FleetJobView(id: "late", submittedAt: 4, deadline: 34, waitingSince: 4, outlook: outlook(slack: 20),
                            admitted: false, startWait: 100)
    let roomy = FleetJobView(id: "roomy", submittedAt: 3, deadline: 900, waitingSince: 3, outlook: outlook(slack: 800),
                             admitted: false, startWait: 100)
    let running = FleetJobView(id: "running", submittedAt: 0, deadline: 900, waitingSince: 2, outlook: outlook(slack: 700))
    #expect(policy.holds(late) && !policy.holds(roomy) && !policy.holds(running))
    #expect(policy.rank([late, roomy, running], now: 5).last == 0)
    // Without the test, the urgent job's marginal gain puts it first.
    #expect(FleetPolicy(kind: .fleet).rank([late, roomy, running], now: 5).first == 0)
    // Admitted, the same job is not held; nor with nothing in front of it.
    var admitted = late
    admitted.admitted = true
    #expect(!policy.holds(admitted))
    var free = late
    free.startWait = 0
    #expect(!policy.holds(free))
    // FIFO and EDF have no admission test.
    #expect(!FleetPolicy(kind: .edf, admissionThreshold: 0.2).holds(late))
    // Held, it still takes a slot nobody else can use.
    let order = policy.dispatchOrder([late, roomy, running], now: 5, usage: [:])
    #expect(order.next { $0 == 0 } == 0)
}

/// Hostile waits and outlooks, and many jobs: NaN wait (unknown) never holds, an infinite one
/// always does below a positive threshold; the order stays a strict total order with every held
/// job after every job that is not (until aging lifts it).
@Test func fleetAdmissionWithHostileValuesAndThousandsOfJobs() {
    let policy = FleetPolicy(kind: .fleet, admissionThreshold: 0.3)
    var job = FleetJobView(id: "x", submittedAt: 0, deadline: 100, waitingSince: 0, outlook: outlook(slack: 50), admitted: false, startWait: .nan)
    #expect(!policy.holds(job))
    job.startWait = .infinity
    #expect(policy.holds(job))
    job.startWait = -1e300
    #expect(!policy.holds(job))  // a negative wait is no wait
    job.startWait = 1e308
    #expect(policy.holds(job))
    #expect(!FleetPolicy(kind: .fleet, admissionThreshold: 0).holds(job))
    var rng = SplitMix64(seed: 7)
    let hostile: [Double] = [.nan, .infinity, -.infinity, 0, -5, 1e308, 30, 300]
    let jobs = (0..<2_000).map { i -> FleetJobView in
        let slack = [Double.nan, .infinity, -.infinity, -100, 0, 10, 100, 1e6][rng.below(8)]
        let o = FleetOutlook(pathSeconds: [10.0, .nan, .infinity, 0][rng.below(4)], pathDeviation: [1.0, 0, .nan][rng.below(3)],
                             horizon: 10 + slack, budgetProbability: [1.0, 0.5, 0, .nan][rng.below(4)],
                             slotSeconds: [10.0, 0, .infinity][rng.below(3)], attemptSeconds: [5.0, 0, .nan][rng.below(3)])
        return FleetJobView(id: "j\(i)", priority: 0, submittedAt: Double(i), deadline: 1_000, waitingSince: 0, outlook: o,
                            admitted: rng.below(2) == 0, startWait: hostile[rng.below(hostile.count)])
    }
    let ranked = policy.rank(jobs, now: 0)
    #expect(Set(ranked).count == jobs.count)
    let scores = policy.scores(jobs, now: 0)
    #expect(scores.allSatisfy { !$0.isNaN })
    for (a, b) in zip(ranked, ranked.dropFirst()) {
        #expect(policy.precedes(jobs[a], scores[a], jobs[b], scores[b]))
        #expect(!policy.precedes(jobs[b], scores[b], jobs[a], scores[a]))
    }
    let held = ranked.map { policy.holds(jobs[$0]) }
    #expect(held.contains(true) && held.contains(false))
    #expect(held.firstIndex(of: true)! > held.lastIndex(of: false)!, "a held job ranked before one that is not")
}

/// The order changes when a job finishes, not what it costs: a job short of budget whose deadline
/// is near still goes before a relaxed one, and two jobs alike but for the budget tie on score.
@Test func fleetRanksOnTimeNotOnTheBudgetProbability() {
    let policy = FleetPolicy(kind: .fleet)
    var tightBudget = outlook(slack: 2)
    tightBudget.budgetProbability = 0.3
    let urgent = FleetJobView(id: "urgent", submittedAt: 3, deadline: 20, waitingSince: 3, outlook: tightBudget)
    let relaxed = FleetJobView(id: "relaxed", submittedAt: 1, deadline: 900, waitingSince: 1, outlook: outlook(slack: 800))
    #expect(policy.rank([relaxed, urgent], now: 5) == [1, 0])
    var rich = urgent
    rich.id = "rich"
    rich.outlook.budgetProbability = 1
    #expect(policy.fleetScore(urgent, now: 5) == policy.fleetScore(rich, now: 5))
    // A budget probability that is NaN or out of range changes nothing either.
    for b in [Double.nan, -1, 7, .infinity] {
        var odd = urgent
        odd.outlook.budgetProbability = b
        #expect(policy.fleetScore(odd, now: 5) == policy.fleetScore(rich, now: 5))
    }
    // The outlook's success still weighs the budget (admission and preemption read it).
    #expect(abs(tightBudget.success - 0.3 * tightBudget.onTime()) < 1e-12)
}

/// The "served now rather than later" term charges a passed-over job the queueing delay in front
/// of its models when the view knows it: with slots free a job loses about one attempt by
/// waiting, so a job whose slack covers that goes after one that does more per slot-second;
/// behind a long queue it goes first, as with the old fixed 30 s.
@Test func fleetChargesAPassedOverJobTheRealQueueingDelay() {
    let policy = FleetPolicy(kind: .fleet)
    // 20 s of slack, a 10 s attempt, 100 slot-seconds of work; and a relaxed job with 20 left.
    var edge = FleetJobView(id: "edge", submittedAt: 0, deadline: 130, waitingSince: 0, outlook: outlook(slack: 20, path: 100, attempt: 10, work: 100))
    var dense = FleetJobView(id: "dense", submittedAt: 0, deadline: 2_000, waitingSince: 0, outlook: outlook(slack: 1_000, path: 20, attempt: 10, work: 20))
    // Unknown delay: the default 30 s would make the edge job late, so it goes first.
    #expect(policy.rank([dense, edge], now: 0) == [1, 0])
    // No queue: waiting costs one 10 s attempt, which its slack covers; the dense job goes first.
    edge.queueDelay = 0
    dense.queueDelay = 0
    #expect(policy.rank([dense, edge], now: 0) == [0, 1])
    #expect(policy.fleetScore(edge, now: 0) < policy.fleetScore(edge, now: 0, delay: 30))
    // A long queue in front of it: the edge job first again.
    edge.queueDelay = 90
    dense.queueDelay = 90
    #expect(policy.rank([dense, edge], now: 0) == [1, 0])
    // An explicit delay overrides the view's.
    #expect(policy.fleetScore(edge, now: 0, delay: 0) == policy.fleetScore({ var e = edge; e.queueDelay = 0; return e }(), now: 0))
    // A delay that is NaN, negative or infinite is not known: the default applies.
    var unknown = edge
    unknown.queueDelay = nil
    for d in [Double.nan, -5, .infinity, -.infinity] {
        var odd = edge
        odd.queueDelay = d
        #expect(policy.fleetScore(odd, now: 0) == policy.fleetScore(unknown, now: 0))
    }
}
