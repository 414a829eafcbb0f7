import AgentFlowCore
@testable import Coordinator
import Foundation
import Planner
import Testing
import Wire

/// The fleet score charges a passed-over job the queueing delay in front of its models, which
/// the coordinator measures at each full dispatch round (`noteRoundCounts`) and puts in the
/// job's view (`FleetJobView.queueDelay`). With prefetch 1, so attempts held queued at a worker count.
@Suite struct FleetQueueDelayTests {
    func waiting(_ h: CoreHarness) -> [JobRun] {
        h.shell.core.jobs.values.filter { !$0.isTerminal && $0.hasQueued }
    }

    /// Seven one-attempt jobs on one 2-slot worker: at the round, 7 attempts queue for 2 free
    /// slots, so a newly queued attempt waits for the 5 beyond them, served 2 at a time at the
    /// model's mean attempt length (30 s before any attempt has finished): 75 s. The worker takes
    /// 4 (2 run, 2 held queued there); the 3 jobs left waiting carry 75 s in their views. At the
    /// next full round one more job has queued and the 2 held at the worker are ahead of the 4
    /// queued here, with no slot free: 6 × 30 / 2 = 90 s.
    @Test func theFleetViewCarriesTheQueueingDelayInFrontOfTheModel() throws {
        let h = try CoreHarness(prefetch: 1)
        try h.register("w0#1", slots: 2)
        let out = try h.iterate((0..<7).map { _ in h.submission(oneTask) })
        #expect(CoreHarness.dispatches(out).count == 4)
        #expect(h.shell.core.fleet.queueDelay["m-small"] == 75)
        #expect(waiting(h).count == 3)
        for job in waiting(h) {
            #expect(h.shell.core.fleetView(job, now: h.clock.wallInstant).queueDelay == 75)
        }
        h.clock.advance(1)
        try h.iterate([h.submission(oneTask)])
        #expect(h.shell.core.fleet.queueDelay["m-small"] == 90)
        #expect(waiting(h).count == 4)
        for job in waiting(h) {
            #expect(h.shell.core.fleetView(job, now: h.clock.wallInstant).queueDelay == 90)
        }
    }

    /// EDF and FIFO rank on deadlines or arrival and take no delay: their views carry none.
    @Test func fifoAndEDFViewsCarryNoDelay() throws {
        for policy in ["edf", "fifo"] {
            let h = try CoreHarness(scheduling: SchedulingSpec(policy: policy), prefetch: 1)
            try h.register("w0#1", slots: 1)
            try h.iterate((0..<4).map { _ in h.submission(oneTask) })
            #expect(waiting(h).count == 2, "\(policy)")
            for job in waiting(h) { #expect(h.shell.core.fleetView(job, now: h.clock.wallInstant).queueDelay == nil, "\(policy)") }
        }
    }
}
