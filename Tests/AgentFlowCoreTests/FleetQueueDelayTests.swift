import AgentFlowCore
@testable import Coordinator
import Foundation
import Planner
import Testing
import Wire

/// The fleet score charges a passed-over job the queueing delay in front of its models, which
/// the coordinator measures at each full dispatch round (`noteRoundCounts`) and puts in the
/// job's view (`FleetJobView.queueDelay`).
@Suite struct FleetQueueDelayTests {
    /// Five one-attempt jobs on one 2-slot worker: at the round, 5 attempts queue for 2 free
    /// slots, so a newly queued attempt waits for the 3 beyond them, served 2 at a time at the
    /// model's mean attempt length (30 s before any attempt has finished): 45 s. The three jobs
    /// left waiting carry it in their views; once the queue is gone, the delay is 0.
    @Test func theFleetViewCarriesTheQueueingDelayInFrontOfTheModel() throws {
        let h = try CoreHarness()
        try h.register("w0#1", slots: 2)
        let out = try h.iterate((0..<5).map { _ in h.submission(oneTask) })
        #expect(CoreHarness.dispatches(out).count == 2)
        #expect(h.shell.core.fleet.queueDelay["m-small"] == 45)
        let waiting = h.shell.core.jobs.values.filter { !$0.isTerminal && $0.hasQueued }
        #expect(waiting.count == 3)
        for job in waiting {
            #expect(h.shell.core.fleetView(job, now: h.clock.wallInstant).queueDelay == 45)
        }
        // The two running attempts pass: their slots go to two waiting jobs; at that round two
        // slots were free for three queued attempts, so one is beyond them (30 s × 1 / 2).
        var next: [CoreEvent] = []
        for d in CoreHarness.dispatches(out) {
            let report = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 10, output: 10)], output: "ok"))
            next.append(.worker(.result(report), from: Data("w0#1".utf8)))
        }
        h.clock.advance(30)
        try h.iterate(next)
        #expect(h.shell.core.fleet.queueDelay["m-small"] == 15)
    }

    /// EDF and FIFO rank on deadlines or arrival and take no delay: their views carry none.
    @Test func fifoAndEDFViewsCarryNoDelay() throws {
        for policy in ["edf", "fifo"] {
            let h = try CoreHarness(scheduling: SchedulingSpec(policy: policy))
            try h.register("w0#1", slots: 1)
            try h.iterate((0..<3).map { _ in h.submission(oneTask) })
            let waiting = h.shell.core.jobs.values.filter { !$0.isTerminal && $0.hasQueued }
            #expect(waiting.count == 2, "\(policy)")
            for job in waiting { #expect(h.shell.core.fleetView(job, now: h.clock.wallInstant).queueDelay == nil, "\(policy)") }
        }
    }
}
