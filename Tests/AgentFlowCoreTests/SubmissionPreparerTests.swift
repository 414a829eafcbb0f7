import AgentFlowCore
import Coordinator
import Foundation
import Store
import Testing
import Wire

/// The intake's preparer answers at once (no parse, no store read) only for a text it parsed
/// lately and a workflow whose book the core already has; anything else goes to its thread.
@Suite struct SubmissionPreparerTests {
    static func preparer() throws -> SubmissionPreparer {
        let store = try Store(path: ":memory:")
        return SubmissionPreparer(reader: try store.reader(), knownModels: ["m-small"], booked: [])
    }

    static func request(_ yaml: String, file: String = "t.yaml") -> SubmitRequest {
        SubmitRequest(yaml: yaml, file: file, planner: "seq:1", seed: 1)
    }

    @Test func aTextParsedLatelyIsPreparedAtOnceWithoutItsBookAgain() throws {
        var p = try Self.preparer()
        let r = Self.request(oneTask)
        #expect(p.preparedIfKnown(r, route: [], received: 0) == nil, "never parsed: the thread parses it")
        let first = p.prepare(r, route: [], received: 1)
        #expect(first.book != nil, "the first submission of a workflow carries its book")
        let again = try #require(p.preparedIfKnown(r, route: [Data("c".utf8)], received: 2))
        #expect(again.book == nil)
        #expect(again.received == 2 && again.route == [Data("c".utf8)])
        #expect((try? again.workflow.get())?.name == "t")
        // The same text under another file name is another parse (messages name the file).
        #expect(p.preparedIfKnown(Self.request(oneTask, file: "other.yaml"), route: [], received: 3) == nil)
    }

    @Test func aRefusedTextIsRefusedAtOnceWithTheSameProblem() throws {
        var p = try Self.preparer()
        let bad = Self.request("name: t\nsubtasks:\n  - {id: a, prompt: x, needs: [nowhere]}\n\u{0}")
        let first = p.prepare(bad, route: [], received: 1)
        guard case .failure(let problem) = first.workflow else {
            Issue.record("a workflow with a NUL and a missing need parsed")
            return
        }
        let again = try #require(p.preparedIfKnown(bad, route: [], received: 2))
        guard case .failure(let same) = again.workflow else {
            Issue.record("the refused text was accepted the second time")
            return
        }
        #expect(same.description == problem.description)
        #expect(same.description.contains("t.yaml"))
    }
}
