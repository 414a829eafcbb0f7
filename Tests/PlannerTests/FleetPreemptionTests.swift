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

private func simulatePreemption(_ specs: [FleetJobSpec], preemption: Bool) -> FleetRow {
    var settings = FleetBenchSettings()
    settings.slotsPerModel = 2
    settings.planner = "seq:1"
    let dags = [certainDAG(index: 0, seconds: 100), certainDAG(index: 1, seconds: 10)]
    return FleetSimulator(dags: dags, variant: FleetVariant(kind: .fleet, preemption: preemption), settings: settings).run(specs, load: 1)
}

/// The benchmark, by hand: two low-priority 100 s jobs hold both slots; a priority-1 10 s job
/// arrives at t = 5 with a 30 s deadline. Without preemption it waits until t = 100 and fails;
/// with it, the younger long attempt is cancelled (charged its 5 % of a run), the urgent job runs
/// 5…15, and the long job re-runs and still meets its deadline. With a loose deadline nothing is
/// preempted.
@Test func benchmarkPreemptionSavesTheUrgentJobAndOnlyThen() {
    let specs = [
        FleetJobSpec(dag: 0, arrival: 0, budgetUSD: 1, deadline: 1_000),
        FleetJobSpec(dag: 0, arrival: 0.1, budgetUSD: 1, deadline: 1_000, seed: 1),
        FleetJobSpec(dag: 1, arrival: 5, budgetUSD: 1, deadline: 30, priority: 1, seed: 2),
    ]
    let off = simulatePreemption(specs, preemption: false)
    #expect(off.outcomes == [true, true, false])
    #expect(off.preemptions == 0)
    let on = simulatePreemption(specs, preemption: true)
    #expect(on.outcomes == [true, true, true])
    #expect(on.preemptions == 1)
    #expect(on.preemptors == 1 && on.preemptorsSucceeded == 1 && on.victims == 1 && on.victimsSucceeded == 1)
    #expect(abs(on.preemptedSeconds - 4.9) < 1e-9)
    #expect(on.endedBusy == 0)
    var loose = specs
    loose[2].deadline = 500
    let relaxed = simulatePreemption(loose, preemption: true)
    #expect(relaxed.outcomes == [true, true, true])
    #expect(relaxed.preemptions == 0)
}

@Test func variantSwitchesParse() throws {
    #expect(try FleetVariant.parse("fleet:preempt").preemption)
    #expect(try FleetVariant.parse("fleet:preempt").name == "fleet:preempt")
    #expect(try !FleetVariant.parse("fleet:nopreempt").preemption)
    #expect(try FleetVariant.parse("fleet:nopreempt").name == "fleet")
    #expect(try FleetVariant.parse("edf:aware+preempt").name == "edf:aware+preempt")
    #expect(try FleetVariant.parse("fleet:preempt0.3").preemptionMinGain == 0.3)
    #expect(try FleetVariant.parse("fleet:preempt0.3").name == "fleet:preempt0.3")
    #expect(throws: (any Error).self) { try FleetVariant.parse("fleet:preempt2") }
}
