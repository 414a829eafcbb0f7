import AgentFlowCore
@testable import Coordinator
import Foundation
import Testing
import Wire

/// The attempts ahead of a waiting job (what its planner reads, `queuedAhead(of:)`) stay current
/// between full dispatch rounds: the index over the kept order (`AheadIndex`) follows attempts
/// as they enter and leave the queue and jobs as they are planned in, instead of keeping the
/// counts of the last full round.
@Suite struct QueuedAheadCoreTests {
    /// Per job of the kept order, the queued attempts of the unfinished jobs before it: a walk.
    static func walked(_ core: borrowing CoordinatorCore) -> [ObjectIdentifier: [String: Int]] {
        var out: [ObjectIdentifier: [String: Int]] = [:]
        var sofar: [String: Int] = [:]
        for job in core.fleet.order {
            out[ObjectIdentifier(job)] = sofar
            guard !job.isTerminal else { continue }
            for (model, n) in job.queuedByModel { sofar[model, default: 0] += n }
        }
        return out
    }

    @Test(arguments: ["fifo", "edf", "fleet"]) func attemptsAheadFollowTheQueueBetweenFullRounds(policy: String) throws {
        let h = try CoreHarness(scheduling: SchedulingSpec(policy: policy), prefetch: 0)
        try h.register("w0#1", slots: 1)
        // One full round: one attempt runs, five wait, each behind the ones ranked before it.
        try h.iterate((0..<6).map { i in h.submission(oneTask, deadline: 3_600 - Double(i) * 60) })
        var running = CoreHarness.dispatches(h.sent).map(\.spec)
        #expect(running.count == 1)
        let last = try #require(h.shell.core.fleet.order.last)
        #expect(h.shell.core.queuedAhead(of: last)["m-small"] == 4)
        // Results 10 ms apart (full rounds run at most every 0.25 s): each frees the slot for
        // the next waiting job, in rounds that rank only the jobs of the free model; a job
        // submitted between is planned into the kept order.
        for step in 0..<4 {
            h.clock.advance(0.01)
            let next = running.removeFirst()
            let report = AttemptReport(id: next.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)], output: "ok"))
            var events: [CoreEvent] = [.worker(.result(report), from: Data("w0#1".utf8))]
            if step == 1 { events.append(h.submission(oneTask, deadline: 1_800)) }
            running += CoreHarness.dispatches(try h.iterate(events)).map(\.spec)
            #expect(running.count == 1)
            let walked = Self.walked(h.shell.core)
            for job in h.shell.core.fleet.order where !job.isTerminal {
                #expect(h.shell.core.queuedAhead(of: job) == walked[ObjectIdentifier(job)], "\(policy), step \(step)")
            }
        }
        // Four of the first six jobs have run: the last still waits, with fewer ahead (not the
        // 4 of the full round), counting the job submitted between where the policy put it.
        #expect(!last.isTerminal && last.hasQueued)
        let ahead = h.shell.core.queuedAhead(of: last)["m-small"] ?? 0
        #expect(ahead == Self.walked(h.shell.core)[ObjectIdentifier(last)]?["m-small"] ?? 0)
        #expect(ahead < 4)
    }
}
