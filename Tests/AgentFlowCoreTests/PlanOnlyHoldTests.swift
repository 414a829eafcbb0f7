import AgentFlowCore
import Coordinator
import Foundation
import Store
import Testing
import Wire

/// `CoordinatorShell.planOnlyHold`: a batch that only applied planner decisions and sends
/// nothing waits for the next batch's commit (one fsync per job under steady intake), and
/// nothing acknowledged depends on it.
@Suite struct PlanOnlyHoldTests {
    let twoTasks = """
        name: t
        models: [m-small]
        budget: {tokens: 100000}
        deadline: 1h
        subtasks:
          - {id: a, prompt: x, estimates: {m-small: {success: 0.9, tokens: 100, seconds: 5}}}
          - {id: b, prompt: y, needs: [a], estimates: {m-small: {success: 0.9, tokens: 100, seconds: 5}}}
        """

    /// Submits one MCPP job in its own batch; returns its id and the batch's planning requests.
    func submit(_ h: CoreHarness) throws -> (job: String, plans: [PlanRequest]) {
        let now = CoreTime(h.clock)
        h.shell.handle(h.submission(twoTasks, planner: "mcpp"), at: now)
        var out: [Outgoing] = []
        let batch = try #require(try h.shell.finish(at: now) { out.append($0) })
        #expect(!h.shell.isHolding, "a batch that acknowledges a submission commits at once")
        let job = try #require(CoreHarness.submitted(out))
        #expect(try h.store.job(job) != nil, "acknowledged only once stored")
        return (job, batch.plans)
    }

    /// A harness holding one MCPP job's first plan (5 ms hold, no worker: nothing is sent).
    func heldPlan() throws -> (CoreHarness, String) {
        let h = try CoreHarness()
        h.shell.planOnlyHold = .milliseconds(5)
        let (job, plans) = try submit(h)
        for p in plans { h.shell.handle(.planned(p.decide()), at: CoreTime(h.clock)) }
        try h.shell.finish(at: CoreTime(h.clock)) { _ in }
        #expect(h.shell.isHolding)
        return (h, job)
    }

    @Test func decisionsThatSendNothingRideInTheNextCommit() throws {
        let h = try CoreHarness()
        h.shell.planOnlyHold = .milliseconds(5)
        let (job, plans) = try submit(h)
        #expect(plans.count == 1)
        let now = CoreTime(h.clock)
        for p in plans { h.shell.handle(.planned(p.decide()), at: now) }
        var out: [Outgoing] = []
        let held = try #require(try h.shell.finish(at: now) { out.append($0) })
        // No worker serves the model: the decision queues attempts and sends nothing.
        #expect(h.shell.isHolding && out.isEmpty)
        #expect(held.wakeAt <= now.mono + .milliseconds(5))
        #expect(try h.store.attempts(of: job).isEmpty, "held: not in the store yet")
        // The next submission's batch commits both, in order, before it acknowledges.
        let (second, _) = try submit(h)
        let queued = try h.store.attempts(of: job)
        #expect(!queued.isEmpty && queued.allSatisfy { $0.state == .queued })
        #expect(try h.store.job(second) != nil)
    }

    @Test func aHeldBatchCommitsWhenItsTimeIsUpOrAtShutdown() throws {
        for atShutdown in [false, true] {
            let (h, job) = try heldPlan()
            if atShutdown {
                try h.shell.finish(at: CoreTime(h.clock), mayHold: false) { _ in }
                #expect(!h.shell.isHolding)
            } else {
                // An empty batch within the hold keeps holding; one past it commits.
                try h.shell.finish(at: CoreTime(h.clock)) { _ in }
                #expect(h.shell.isHolding)
                h.clock.advance(0.006)
                try h.shell.finish(at: CoreTime(h.clock)) { _ in }
                #expect(!h.shell.isHolding)
            }
            #expect(try !h.store.attempts(of: job).isEmpty, "at shutdown: \(atShutdown)")
        }
    }

    @Test func aCrashWhileHeldLosesOnlyTheDecisionAndTheRestartPlansAgain() throws {
        let (h, job) = try heldPlan()
        // kill -9: the shell and its held batch are gone; the store has the acknowledged job.
        let shell = CoordinatorShell(core: CoreHarness.core(h.cluster), store: h.store, board: LiveBoard(), telemetry: Telemetry(metrics: .shared))
        let restarted = try shell.start(reader: try h.store.reader(), cluster: h.cluster, at: CoreTime(h.clock), send: { _ in })
        #expect(try h.store.attempts(of: job).isEmpty)
        let request = try #require(restarted.plans.first { $0.job == job }, "the resumed job is planned again")
        shell.handle(.planned(request.decide()), at: CoreTime(h.clock))
        try shell.finish(at: CoreTime(h.clock), mayHold: false) { _ in }
        let queued = try h.store.attempts(of: job)
        #expect(!queued.isEmpty)
        // Its reservations match the attempts it holds (nothing reserved twice or for an attempt that is gone).
        let view = try #require(shell.board.view(job))
        #expect(view.budget.reservedTokens == queued.reduce(0) { $0 + $1.reserved.tokens })
    }

    @Test func aDecisionThatDispatchesIsNeverHeld() throws {
        let h = try CoreHarness()
        h.shell.planOnlyHold = .seconds(60)
        try h.register("w0#1", slots: 4)
        let (job, plans) = try submit(h)
        for p in plans { h.shell.handle(.planned(p.decide()), at: CoreTime(h.clock)) }
        var out: [Outgoing] = []
        try h.shell.finish(at: CoreTime(h.clock)) { out.append($0) }
        #expect(!h.shell.isHolding)
        let sent = CoreHarness.dispatches(out)
        #expect(!sent.isEmpty)
        // Everything a dispatch refers to was committed before it left.
        let stored = try h.store.attempts(of: job)
        #expect(sent.allSatisfy { d in stored.contains { $0.id == d.spec.id && $0.state == .dispatched } })
    }
}
