import AgentFlowCore
@testable import Coordinator
import Foundation
import Planner
import Testing
import Wire

/// The tick plans the jobs an event marked (`planCandidates`), not every job: each kind of event
/// that makes a job need a plan lists it, the next tick plans exactly those, and a tick after
/// which nothing happened plans none. (Debug builds also check, at every tick, that no job
/// needing a plan is missing from the candidates.)
@Suite struct PlanCandidatesCoreTests {
    /// Two subtasks in a chain: a result of `a` makes `b` ready.
    static let chain = "name: c\nmodels: [m-small]\nbudget: {tokens: 100000}\ndeadline: 1h\nsubtasks:\n"
        + "  - {id: a, prompt: x, estimates: {m-small: {success: 0.9, tokens: 100, seconds: 5}}}\n"
        + "  - {id: b, prompt: y, needs: [a], estimates: {m-small: {success: 0.9, tokens: 100, seconds: 5}}}\n"

    /// Runs one batch: the events, then the shell's finish; returns the jobs the batch planned
    /// (decision notes, in order) and what it sent.
    final class Batches {
        let h: CoreHarness
        var decided: [String] = []

        init() throws {
            h = try CoreHarness()
            h.shell.onNotes = { [unowned self] notes in
                for n in notes { if case .decision(let job, _, _, _, _) = n { decided.append(job) } }
            }
        }

        /// Hands the events over and returns the candidates the tick will plan (before it runs).
        func handle(_ events: [CoreEvent]) -> Set<String> {
            for e in events { h.shell.handle(e, at: CoreTime(h.clock)) }
            return h.shell.core.planCandidates
        }

        /// Finishes the batch: the tick plans, the writes commit. Returns the jobs it planned.
        @discardableResult
        func finish() throws -> [String] {
            decided = []
            try h.iterate()
            return decided
        }
    }

    @Test func eachEventMarksItsJobsAndTheTickPlansExactlyThose() throws {
        let b = try Batches()
        // A new job is a candidate, and planned once.
        var ids: [String] = []
        for _ in 0..<30 {
            let marked = b.handle([b.h.submission(Self.chain)])
            let sent = try b.h.iterate()
            let id = try #require(CoreHarness.submitted(sent))
            #expect(marked.contains(id))
            ids.append(id)
        }
        #expect(b.h.shell.core.planCandidates.isEmpty)
        // Nothing happened: no job is planned again.
        b.h.clock.advance(0.1)
        #expect(b.handle([]).isEmpty)
        #expect(try b.finish().isEmpty)

        // A worker registers: every unfinished job may now use it.
        let marked = b.handle([.worker(.register(info: CoreHarness.info("w0", slots: 1), running: [], finished: []), from: Data("w0#1".utf8))])
        #expect(marked == Set(ids))
        try b.finish()
        let dispatched = try #require(CoreHarness.dispatches(b.h.sent).first)
        #expect(b.h.shell.core.planCandidates.isEmpty)

        // A result: only its job is marked, and planned (its `b` is ready now).
        b.h.clock.advance(1)
        let report = AttemptReport(id: dispatched.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 60, output: 40)], output: "ok"))
        #expect(b.handle([.worker(.result(report), from: Data("w0#1".utf8))]) == [dispatched.spec.id.job])
        #expect(try b.finish() == [dispatched.spec.id.job])
        #expect(b.h.shell.core.jobs[dispatched.spec.id.job]?.subtasks["b"]?.attempts == 1)

        // Heartbeats change nothing a planner sees: no job is planned.
        b.h.clock.advance(0.5)
        #expect(b.handle([.worker(.heartbeat, from: Data("w0#1".utf8))]).isEmpty)
        #expect(try b.finish().isEmpty)

        // A restart: every resumed unfinished job is a candidate of the first batch.
        try b.h.restart()
        let resumed = Set(b.h.shell.core.jobSnapshots.filter { !$0.state.isTerminal }.map(\.id))
        #expect(resumed == Set(ids))
        #expect(b.h.shell.core.planCandidates.isEmpty, "the restart's batch planned them")
    }

    @Test func aDecisionOnAnOlderVersionMarksItsJobAgain() throws {
        var core = CoreHarness.core(try CoreHarness().cluster)
        let h = try CoreHarness()
        let a = core.handle(h.submission(Self.chain, planner: "mcpp"), at: CoreTime(h.clock))
        let id = try #require(CoreHarness.submitted(a.messages))
        let plans = core.handle(.tick, at: CoreTime(h.clock)).plans
        #expect(plans.map(\.job) == [id])
        #expect(core.planCandidates.isEmpty)
        // While the plan is out, a worker registers (a new version of every job) ...
        _ = core.handle(.worker(.register(info: CoreHarness.info("w0", slots: 1), running: [], finished: []), from: Data("w0#1".utf8)),
                        at: CoreTime(h.clock))
        // ... the tick leaves the job alone (its plan is out) ...
        #expect(core.handle(.tick, at: CoreTime(h.clock)).plans.isEmpty)
        // ... and the stale decision lists it again: it is planned once more at the next tick.
        _ = core.handle(.planned(try #require(plans.first).decide()), at: CoreTime(h.clock))
        #expect(core.planCandidates == [id])
        _ = core.handle(.tick, at: CoreTime(h.clock))
        #expect(core.planCandidates.isEmpty)
    }

    @Test func smallestIsTheSortedPrefix() {
        var rng = SplitMix64(seed: 7)
        for n in [0, 1, 5, 100, 2_000] {
            let xs = (0..<n).map { _ in (Int(rng.below(50)), Int(rng.below(1_000_000))) }
            for k in [0, 1, 3, 50, 500, 5_000] {
                let want = Array(xs.sorted { $0 < $1 }.prefix(k))
                let got = xs.smallest(k) { $0 < $1 }
                #expect(got.elementsEqual(want) { $0 == $1 }, "n \(n) k \(k)")
            }
        }
    }
}
