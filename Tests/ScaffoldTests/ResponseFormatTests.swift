import AgentFlowCore
import Foundation
import LLM
import Testing

@testable import Scaffold

/// A `json` subtask without actions sends its schema as `response_format` (DESIGN.md §3): every
/// agent and corrector reply is then one JSON value, the answer. Other kinds, a json subtask
/// that may act, and the summarizer send none.
@Suite struct ResponseFormatTests {
    let schema = #"{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}"#

    @Test func aJSONSubtaskWithoutActionsSendsItsSchema() throws {
        let model = ScriptedModel(agent: [#"{"city": 5}"#, #"{"city": "Oslo"}"#])
        let outcome = backend(model).run(workSpec("Which city?", kind: .json, actions: [], schema: schema))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let calls = model.calls.filter { $0.role == .agent }
        #expect(calls.count == 2)
        for call in calls {
            #expect(call.responseFormat?.schemaJSON == schema && call.responseFormat?.name == "work", "\(String(describing: call.responseFormat))")
        }
    }

    @Test func theCorrectorOfSuchASubtaskIsConstrainedToo() throws {
        let model = ScriptedModel(agent: [#"{"city": 5}"#], corrector: [#"{"city": "Oslo"}"#])
        var spec = workSpec("Which city?", kind: .json, actions: [], schema: schema, maxTurns: 2)
        spec.scaffold.corrector = true
        let outcome = backend(model).run(spec)
        let corrector = model.calls.filter { $0.role == .corrector }
        #expect(!corrector.isEmpty, "\(outcome.detail)")
        #expect(corrector.allSatisfy { $0.responseFormat?.schemaJSON == schema })
    }

    @Test(arguments: [
        (SubtaskKind.json, [AgentAction.python]),
        (SubtaskKind.answer, [AgentAction]()),
        (SubtaskKind.files, [AgentAction.python]),
    ] as [(SubtaskKind, [AgentAction])])
    func otherSubtasksSendNoSchema(kind: SubtaskKind, actions: [AgentAction]) {
        let model = ScriptedModel(agent: ["```answer\nOslo\n```"])
        _ = backend(model).run(workSpec("Which city?", kind: kind, actions: actions, schema: kind == .json ? schema : nil, maxTurns: 1))
        #expect(!model.calls.isEmpty)
        #expect(model.calls.allSatisfy { $0.responseFormat == nil })
    }
}
