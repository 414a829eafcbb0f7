import Testing
@testable import Planner

/// Two slots of model 0, both running a low-priority job's 100 s attempt (started at 0 and at 2);
/// a priority-1 job with one 10 s node waits for model 0 at t = 5 with `horizon` seconds left.
private func twoBusySlots(horizon: Double, urgentPriority: Int = 1) -> (jobs: [FleetJobView], waiting: [WaitingJobView], running: [RunningAttemptView]) {
    let urgent = FleetJobView(id: "urgent", priority: urgentPriority, submittedAt: 5, deadline: 5 + horizon, waitingSince: 5,
                              outlook: FleetOutlook(pathSeconds: 10, pathDeviation: 1, horizon: horizon, budgetProbability: 1,
                                                    slotSeconds: 10, attemptSeconds: 10))
    func long(_ id: String) -> FleetJobView {
        FleetJobView(id: id, submittedAt: 0, deadline: 5_000, waitingSince: 5,
                     outlook: FleetOutlook(pathSeconds: 50, pathDeviation: 5, horizon: 4_995, budgetProbability: 1, slotSeconds: 50, attemptSeconds: 0))
    }
    return ([urgent, long("a"), long("b")], [WaitingJobView(job: 0, model: 0)],
            [RunningAttemptView(job: 1, model: 0, startedAt: 0, expectedSeconds: 100),
             RunningAttemptView(job: 2, model: 0, startedAt: 2, expectedSeconds: 100)])
}

/// The urgent job would wait ~95 s for a slot with 30 s left: it takes the slot of the attempt
/// with the least work done; the long job has ~4,900 s of slack and loses nothing that matters.
@Test func preemptsForAJobAtRiskTheAttemptWithLeastWorkDone() {
    let (jobs, waiting, running) = twoBusySlots(horizon: 30)
    for kind in FleetPolicyKind.allCases {
        let d = FleetPolicy(kind: kind).preemptions(jobs: jobs, waiting: waiting, running: running, freeSlots: [:], now: 5,
                                                    rules: PreemptionRules())
        #expect(d.count == 1, "\(kind)")
        #expect(d.first?.job == 0 && d.first?.victim == 1, "\(kind)")
        #expect((d.first?.gain ?? 0) > 0.9 && (d.first?.loss ?? 1) < 0.01, "\(kind)")
    }
}

@Test func doesNotPreemptWithEnoughSlackOrAgainstTheRules() {
    let policy = FleetPolicy(kind: .fleet)
    let rules = PreemptionRules()
    // 500 s left: waiting ~95 s costs nothing.
    let roomy = twoBusySlots(horizon: 500)
    #expect(policy.preemptions(jobs: roomy.jobs, waiting: roomy.waiting, running: roomy.running, freeSlots: [:], now: 5, rules: rules).isEmpty)
    let (jobs, waiting, running) = twoBusySlots(horizon: 30)
    // A free slot (or one being freed) of the model: nothing to take.
    #expect(policy.preemptions(jobs: jobs, waiting: waiting, running: running, freeSlots: [0: 1], now: 5, rules: rules).isEmpty)
    // Never for a job of lower priority than the victims'.
    var humble = jobs
    humble[1].priority = 2
    humble[2].priority = 2
    #expect(policy.preemptions(jobs: humble, waiting: waiting, running: running, freeSlots: [:], now: 5, rules: rules).isEmpty)
    // Attempts past half their expected length, or re-running a preempted attempt, are kept.
    #expect(policy.preemptions(jobs: jobs, waiting: waiting, running: running, freeSlots: [:], now: 60, rules: rules).isEmpty)
    let immune = running.map { a -> RunningAttemptView in var a = a; a.preemptible = false; return a }
    #expect(policy.preemptions(jobs: jobs, waiting: waiting, running: immune, freeSlots: [:], now: 5, rules: rules).isEmpty)
    // Within the cooldown, a job that was preempted neither preempts nor is preempted again.
    #expect(policy.preemptions(jobs: jobs, waiting: waiting, running: running, freeSlots: [:], now: 5, rules: rules,
                               preemptedAt: [0: 0]).isEmpty)
    let d = policy.preemptions(jobs: jobs, waiting: waiting, running: running, freeSlots: [:], now: 5, rules: rules, preemptedAt: [2: 0])
    #expect(d.map(\.victim) == [0])
    // A job with an attempt queued ahead of it on the model would not get the freed slot.
    #expect(policy.preemptions(jobs: jobs, waiting: [WaitingJobView(job: 0, model: 0, queuedAhead: 1)], running: running,
                               freeSlots: [:], now: 5, rules: rules).isEmpty)
}
