import AgentFlowCore
import Foundation
import LLM
import Testing

@testable import Scaffold

/// Every agent call of an attempt begins with the bytes of the one before (prefix caching,
/// ``PromptLayout``): the trackers ride in messages of their own, nothing sent is rewritten.
@Suite struct PromptLayoutTests {
    /// Each agent call's messages start with all the previous agent call's messages.
    func expectGrowingPrefix(_ model: ScriptedModel, _ note: String) {
        let agent = model.calls.filter { $0.role == .agent }.map(\.messages)
        #expect(agent.count >= 3, "\(note): \(agent.count) agent calls")
        for (before, after) in zip(agent, agent.dropFirst()) {
            #expect(Array(after.prefix(before.count)) == before, "\(note): a call rewrote what the one before sent")
            #expect(after.count > before.count)
        }
    }

    @Test func codeTurnsWithTheCorrectorKeepTheirPrefix() {
        let model = ScriptedModel(agent: [crashing, wrong, wrong, good], corrector: [wrong])
        let outcome = backend(model).run(spec(options: ScaffoldOptions(summarizer: false, corrector: true, maxTurns: 4)))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        expectGrowingPrefix(model, "code")
        // One tracker per turn, each just before the message its turn answers.
        let last = model.calls.last { $0.role == .agent }!.messages
        let trackers = last.enumerated().filter { $0.element.role == .system && $0.element.content.hasPrefix("[budget] ") }
        #expect(trackers.count == 4)
        #expect(trackers.allSatisfy { last[$0.offset + 1].role == .user })
        for (n, t) in trackers.enumerated() { #expect(t.element.content.hasSuffix("turn \(n + 1) of 4."), "\(t.element.content)") }
    }

    @Test func agentWorkTurnsKeepTheirPrefix() {
        let model = ScriptedModel(agent: ["```answer\nnice\n```", "```sh\necho hi\n```", "```answer\nParis: population 2.1 million.\n```"])
        var s = workSpec("Report on Paris.", kind: .answer, actions: [.shell], verify: .command("grep -qi population answer.md"), maxTurns: 3)
        s.scaffold.corrector = false
        let outcome = backend(model).run(s)
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        expectGrowingPrefix(model, "answer")
        #expect(!model.calls[0].messages[0].content.contains("[budget]"), "the instructions hold no tracker")
    }

    /// Without a system role (Gemma), every tracker goes at the top of the message after it and
    /// user and assistant still alternate.
    @Test func trackersFoldIntoTheNextMessageWithoutASystemRole() throws {
        let model = ScriptedModel(agent: [wrong, wrong, good])
        let b = ScaffoldBackend(chat: model, model: "gemma3-270m",
                                configuration: ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wall: .seconds(5))))
        let outcome = b.run(spec(options: .agentOnly))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let last = try #require(model.calls.last?.messages)
        #expect(!last.contains { $0.role == .system })
        #expect(zip(last, last.dropFirst()).allSatisfy { $0.role != $1.role })
        #expect(last.filter { $0.content.hasPrefix("[budget] ") }.count == 3)
        expectGrowingPrefix(model, "folded")
    }

    @Test func droppingAndCuttingWorkOnWholeTurns() {
        var history: [ChatMessage] = [.assistant("r1"), .user("o1")]
        PromptLayout.addTracker("t2", to: &history)
        history += [.assistant("r2"), .user("o2")]
        PromptLayout.addTracker("t3", to: &history)
        #expect(history.map(\.content) == ["r1", "t2", "o1", "r2", "t3", "o2"])
        #expect(PromptLayout.oldestTurn(in: history) == 3)
        #expect(PromptLayout.turnStart(in: history, atMost: 4) == 3)
        #expect(PromptLayout.turnStart(in: history, atMost: 2) == 0)
        #expect(PromptLayout.turnStart(in: history, atMost: 99) == 3)
        #expect(PromptLayout.turnStart(in: [], atMost: 5) == 0)
        #expect(PromptLayout.turnMessages(in: history) == 4)
        #expect(PromptLayout.index(keepingLast: 2, of: history) == 3, "the last reply and observation, the tracker between them not counted")
        #expect(PromptLayout.index(keepingLast: 99, of: history) == 0)
        var noObservation: [ChatMessage] = [.assistant("r")]
        PromptLayout.addTracker("t", to: &noObservation)
        #expect(noObservation == [.assistant("r")])
        #expect(PromptLayout.foldingSystemMessages([.system("a"), .system("b"), .user("c"), .assistant("d"), .system("e")])
                == [.user("a\n\nb\n\nc"), .assistant("d"), .user("e")])
    }
}
