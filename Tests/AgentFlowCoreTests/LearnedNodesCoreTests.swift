import AgentFlowCore
@testable import Coordinator
import Foundation
import Planner
import Testing
import Wire

/// A job's learned plan nodes (`EstimateBooks.learnedNodes`), kept and redone only for the
/// subtasks recorded since, are the nodes a whole `EstimateBook.apply` gives wherever the job's
/// node is not done, and give the same outlook.
@Suite struct LearnedNodesCoreTests {
    static let workflow = "name: shared\nmodels: [m-small, m-big]\nbudget: {tokens: 10000000}\ndeadline: 1h\nsubtasks:\n"
        + (0..<6).map { "  - {id: s\($0), prompt: x, estimates: {m-small: {success: 0.6, tokens: 100, seconds: 5}}}\n" }.joined()

    /// Two jobs of one workflow share its book; each result, passed or failed, changes one pair.
    /// After every iteration each job's kept nodes equal the book applied to all its nodes except
    /// its done ones (which are not redone), its outlook equals the one over the whole book
    /// applied, and after the first the job's nodes are updated from the log, not recomputed.
    @Test func keptNodesEqualTheWholeBookApplied() throws {
        let h = try CoreHarness()
        try h.register("w0#1", slots: 3)
        let a = try #require(CoreHarness.submitted(try h.submit(Self.workflow, planner: "seq:2")))
        let b = try #require(CoreHarness.submitted(try h.submit(Self.workflow, planner: "seq:2")))
        var pending = CoreHarness.dispatches(h.sent)
        var step = 0
        var incremental = 0
        while !pending.isEmpty && step < 200 {
            step += 1
            let d = pending.removeFirst()
            let passed = step % 3 != 0
            let outcome = AttemptOutcome(end: passed ? .succeeded : .failed, usage: [TokenUsage(role: .agent, input: 10 * step, output: step)],
                                         output: "o", seconds: Double(step))
            h.clock.advance(0.5)
            pending += CoreHarness.dispatches(try h.iterate([.worker(.result(AttemptReport(id: d.spec.id, outcome: outcome)), from: Data(d.to.utf8))]))
            for id in [a, b] {
                guard let job = h.shell.core.jobs[id], let book = h.shell.core.books["shared"] else { continue }
                let models = job.models.map { PlanModel(name: $0.name, priceInput: $0.priceInput, priceOutput: $0.priceOutput) }
                let before = job.learned?.position
                let learned = h.shell.core.books.learnedNodes(job, models: models)
                let whole = book.apply(to: job.planNodes, models: models)
                #expect(learned.count == whole.count)
                #expect(learned.indices.allSatisfy { job.done.contains($0) || learned[$0] == whole[$0] }, "job \(id) at step \(step)")
                var state = job.planState(now: h.clock.wallInstant, models: models)
                state.nodes = learned
                let outlook = FleetOutlook.estimate(state)
                state.nodes = whole
                #expect(outlook == FleetOutlook.estimate(state), "job \(id) at step \(step)")
                if before != nil { incremental += 1 }
            }
        }
        #expect(step > 6)
        #expect(incremental > 0)
    }

    /// Past its bound the log drops its older half: a position before what is kept reads nil
    /// (that job learns every node again), one at the end reads nothing new.
    @Test func theLogForgetsItsOldestHalfPastItsBound() {
        var log = EstimateBooks.ChangeLog(generation: 1)
        for i in 0...(2 * EstimateBooks.ChangeLog.limit) { log.note("s\(i % 7)") }
        #expect(log.end == 2 * EstimateBooks.ChangeLog.limit + 1)
        #expect(log.since(0) == nil)
        #expect(log.since(log.end)?.isEmpty == true)
        #expect(log.since(log.end - 3)?.count == 3)
        #expect(log.since(log.end + 1) == nil)
    }
}
