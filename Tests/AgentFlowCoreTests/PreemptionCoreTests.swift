import AgentFlowCore
import Coordinator
import Foundation
import Store
import Observability
import Testing
import Wire

/// Preemption in the coordinator core, driven directly (no sockets), across a restart.
@Suite struct PreemptionCoreTests {
    static let long = """
        name: long
        models: [m-small]
        budget: {tokens: 100000}
        deadline: 1h
        subtasks:
          - {id: a, prompt: x, maxAttempts: 2, estimates: {m-small: {success: 1, tokens: 100, seconds: 100}}}

        """
    static let urgent = """
        name: urgent
        models: [m-small]
        budget: {tokens: 100000}
        deadline: 1h
        subtasks:
          - {id: b, prompt: y, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}

        """

    func submit(_ h: CoreHarness, _ yaml: String, priority: Int, deadline: Double) throws -> [Outgoing] {
        let request = SubmitRequest(yaml: yaml, file: "t.yaml", deadline: deadline, planner: "seq:1", seed: 1, priority: priority)
        return try h.iterate([CoreHarness.submission(request, cluster: h.cluster, at: h.clock.wallInstant)])
    }

    /// One slot runs a low-priority 100 s attempt (its subtask allows 2 attempts); a priority-1
    /// job with 20 s left arrives 2 s later. The coordinator cancels the running attempt, charges
    /// the 10 tokens its worker reports, gives the slot to the urgent job, and queues the subtask
    /// again. After a restart the preempted attempt still does not count: when attempt 2 fails,
    /// the subtask gets a third attempt instead of failing the job ("failed all 2 attempts").
    @Test func aPreemptedAttemptIsChargedWhatItUsedAndNeverCountsAgainstMaxAttempts() throws {
        let h = try CoreHarness(scheduling: SchedulingSpec(preemption: true))
        try h.register("w0#1", slots: 1)
        let longJob = try #require(CoreHarness.submitted(try submit(h, Self.long, priority: 0, deadline: 3_600)))
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(first.spec.id.job == longJob)
        h.clock.advance(2)
        let out = try submit(h, Self.urgent, priority: 1, deadline: 20)
        let urgentJob = try #require(CoreHarness.submitted(out))
        let cancels = out.compactMap { if case .toWorker(let to, .cancel(let id)) = $0 { return (String(decoding: to, as: UTF8.self), id) } else { return nil } }
        #expect(cancels.count == 1 && cancels.first?.0 == "w0#1" && cancels.first?.1 == first.spec.id, "\(out)")
        // Counted for operators (GET /metrics renders this registry).
        let counted = h.shell.core.stats.preemptions
        #expect(counted == 1)
        #expect(MetricsRegistry.shared.render().contains("agentflow_preemptions_total{model=\"m-small\"}"))

        // The worker stops it and reports what it used: the slot goes to the urgent job.
        let report = AttemptReport(id: first.spec.id, outcome: AttemptOutcome(end: .cancelled, usage: [TokenUsage(role: .agent, input: 4, output: 6)]))
        let after = try h.iterate([.worker(.result(report), from: Data("w0#1".utf8))])
        let next = try #require(CoreHarness.dispatches(after).first)
        #expect(next.spec.id.job == urgentJob)
        let attempts = try h.store.attempts(of: longJob).sorted { $0.id.n < $1.id.n }
        #expect(attempts.count == 2)
        #expect(attempts[0].state == .cancelled && attempts[0].detail.hasPrefix("preempted for job \(urgentJob)"), "\(attempts[0].detail)")
        #expect(attempts[0].tokensIn + attempts[0].tokensOut == 10)
        #expect(attempts[1].state == .queued)
        #expect(try h.store.job(longJob)?.spentTokens == 10)
        #expect(try h.ledgerRows(longJob, kind: "charge") == 1)

        // Restart; the worker re-registers with the urgent attempt still running.
        try h.restart()
        h.sent = []
        try h.iterate([.worker(.register(info: CoreHarness.info("w0", slots: 1), running: [next.spec.id], finished: []), from: Data("w0#1".utf8))])
        let done = AttemptReport(id: next.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)], output: "ok"))
        let second = try #require(CoreHarness.dispatches(try h.iterate([.worker(.result(done), from: Data("w0#1".utf8))])).first)
        #expect(try h.store.job(urgentJob)?.state == .succeeded)
        #expect(second.spec.id == AttemptID(job: longJob, subtask: "a", n: 2))
        let failed = AttemptReport(id: second.spec.id, outcome: AttemptOutcome(end: .failed, usage: [TokenUsage(role: .agent, input: 50, output: 50)]))
        let third = try h.iterate([.worker(.result(failed), from: Data("w0#1".utf8))])
        let job = try #require(try h.store.job(longJob))
        #expect(job.state == .running, "\(job.state): \(String(describing: job.reason))")
        #expect(CoreHarness.dispatches(third).first?.spec.id == AttemptID(job: longJob, subtask: "a", n: 3))
        #expect(job.spentTokens == 110 && job.spentTokens <= job.limitTokens ?? 0)
    }
}
