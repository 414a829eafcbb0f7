import AgentFlowCore
import Archive
import Foundation
import LLM
import Testing

@testable import Scaffold

/// An attempt of agent work (``AttemptWork``): the reply protocol's blocks, each kind's success
/// condition, inputs, outputs and their limits, the judge — against a scripted model and the
/// real sandbox.
func workSpec(
    _ prompt: String, kind: SubtaskKind, actions: [AgentAction] = [.python], schema: String? = nil, verify: Verifier? = nil,
    inputs: [String: [TreeEntry]] = [:], workspaceFrom: String? = nil, outputs: [String]? = nil, needs: [NeedLayout] = [],
    needOutputs: [String: String] = [:], judge: JudgeTask? = nil, cap: Int = 20000, deadline: Double = 60, maxTurns: Int = 4
) -> AttemptSpec {
    var placed: [AttemptInput] = []
    var blobs: [Blob] = []
    for (name, entries) in inputs.sorted(by: { $0.key < $1.key }) {
        let blob = Blob(TarGz.pack(entries))
        blobs.append(blob)
        placed.append(AttemptInput(name: name, sha256: blob.sha256, size: blob.data.count, at: name == workspaceFrom ? "" : "inputs/\(name)",
                                   readOnly: name != workspaceFrom))
    }
    var s = AttemptSpec(
        id: AttemptID(job: "job", subtask: "work", n: Int.random(in: 0..<1_000_000)), model: "scripted", prompt: prompt,
        verify: verify, inputs: needOutputs, tokenCap: cap, ttl: .seconds(deadline),
        scaffold: ScaffoldOptions(summarizer: false, corrector: false, maxTurns: maxTurns), simulated: nil, seed: 1)
    s.arrived(at: SystemTime().instant)
    s.work = AttemptWork(kind: kind, actions: actions, schema: schema, outputs: outputs, workspaceFrom: workspaceFrom,
                         inputs: placed, blobs: blobs, needs: needs, judge: judge)
    return s
}

/// The files of an outcome's output bundle, by path.
func keptFiles(_ outcome: AttemptOutcome) throws -> [String: String] {
    guard let bundle = outcome.outputs else { return [:] }
    let contents = try TarGz.unpack(bundle.blob.data)
    return Dictionary(uniqueKeysWithValues: contents.entries.filter { !$0.isDirectory }.map { ($0.path, String(decoding: $0.data, as: UTF8.self)) })
}

/// The observation the agent saw before its `n`th call (1-based), as the last user message.
func observation(_ model: ScriptedModel, beforeAgentCall n: Int) -> String {
    let agentCalls = model.calls.filter { $0.role == .agent }
    guard agentCalls.count >= n else { return "" }
    return agentCalls[n - 1].messages.last?.content ?? ""
}

@Suite struct AgentWorkKindTests {
    @Test func answerKindSavesTheAnswerAndRunsTheCheck() throws {
        let model = ScriptedModel(agent: ["Let me answer.\n```answer\nParis has about 2.1 million inhabitants; its population density is high.\n```"])
        let outcome = backend(model).run(workSpec("Report on Paris.", kind: .answer, verify: .command("grep -qi population answer.md")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.output == "Paris has about 2.1 million inhabitants; its population density is high.\n")
        #expect(try keptFiles(outcome) == ["answer.md": "Paris has about 2.1 million inhabitants; its population density is high.\n"])
        #expect(outcome.outputs?.files.map(\.path) == ["answer.md"])
        // The agent got the kind's own prompt and example, not the code kind's.
        let first = model.calls[0].messages
        #expect(first[0].content.contains("```answer holds your final answer"))
        #expect(first.contains { $0.content.contains("2 + 3 is 5.") })
    }

    @Test func anAnswerThatFailsTheCheckIsToldWhyAndCanTryAgain() throws {
        let model = ScriptedModel(agent: ["```answer\nParis is nice.\n```", "```answer\nParis: population 2.1 million.\n```"])
        let outcome = backend(model).run(workSpec("Report on Paris.", kind: .answer, verify: .command("grep -qi population answer.md")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.detail.contains("turn 2"))
        #expect(observation(model, beforeAgentCall: 2).contains("check: failed"))
    }

    @Test func jsonKindChecksTheSchemaBeforeTheVerifier() throws {
        let schema = #"{"type":"object","required":["city","population"],"properties":{"city":{"type":"string"},"population":{"type":"integer","minimum":0}},"additionalProperties":false}"#
        let model = ScriptedModel(agent: [
            "```json\n{\"city\": \"Oslo\", \"population\": \"709k\", \"mayor\": \"x\"}\n```",
            "```json\n{\"city\": \"Oslo\", \"population\": 709037}\n```",
        ])
        // The verifier would pass anything: only the schema can refuse the first answer.
        let outcome = backend(model).run(workSpec("Oslo?", kind: .json, schema: schema, verify: .command("test -f answer.json")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let seen = observation(model, beforeAgentCall: 2)
        #expect(seen.contains("does not match the schema"), "\(seen)")
        #expect(seen.contains("$.population: expected integer, got string"), "\(seen)")
        #expect(seen.contains("property 'mayor' is not allowed"), "\(seen)")
        #expect(try keptFiles(outcome)["answer.json"] == "{\n  \"city\": \"Oslo\",\n  \"population\": 709037\n}\n")
        // The schema reached the prompt.
        #expect(model.calls[0].messages.last?.content.contains("\"minimum\":0") == true)
    }

    @Test func aBareJSONReplyIsTheAnswerOfAJSONSubtask() throws {
        let model = ScriptedModel(agent: ["{\"ok\": true}"])
        let outcome = backend(model).run(workSpec("Say ok.", kind: .json, schema: #"{"type":"object","required":["ok"]}"#))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(try keptFiles(outcome)["answer.json"] == "{\n  \"ok\": true\n}\n")
    }

    @Test func aSchemaViolationEveryTurnFailsTheAttemptWithTheReason() throws {
        let model = ScriptedModel(agent: ["```json\n{\"city\": 5}\n```"])
        let outcome = backend(model).run(workSpec("Oslo?", kind: .json, schema: #"{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}"#, maxTurns: 3))
        #expect(outcome.end == .failed)
        #expect(outcome.outputs == nil)
        #expect(observation(model, beforeAgentCall: 3).contains("$.city: expected string, got integer"))
    }

    @Test func filesKindEditsAWorkspaceFromAnInputAndKeepsOnlyChangedFiles() throws {
        let repo = [
            TreeEntry(path: "calc", isDirectory: true),
            TreeEntry(path: "calc/__init__.py", data: Data()),
            TreeEntry(path: "calc/ops.py", data: Data("def add(a, b):\n    return a - b\n".utf8)),
            TreeEntry(path: "test_ops.py", data: Data("import unittest\nfrom calc.ops import add\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(add(2, 3), 5)\n".utf8)),
        ]
        let notes = [TreeEntry(path: "hint.txt", data: Data("look at ops.py\n".utf8))]
        let model = ScriptedModel(agent: [
            "```sh\ncat inputs/notes/hint.txt; python3 -m unittest -q 2>&1 | tail -3\n```",
            "```file:calc/ops.py\ndef add(a, b):\n    return a + b\n```",
        ])
        let outcome = backend(model).run(workSpec(
            "The tests fail. Fix calc.", kind: .files, actions: [.python, .shell], verify: .command("python3 -m unittest -q"),
            inputs: ["repo": repo, "notes": notes], workspaceFrom: "repo"))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(try keptFiles(outcome) == ["calc/ops.py": "def add(a, b):\n    return a + b\n"])
        let seen = observation(model, beforeAgentCall: 2)
        #expect(seen.contains("look at ops.py"), "\(seen)")
        #expect(seen.contains("FAILED") || seen.contains("AssertionError"), "\(seen)")
        // The task listed the workspace: the repository at the root, the notes under inputs/.
        let task = model.calls[0].messages.last?.content ?? ""
        #expect(task.contains("calc/ops.py") && task.contains("inputs/notes/hint.txt"), "\(task)")
    }

    @Test func shellBlocksNeedTheShellAction() throws {
        let model = ScriptedModel(agent: ["```sh\necho hi > made.txt\n```", "```file:made.txt\nhi\n```"])
        let outcome = backend(model).run(workSpec("Make made.txt.", kind: .files, verify: .command("test -f made.txt")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(observation(model, beforeAgentCall: 2).contains("shell commands are not enabled for this subtask; use ```python"))
    }

    @Test func escapingPathsAndUnknownBlocksGetObservationsAndNothingLeavesTheWorkspace() throws {
        let outside = testRoot().appendingPathComponent("escape-\(UUID().uuidString.prefix(8))")
        let model = ScriptedModel(agent: [
            "```file:../\(outside.lastPathComponent)/x.txt\nout\n```\n```file:\(outside.path)/y.txt\nout\n```\n```file:inputs/notes/n.txt\nchanged\n```\n```javascript\nalert(1)\n```\n```file:\nempty\n```\n```file:ok/../../z.txt\nz\n```",
            "```file:fine.txt\nfine\n```",
        ])
        let outcome = backend(model).run(workSpec(
            "Write fine.txt.", kind: .files, verify: .command("test -f fine.txt"),
            inputs: ["notes": [TreeEntry(path: "n.txt", data: Data("note\n".utf8))]]))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(!FileManager.default.fileExists(atPath: outside.path))
        #expect(!FileManager.default.fileExists(atPath: testRoot().appendingPathComponent("z.txt").path))
        let seen = observation(model, beforeAgentCall: 2)
        #expect(seen.components(separatedBy: "must stay inside the workspace").count - 1 == 2, "\(seen)")
        #expect(seen.contains("must be relative to the workspace, not absolute"), "\(seen)")
        #expect(seen.contains("inputs/ is read-only"), "\(seen)")
        #expect(seen.contains("'javascript' is not a block kind"), "\(seen)")
        #expect(seen.contains("the path is empty"), "\(seen)")
        #expect(try keptFiles(outcome) == ["fine.txt": "fine\n"])
    }

    @Test func aLinkPlantedByTheCodeDoesNotLeadAFileBlockOut() throws {
        let target = testRoot().appendingPathComponent("link-target-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: target) }
        let model = ScriptedModel(agent: [
            "```python\nimport os\nos.symlink('\(target.path)', 'out')\nos.symlink('\(target.path)/secret.txt', 'answer.md')\n```\n```file:out/x.txt\nescaped\n```",
            "```answer\nstill here\n```",
        ])
        let outcome = backend(model).run(workSpec("Answer.", kind: .answer))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: target.path)) == [])
        #expect(try keptFiles(outcome) == ["answer.md": "still here\n"])
    }

    @Test func inputsAreReadOnlyAndChangesToThemAreUndone() throws {
        let model = ScriptedModel(agent: [
            "```python\nimport os\nos.chmod('inputs/notes', 0o755)\nos.chmod('inputs/notes/n.txt', 0o644)\nopen('inputs/notes/n.txt', 'w').write('tampered')\nopen('result.txt', 'w').write(open('inputs/notes/n.txt').read())\n```",
            "```python\nopen('done.txt', 'w').write(open('inputs/notes/n.txt').read())\n```",
        ])
        let outcome = backend(model).run(workSpec(
            "Copy the note.", kind: .files, verify: .command("grep -q original inputs/notes/n.txt && grep -q original done.txt"),
            inputs: ["notes": [TreeEntry(path: "n.txt", data: Data("original\n".utf8))]], maxTurns: 2))
        // The tampering was undone and reported; the next turn read the original again.
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(observation(model, beforeAgentCall: 2).contains("inputs/ is read-only: your changes there were undone"))
        #expect(try keptFiles(outcome) == ["result.txt": "tampered", "done.txt": "original\n"])
    }

    @Test func outputsPastTheLimitFailTheAttemptWithTheReason() throws {
        let big = Limits.maxOutputBytes + 1024
        let model = ScriptedModel(agent: ["```python\nopen('big.bin', 'wb').write(b'0' * \(big))\n```"])
        let outcome = backend(model, { $0.limits = SandboxLimits(wall: .seconds(10), fileBytes: 16 << 20) })
            .run(workSpec("Make a big file.", kind: .files, maxTurns: 2))
        #expect(outcome.end == .failed)
        #expect(outcome.detail.contains("outputs are too large"), "\(outcome.detail)")
        #expect(outcome.outputs == nil)
        #expect(observation(model, beforeAgentCall: 2).contains("big.bin (\(big) bytes)"))
    }

    @Test func aFloodOfBlocksIsBounded() throws {
        let flood = (0..<40).map { "```file:f\($0).txt\n\($0)\n```" }.joined(separator: "\n")
        let model = ScriptedModel(agent: [flood])
        let outcome = backend(model).run(workSpec("Write files.", kind: .files, maxTurns: 1))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(try keptFiles(outcome).count == Limits.maxBlocksPerReply)
    }

    @Test func shellActionsCountAgainstTheAttemptsDeadline() throws {
        let model = ScriptedModel(agent: ["```sh\nsleep 30\n```"])
        let started = Date()
        let outcome = backend(model, { $0.limits = SandboxLimits(wall: .seconds(60)) })
            .run(workSpec("Wait.", kind: .files, actions: [.shell], deadline: 2))
        #expect(outcome.end == .deadline, "\(outcome.detail)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func pythonBlocksCountAgainstTheAttemptsDeadlineToo() throws {
        let model = ScriptedModel(agent: ["```python\nwhile True:\n    pass\n```"])
        let started = Date()
        let outcome = backend(model, { $0.limits = SandboxLimits(wall: .seconds(60)) })
            .run(workSpec("Spin.", kind: .answer, deadline: 2))
        #expect(outcome.end == .deadline, "\(outcome.detail)")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func aHugeBlockOutputAndAnOversizedFileBlockAreBoundedAndTheAttemptGoesOn() throws {
        // 32 MB on stdout, a file block past 1 MiB, then an answer.
        let bigFile = String(repeating: "x", count: Limits.maxFileBlockBytes + 4096)
        let model = ScriptedModel(agent: [
            "```sh\nyes agentflow-output-line | head -c 33554432\n```\n```file:big.txt\n\(bigFile)\n```",
            "```answer\ndone\n```",
        ])
        let outcome = backend(model, { $0.limits = SandboxLimits(wall: .seconds(30)) })
            .run(workSpec("Look around, then answer.", kind: .answer, actions: [.python, .shell], cap: 2_000_000, maxTurns: 3))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let seen = observation(model, beforeAgentCall: 2)
        // The sandbox stops the block at its output limit; the observation shows a tail and stays
        // small, whatever the block printed; the next block is still acted on.
        #expect(seen.utf8.count < 10_000, "\(seen.utf8.count) bytes")
        #expect(seen.contains("```sh (block 1): killed: output limit") && seen.contains("agentflow-output-line\nagentflow-output-line"), "\(seen.prefix(300))")
        #expect(seen.contains("```file:big.txt (block 2): not written — \(bigFile.utf8.count + 1) bytes, more than \(Limits.maxFileBlockBytes) per file block"), "\(seen)")
        #expect(try keptFiles(outcome) == ["answer.md": "done\n"])
        // Every role's tokens stay within the attempt's cap.
        #expect(outcome.usage.reduce(0) { $0 + $1.input + $1.output } <= 2_000_000)
    }

    @Test func needsOutputsAreLaidOutUnderInputs() throws {
        let model = ScriptedModel(agent: ["```answer\nsummary\n```"])
        let needs = [NeedLayout(id: "extract[0]", kind: .json), NeedLayout(id: "add", kind: .code, module: "add.py")]
        let outcome = backend(model).run(workSpec(
            "Summarise.", kind: .answer,
            verify: .command("grep -q Oslo 'inputs/extract[0]/answer.json' && python3 -c 'from add import add; assert add(1, 2) == 3'"),
            needs: needs, needOutputs: ["extract[0]": "{\"city\": \"Oslo\"}\n", "add": "def add(a, b):\n    return a + b\n"]))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        // The need's output is shown in the task (small models rarely think of reading it).
        #expect(model.calls[0].messages.last?.content.contains("{\"city\": \"Oslo\"}") == true)
    }
}

@Suite struct JudgeAttemptTests {
    func judgeSpec() -> AttemptSpec {
        workSpec("Write a short report on Oslo.", kind: .answer,
                 inputs: ["result": [TreeEntry(path: "answer.md", data: Data("Oslo has 709,037 people.\n".utf8))]], workspaceFrom: "result",
                 judge: JudgeTask(rubric: "Mentions the population.", pass: 0.7, judged: AttemptID(job: "job", subtask: "report", n: 1)))
    }

    @Test func aVerdictAboveThePassMarkPasses() throws {
        let model = ScriptedModel(agent: [], judge: ["```json\n{\"score\": 0.9, \"reason\": \"gives the population\"}\n```"])
        let outcome = backend(model).run(judgeSpec())
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.judgement == Judgement(score: 0.9, passed: true, reason: "gives the population"))
        #expect(outcome.usage.map(\.role) == [.judge])
        // The judge read the result.
        #expect(model.calls[0].messages.last?.content.contains("709,037") == true)
        // And was asked for a verdict of the verdict's shape (response_format), so a server that
        // constrains decoding can only give one.
        let format = try #require(model.calls[0].responseFormat)
        #expect(format.name == "verdict")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(format.schemaJSON.utf8)) as? [String: Any])
        #expect(schema["required"] as? [String] == ["score", "reason"])
    }

    @Test func aLowScoreFails() throws {
        let model = ScriptedModel(agent: [], judge: ["{\"score\": 0.2, \"reason\": \"vague\"}"])
        let outcome = backend(model).run(judgeSpec())
        #expect(outcome.end == .failed)
        #expect(outcome.judgement?.passed == false)
    }

    @Test(arguments: ["Looks great to me!", "```json\n{\"score\": 7}\n```", "```json\n[0.9]\n```", "{\"score\": \"high\"}", "```json\n{\"score\": NaN}\n```"])
    func garbageNeverPasses(_ reply: String) throws {
        let model = ScriptedModel(agent: [], judge: [reply])
        let outcome = backend(model).run(judgeSpec())
        #expect(outcome.end == .failed)
        #expect(outcome.judgement == nil)
        #expect(outcome.detail.contains("not a verdict"), "\(outcome.detail)")
        // Asked twice, then gave up.
        #expect(model.calls.filter { $0.role == .judge }.count == 2)
    }
}
