import AgentFlowCore
import Coordinator
import Foundation
import Testing
import Wire

/// Dispatch rounds between full rounds (`dispatchQueued`): they rank only the jobs with an
/// attempt queued for a model that has a free slot, and must send the same attempts to the same
/// workers as full rounds — which rank every waiting job — would.
@Suite struct DispatchRoundCoreTests {
    static func job(_ name: String, model: String, subtasks: Int, seconds: Int) -> String {
        var yaml = "name: \(name)\nmodels: [\(model)]\nbudget: {tokens: 10000000}\ndeadline: 1h\nsubtasks:\n"
        for i in 0..<subtasks { yaml += "  - {id: s\(i), prompt: x, estimates: {\(model): {success: 1, tokens: 100, seconds: \(seconds)}}}\n" }
        return yaml
    }

    /// Jobs for a busy model (one slot, held the whole run) and jobs for a free one, submitted
    /// interleaved; then one result at a time, `step` seconds apart. Returns every dispatch to the
    /// free model's worker in order (subtask, worker, and the job's submission number).
    static func run(policy: String, step: Double) throws -> [String] {
        let h = try CoreHarness(scheduling: SchedulingSpec(policy: policy), prefetch: 0)
        try h.register("small#1", model: "m-small", slots: 2)
        try h.register("big#1", model: "m-big", slots: 1)
        var number: [String: Int] = [:]
        for i in 0..<24 {
            // Every fourth job may use the free model; the rest wait for the busy one. Deadlines
            // and sizes differ, so EDF and the fleet score order them otherwise than submission.
            let small = i % 4 == 1
            let yaml = job("j\(i)", model: small ? "m-small" : "m-big", subtasks: small ? 4 : 2, seconds: small ? 5 : 3600)
            // Apart in time: the job ids are random, so no order may hang on a tie broken by id.
            h.clock.advance(0.01)
            let id = try #require(CoreHarness.submitted(try h.submit(yaml, deadline: 600 + Double((i * 37) % 11) * 60)))
            number[id] = i
        }
        var order: [String] = []
        var running: [AttemptSpec] = []
        func collect(_ out: [Outgoing]) {
            for d in CoreHarness.dispatches(out) where d.to.hasPrefix("small") {
                running.append(d.spec)
                order.append("j\(number[d.spec.id.job]!)/\(d.spec.id.subtask)")
            }
        }
        collect(h.sent)
        // Alike in both runs: every job planned and its attempts queued before any result.
        for _ in 0..<3 {
            h.clock.advance(1)
            collect(try h.iterate([.worker(.heartbeat, from: Data("small#1".utf8)), .worker(.heartbeat, from: Data("big#1".utf8))]))
        }
        var rounds = 0
        while let next = running.first, rounds < 100 {
            rounds += 1
            running.removeFirst()
            h.clock.advance(step)
            let report = AttemptReport(id: next.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)], output: "ok"))
            collect(try h.iterate([.worker(.result(report), from: Data("small#1".utf8)), .worker(.heartbeat, from: Data("big#1".utf8))]))
        }
        return order
    }

    @Test(arguments: ["fifo", "edf", "fleet"]) func roundsBetweenFullRoundsServeSlotsAsFullRoundsWould(policy: String) throws {
        // 2 s apart every round is a full one (they run at most every 0.25 s here); 1 ms apart
        // nearly every round between two full ones ranks only the jobs of the free model.
        let full = try Self.run(policy: policy, step: 2)
        let between = try Self.run(policy: policy, step: 0.001)
        #expect(full.count == 6 * 4, "every attempt of the free model's jobs ran: \(full)")
        #expect(between == full)
    }
}
