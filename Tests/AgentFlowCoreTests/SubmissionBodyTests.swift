import AgentFlowCore
import Foundation
@testable import HTTPAPI
import Testing

/// `POST /api/v1/jobs` bodies (DESIGN §3): YAML, a JSON workflow, the JSON envelope; hostile
/// bodies are refused with a message, never crash.
@Suite struct SubmissionBodyTests {
    let workflow = "name: w\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: p, verify: {command: 'true'}}\n"

    func parse(_ text: String, _ contentType: String?) -> Result<SubmissionBody, SubmissionBody.Problem> {
        SubmissionBody.parse(Array(text.utf8), contentType: contentType, file: "wf.yaml")
    }

    @Test func yamlAndJSONWorkflowsParseToTheSameWorkflow() throws {
        let yaml = try parse(workflow, "application/yaml").get()
        #expect(yaml == SubmissionBody(yaml: workflow))
        #expect(try parse(workflow, nil).get() == yaml, "no content type: YAML")
        let object = #"{"name": "w", "deadline": "1m", "budget": {"tokens": 1000}, "subtasks": [{"id": "a", "prompt": "p", "verify": {"command": "true"}}]}"#
        for contentType in ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.agentflow+json"] {
            let fromJSON = try parse(object, contentType).get()
            let a = try Workflow.parse(yaml: fromJSON.yaml, file: "wf.yaml", knownModels: nil)
            let b = try Workflow.parse(yaml: workflow, file: "wf.yaml", knownModels: nil)
            #expect(a.name == b.name && a.subtasks.map(\.id) == b.subtasks.map(\.id) && a.budget.tokens == 1000)
            #expect(fromJSON.paramsJSON == nil && fromJSON.inputs == nil)
        }
    }

    @Test func theEnvelopeCarriesTextOrObjectParamsAndInputs() throws {
        let text = try parse(#"{"workflow": "name: w", "params": {"n": 3, "docs": ["a", "b"]}, "inputs": {"repo": "H4sI"}}"#, "application/json").get()
        #expect(text.yaml == "name: w")
        let params = try JSONSerialization.jsonObject(with: Data(try #require(text.paramsJSON).utf8)) as? [String: Any]
        #expect(params?["n"] as? Int == 3 && params?["docs"] as? [String] == ["a", "b"])
        #expect(text.inputs == ["repo": "H4sI"])
        let object = try parse(#"{"workflow": {"name": "w"}, "params": {}, "inputs": null}"#, "application/json").get()
        #expect(object.yaml.contains("\"name\" : \"w\"") && object.paramsJSON == nil && object.inputs == nil)
    }

    @Test(arguments: [
        ("[1, 2]", "must be one object"),
        ("\"a workflow\"", "must be one object"),
        ("not json", "not valid JSON"),
        (String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000), "not valid JSON"),
        (#"{"workflow": 5}"#, "'workflow' must be"),
        (#"{"workflow": ["x"]}"#, "'workflow' must be"),
        (#"{"workflow": "x", "bogus": 1, "other": 2}"#, "unknown key 'bogus', 'other'"),
        (#"{"workflow": "x", "params": [1]}"#, "'params' must be"),
        (#"{"workflow": "x", "inputs": {"a": 5}}"#, "'inputs' must be"),
        (#"{"workflow": "x", "inputs": "H4sI"}"#, "'inputs' must be"),
    ])
    func hostileJSONIsRefusedWithTheProblem(body: String, problem: String) {
        guard case .failure(let p) = parse(body, "application/json") else {
            Issue.record("accepted \(body.prefix(40))")
            return
        }
        #expect(p.message.contains(problem), "\(p.message)")
    }

    @Test func bytesThatAreNotTextAreRefused() {
        for bytes: [UInt8] in [[0x6e, 0x00, 0x61], [0xff, 0xfe, 0x00], [0xc3, 0x28]] {
            for contentType in ["application/yaml", "application/json"] {
                guard case .failure(let p) = SubmissionBody.parse(bytes, contentType: contentType, file: "wf.yaml") else {
                    Issue.record("accepted \(bytes)")
                    continue
                }
                #expect(p.message == "wf.yaml: the body is not UTF-8 text")
            }
        }
    }
}
