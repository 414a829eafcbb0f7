import AgentFlowCore
import Archive
import Foundation
import Planner
import Store
import Testing
import Wire

@testable import Coordinator

/// Judged subtasks in the coordinator core: the judge is an attempt of its own on a worker of
/// the judge model, reserved and charged (role `judge`); only a passing verdict passes the
/// subtask, with the judged attempt's result.
@Suite struct JudgeCoreTests {
    func workflow(maxAttempts: Int = 3, budget: Int = 100_000) -> String {
        """
        name: judged
        models: [m-small]
        budget: {tokens: \(budget)}
        deadline: 1h
        subtasks:
          - id: report
            kind: answer
            prompt: Write it.
            maxAttempts: \(maxAttempts)
            maxTokens: 1000
            judge: {model: m-big, rubric: "Mentions the population.", pass: 0.7}
            estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}
        """
    }

    func answer(_ text: String) -> OutputBundle {
        let entry = TreeEntry(path: "answer.md", data: Data(text.utf8))
        return OutputBundle(files: [OutputFile(path: "answer.md", size: entry.data.count, sha256: Blob.hash(entry.data))], blob: Blob(TarGz.pack([entry])))
    }

    func report(_ h: CoreHarness, _ id: AttemptID, from worker: String, _ outcome: AttemptOutcome) throws {
        try h.iterate([.worker(.result(AttemptReport(id: id, outcome: outcome)), from: Data(worker.utf8))])
    }

    func setUp() throws -> (CoreHarness, String) {
        let h = try CoreHarness()
        try h.register("w0#1")
        try h.register("judge#1", model: "m-big")
        return (h, try #require(CoreHarness.submitted(try h.submit(workflow()))))
    }

    @Test func aPassingVerdictPassesTheSubtaskWithTheJudgedResult() throws {
        let (h, job) = try setUp()
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(first.to == "w0#1")
        let bundle = answer("Oslo has 709,037 people.\n")
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)],
                                                                    output: "Oslo has 709,037 people.\n", outputs: bundle))
        // Not done: a judge attempt went to the judge model's worker, with the result as its workspace.
        #expect(try h.store.job(job)?.state == .running)
        let judge = try #require(CoreHarness.dispatches(h.sent).first { $0.to == "judge#1" })
        #expect(judge.spec.model == "m-big" && judge.spec.tokenCap == CoordinatorCore.judgeTokenCap)
        #expect(judge.spec.work?.judge == JudgeTask(rubric: "Mentions the population.", pass: 0.7, judged: first.spec.id))
        #expect(judge.spec.work?.inputs.first?.at == "" && judge.spec.work?.blobs == [bundle.blob])
        #expect(try h.store.outputs(of: job).isEmpty)
        try report(h, judge.spec.id, from: "judge#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .judge, input: 300, output: 20)],
                                                                       judgement: Judgement(score: 0.9, passed: true, reason: "ok")))
        #expect(try h.store.job(job)?.state == .succeeded)
        let sub = try #require(try h.store.subtasks(of: job).first)
        #expect(sub.output == "Oslo has 709,037 people.\n" && sub.model == "m-small")
        #expect(try h.store.outputs(of: job).first?.files.map(\.path) == ["answer.md"])
        // Both charged, the judge under its role and model.
        let ledger = try h.store.ledger(of: job)
        #expect(ledger.contains { $0.role == "judge" && $0.model == "m-big" && $0.tokensIn == 300 && $0.tokensOut == 20 })
        #expect(ledger.contains { $0.role == "agent" && $0.model == "m-small" })
        #expect(try h.store.job(job)?.spentTokens == 100 + 320)
    }

    @Test(arguments: [
        AttemptOutcome(end: .failed, usage: [TokenUsage(role: .judge, input: 300, output: 20)], detail: "the judge's reply is not a verdict"),
        AttemptOutcome(end: .failed, usage: [TokenUsage(role: .judge, input: 300, output: 20)], judgement: Judgement(score: 0.2, passed: false, reason: "vague")),
        // A worker claiming success with no verdict does not pass it either.
        AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .judge, input: 300, output: 20)]),
    ])
    func aFailingOrMissingVerdictNeverPassesAndTheSubtaskIsTriedAgain(_ verdict: AttemptOutcome) throws {
        let (h, job) = try setUp()
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)],
                                                                    output: "meh", outputs: answer("meh\n")))
        let judge = try #require(CoreHarness.dispatches(h.sent).first { $0.to == "judge#1" })
        try report(h, judge.spec.id, from: "judge#1", verdict)
        #expect(try h.store.job(job)?.state == .running)
        #expect(try h.store.outputs(of: job).isEmpty)
        // Tried again on the agent's model; the judge did not use up one of its 3 attempts.
        let again = CoreHarness.dispatches(h.sent).filter { $0.to == "w0#1" }
        #expect(again.count == 2 && again.last?.spec.id.n == 3, "\(again.map(\.spec.id))")
        #expect(try h.store.ledger(of: job).contains { $0.role == "judge" })
    }

    @Test func planningCountsTheJudgeInAJudgedSubtasksCostTimeAndWorstCase() throws {
        let small = ModelSpec(name: "m-small", priceInput: 0.02, priceOutput: 0.05, context: 8192)
        let big = ModelSpec(name: "m-big", priceInput: 0.04, priceOutput: 0.10, context: 8192)
        let judged = try Workflow.parse(yaml: workflow(), file: "t.yaml", knownModels: ["m-small", "m-big"])
        // Token-limited: one judge token is one token; its time adds to the attempt's.
        let byTokens = try #require(workflowPlanNodes(judged, models: [small], judges: [big]).first?.estimates.first ?? nil)
        #expect(byTokens == Estimate(success: 1, tokens: 100 + JudgePlanning.prior.tokens, seconds: 5 + JudgePlanning.prior.seconds))
        // Worst case: the agent's expected use, then the judge's whole cap (never both caps: the
        // agent's reservation is settled before the judge's is made), at least the agent's cap.
        #expect(workflowPlanNodes(judged, models: [small], judges: [big]).first?.tokenCap == 100 + CoordinatorCore.judgeTokenCap)
        // USD-limited: the judge model's dearer price (0.10 against 0.05) counts each judge token twice.
        let byUSD = try #require(workflowPlanNodes(judged, models: [small], judges: [big], usd: true).first)
        #expect(byUSD.estimates.first??.tokens == 100 + 2 * JudgePlanning.prior.tokens)
        #expect(byUSD.tokenCap == 100 + 2 * CoordinatorCore.judgeTokenCap)
        // A cheaper judge never counts for less than its tokens.
        let cheap = try Workflow.parse(yaml: workflow().replacingOccurrences(of: "models: [m-small]", with: "models: [m-big]")
                                           .replacingOccurrences(of: "model: m-big", with: "model: m-small")
                                           .replacingOccurrences(of: "{m-small: {success", with: "{m-big: {success"), file: "t.yaml", knownModels: ["m-small", "m-big"])
        #expect(workflowPlanNodes(cheap, models: [big], judges: [small], usd: true).first?.tokenCap == 100 + CoordinatorCore.judgeTokenCap)
        // A large agent cap stays the worst case.
        let wide = try Workflow.parse(yaml: workflow().replacingOccurrences(of: "maxTokens: 1000", with: "maxTokens: 8000"), file: "t.yaml",
                                      knownModels: ["m-small", "m-big"])
        #expect(workflowPlanNodes(wide, models: [small], judges: [big]).first?.tokenCap == 8000)
        // The same subtask without a judge plans as before.
        let plain = try Workflow.parse(yaml: workflow().replacingOccurrences(of: "    judge: {model: m-big, rubric: \"Mentions the population.\", pass: 0.7}\n", with: ""),
                                       file: "t.yaml", knownModels: ["m-small", "m-big"])
        #expect(plain.subtasks.first?.judge == nil)
        let node = try #require(workflowPlanNodes(plain, models: [small], judges: [big], usd: true).first)
        #expect(node.estimates.first ?? nil == Estimate(success: 1, tokens: 100, seconds: 5) && node.tokenCap == 1000)
        // The MCPP planner therefore needs a larger budget for the judged one.
        func probability(_ wf: Workflow, tokens: Int) -> Double {
            let state = PlanState(nodes: workflowPlanNodes(wf, models: [small], judges: [big]),
                                  models: [PlanModel(name: "m-small", priceInput: 0.02, priceOutput: 0.05)], done: [], inFlight: [:],
                                  remainingTokens: tokens, remainingUSD: nil, remainingSeconds: 3600)
            return MCPPPlanner(seed: 1).completionProbability(state) ?? -1
        }
        #expect(probability(plain, tokens: 1500) > 0.9)
        #expect(probability(judged, tokens: 1500) < 0.1)
        #expect(probability(judged, tokens: 6000) > 0.9)
    }

    @Test func whatTheEstimatesLearnOfAJudgedAttemptIncludesItsJudge() throws {
        let (h, _) = try setUp()
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)], outputs: answer("x\n")))
        let judge = try #require(CoreHarness.dispatches(h.sent).first { $0.to == "judge#1" })
        h.clock.advance(2)
        try report(h, judge.spec.id, from: "judge#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .judge, input: 300, output: 20)],
                                                                       judgement: Judgement(score: 1, passed: true, reason: "")))
        let book = try #require(h.shell.core.books["judged"])
        let observed = book.rows(subtask: "report", model: "m-small", prior: nil, tokenCap: 1_000_000).filter { $0.tokens == 100 + 320 }
        #expect(!observed.isEmpty && observed.allSatisfy { $0.passed && $0.seconds >= 2 })
    }

    @Test func storedJudgedAttemptsAreReadWithTheirJudgesForTheEstimates() throws {
        func row(_ job: String, _ n: Int, _ model: String, _ passed: Bool, _ tokens: Int, _ detail: String) -> AttemptRecord {
            AttemptRecord(id: AttemptID(job: job, subtask: "report", n: n), model: model, state: passed ? .succeeded : .failed, tokenCap: tokens,
                          reserved: .zero, tokensIn: tokens, deadline: 100, createdAt: 0, dispatchedAt: 5, endedAt: 15, detail: detail)
        }
        let rows = [
            row("j1", 1, "m-small", true, 100, "succeeded: verified on turn 1; judged by #2 on m-big"),
            row("j1", 2, "m-big", false, 320, "judge of #1: failed: judge score 0.20 (pass 0.70): vague"),
            row("j1", 3, "m-small", true, 90, "succeeded: verified on turn 2; judged by #4 on m-big"),
            row("j1", 4, "m-big", true, 300, "judge of #3: succeeded: judge score 0.90 (pass 0.70): ok"),
            row("j2", 1, "m-small", true, 80, "succeeded: verified on turn 1; judged by #2 on m-big"),   // judge lost: nothing learned
            row("j2", 3, "m-small", true, 70, "succeeded: verified on turn 1; not judged: the budget cannot pay for the judge (…)"),
            row("j2", 4, "m-small", false, 60, "failed: no verified result in 6 turn(s)"),
        ]
        let seen = JudgePlanning.observations(rows)
        #expect(seen.map(\.model) == ["m-small", "m-small", "m-small", "m-small"])
        #expect(seen.map(\.passed) == [false, true, false, false])
        #expect(seen.map(\.tokens) == [420, 390, 70, 60])
        #expect(seen.map(\.seconds) == [20, 20, 10, 10])
        #expect(JudgePlanning.judgedBy("x; judged by #12 on m-big") == 12 && JudgePlanning.judgedBy("succeeded") == nil)

        // Through the store: a rerun's book reads the judged attempt as the live job learned it.
        let (h, _) = try setUp()
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)], outputs: answer("x\n")))
        let judge = try #require(CoreHarness.dispatches(h.sent).first { $0.to == "judge#1" })
        try report(h, judge.spec.id, from: "judge#1", AttemptOutcome(end: .failed, usage: [TokenUsage(role: .judge, input: 300, output: 20)],
                                                                       judgement: Judgement(score: 0.1, passed: false, reason: "no")))
        let stored = try h.store.estimateBook(workflow: "judged")
        let live = try #require(h.shell.core.books["judged"])
        for book in [stored, live] {
            let observed = book.rows(subtask: "report", model: "m-small", prior: nil, tokenCap: 1_000_000).filter { $0.tokens == 420 }
            #expect(!observed.isEmpty && observed.allSatisfy { !$0.passed })
            #expect(book.rows(subtask: "report", model: "m-big", prior: nil, tokenCap: 1_000_000).allSatisfy { $0.tokens != 320 })
        }
    }

    @Test func judgesDoNotCountAgainstMaxAttempts() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        try h.register("judge#1", model: "m-big")
        let job = try #require(CoreHarness.submitted(try h.submit(workflow(maxAttempts: 1))))
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 5, output: 5)], outputs: answer("x\n")))
        let judge = try #require(CoreHarness.dispatches(h.sent).first { $0.to == "judge#1" })
        try report(h, judge.spec.id, from: "judge#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .judge, input: 5, output: 5)],
                                                                       judgement: Judgement(score: 1, passed: true, reason: "")))
        #expect(try h.store.job(job)?.state == .succeeded)
    }

    @Test func aBudgetThatCannotPayForTheJudgeNeverPassesTheSubtask() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        try h.register("judge#1", model: "m-big")
        // One attempt's cap fits; a judge's does not.
        let job = try #require(CoreHarness.submitted(try h.submit(workflow(budget: 2000))))
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 50, output: 50)], outputs: answer("x\n")))
        #expect(CoreHarness.dispatches(h.sent).allSatisfy { $0.to != "judge#1" })
        #expect(try h.store.job(job)?.state != .succeeded)
        #expect(try h.store.attempts(of: job).first { $0.id == first.spec.id }?.detail.contains("not judged: the budget cannot pay for the judge") == true)
        let job2 = try #require(try h.store.job(job))
        #expect(job2.spentTokens <= 2000)
    }

    @Test func aQueuedJudgeIsDroppedInARestartAndTheSubtaskTriedAgain() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        // No judge worker: the judge attempt stays queued.
        let job = try #require(CoreHarness.submitted(try h.submit(workflow())))
        let first = try #require(CoreHarness.dispatches(h.sent).first)
        try report(h, first.spec.id, from: "w0#1", AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 5, output: 5)], outputs: answer("x\n")))
        let queued = try h.store.attempts(of: job).filter { $0.state == .queued }
        #expect(queued.count == 1 && queued.first?.model == "m-big")
        try h.restart()
        try h.register("w0#2")
        try h.register("judge#2", model: "m-big")
        let attempts = try h.store.attempts(of: job)
        #expect(attempts.first { $0.id == queued.first?.id }?.state == .cancelled)
        // The subtask runs again as agent work on its own model, never as agent work on the judge's.
        let after = CoreHarness.dispatches(h.sent).filter { $0.to == "w0#2" }
        #expect(after.first?.spec.work?.judge == nil && after.first?.spec.model == "m-small", "\(after)")
        #expect(CoreHarness.dispatches(h.sent).filter { $0.to == "judge#2" }.isEmpty)
    }
}
