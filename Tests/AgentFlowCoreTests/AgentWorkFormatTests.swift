import Foundation
import Testing

@testable import AgentFlowCore
@testable import Archive

/// The workflow format of agent work (DESIGN.md §3): kinds, actions, schemas, inputs, outputs,
/// parameters and fan-out — what is accepted, and the error (file, line, problem) for what is not.
@Suite struct AgentWorkFormatTests {
    func parse(_ yaml: String, params: [String: JSONValue] = [:], files: [String: String]? = [:]) throws -> Workflow {
        try Workflow.parse(yaml: yaml, file: "wf.yaml", knownModels: ["m1", "m2"], params: params, files: files.map(WorkflowFiles.given))
    }

    func problem(_ yaml: String, params: [String: JSONValue] = [:], files: [String: String]? = [:]) -> ConfigError? {
        do {
            _ = try parse(yaml, params: params, files: files)
            return nil
        } catch let e as ConfigError {
            return e
        } catch {
            return ConfigError(file: "?", "\(error)")
        }
    }

    let fanOut = """
        name: f
        params:
          docs: [a.txt, b.txt, c.txt]
          city: {name: Oslo, country: Norway}
        subtasks:
          - id: extract
            foreach: "{{ docs }}"
            kind: json
            schema: {type: object, required: [city]}
            prompt: "Read {{ item }} about {{ city.name }}."
          - id: report
            needs: [extract]
            kind: answer
            prompt: "Report on {{ docs }}."
          - id: one
            needs: ["extract[1]"]
            prompt: "p"
        """

    @Test func foreachExpandsIntoIndexedSubtasksAndNeedsMeanAllOfThem() throws {
        let wf = try parse(fanOut)
        #expect(wf.subtasks.map(\.id) == ["extract[0]", "extract[1]", "extract[2]", "report", "one"])
        #expect(wf.subtasks[1].prompt == "Read b.txt about Oslo.")
        #expect(wf.subtasks[1].item == .string("b.txt"))
        #expect(wf.subtasks[1].expandedFrom == "extract")
        #expect(wf.subtask("report")?.needs == ["extract[0]", "extract[1]", "extract[2]"])
        #expect(wf.subtask("report")?.prompt == #"Report on ["a.txt","b.txt","c.txt"]."#)
        #expect(wf.subtask("one")?.needs == ["extract[1]"])
        #expect(wf.topologicalOrder.last == "one" || wf.topologicalOrder.firstIndex(of: "report")! > 2)
    }

    @Test func parametersAreOverriddenAndAListParameterChangesTheExpansion() throws {
        let two = try parse(fanOut, params: ["docs": .array([.string("y.txt"), .string("z.txt")])])
        #expect(two.subtasks.map(\.id) == ["extract[0]", "extract[1]", "report", "one"])
        #expect(two.subtasks[1].prompt == "Read z.txt about Oslo.")
        #expect(two.params["docs"] == .array([.string("y.txt"), .string("z.txt")]))
        // With one document extract[1] no longer exists: the explicit need names an unknown subtask.
        let e = problem(fanOut, params: ["docs": .array([.string("z.txt")])])
        #expect(e?.message == "subtask 'one' needs unknown subtask 'extract[1]'")
        #expect(e?.line == 16)
    }

    @Test func anEmptyForeachLeavesNoSubtaskAndItsDependantsNeedNothing() throws {
        let wf = try parse(fanOut.replacingOccurrences(of: "  - id: one\n    needs: [\"extract[1]\"]\n    prompt: \"p\"", with: ""),
                           params: ["docs": .array([])])
        #expect(wf.subtasks.map(\.id) == ["report"])
        #expect(wf.subtask("report")?.needs == [])
    }

    @Test func objectItemsAreReachedWithDots() throws {
        let wf = try parse("""
            name: f
            subtasks:
              - id: s
                foreach: [{city: Oslo, n: 3}, {city: Lima, n: 4}]
                prompt: "{{ item.city }} has {{ item.n }}; all: {{ item }}"
            """)
        #expect(wf.subtasks.map(\.prompt) == [#"Oslo has 3; all: {"city":"Oslo","n":3}"#, #"Lima has 4; all: {"city":"Lima","n":4}"#])
        #expect(wf.subtasks.map(\.id) == ["s[0]", "s[1]"])
        #expect(Subtask.moduleFile(for: "s[1]") == "s_1.py")
    }

    @Test(arguments: [
        // (yaml, params, expected message, expected line)
        ("name: f\nsubtasks:\n  - id: a\n    prompt: |\n      line one\n      uses {{ nope }} here\n", [String: JSONValue](),
         "prompt of 'a': unknown parameter 'nope' (the workflow declares no 'params')", 6),
        ("name: f\nparams: {x: 1}\nsubtasks:\n  - {id: a, prompt: \"{{ item }}\"}\n", [:], "prompt of 'a': {{ item }} is only bound in a subtask with 'foreach'", 4),
        ("name: f\nparams: {x: ~}\nsubtasks:\n  - {id: a, prompt: p}\n", [:], "parameter 'x' has no default and was not given (pass -p x=VALUE)", 2),
        ("name: f\nparams: {item: 1}\nsubtasks:\n  - {id: a, prompt: p}\n", [:], "'item' is reserved: it names the current entry of a 'foreach'", 2),
        ("name: f\nparams: {2x: 1}\nsubtasks:\n  - {id: a, prompt: p}\n", [:], "parameter name '2x' must be letters, digits and '_', not starting with a digit", 2),
        ("name: f\nparams: {d: oops}\nsubtasks:\n  - {id: a, foreach: \"{{ d }}\", prompt: p}\n", [:], "foreach of 'a' must give a list, got string \"oops\"", 4),
        ("name: f\nparams: {d: [1]}\nsubtasks:\n  - {id: a, foreach: \"x {{ d }}\", prompt: p}\n", [:],
         "foreach of 'a' must be a list or one placeholder naming a list parameter, like \"{{ docs }}\"", 4),
        ("name: f\nsubtasks:\n  - {id: a, kind: essay, prompt: p}\n", [:], "unknown kind 'essay' for 'a' (one of: code, files, answer, json)", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: answer, schema: {type: object}, prompt: p}\n", [:], "'schema' is for subtasks of kind json; 'a' is answer", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: json, schema: {type: object, pattern: x}, prompt: p}\n", [:],
         "schema of 'a': schema $: unsupported keyword 'pattern' (supported: additionalProperties, enum, items, maxLength, maximum, minLength, minimum, properties, required, type)", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: json, schema: {properties: {n: {type: int}}}, prompt: p}\n", [:],
         "schema of 'a': schema $.properties.n.type: unknown type \"int\" (one of: array, boolean, integer, null, number, object, string)", 3),
        ("name: f\nsubtasks:\n  - {id: a, actions: [python, browser], prompt: p}\n", [:], "unknown action 'browser' for 'a' (one of: python, shell)", 3),
        ("name: f\nsubtasks:\n  - {id: a, actions: [shell], prompt: p}\n", [:], "a code subtask writes a Python module: its actions must include python", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: files, workspace: {from: repo}, prompt: p}\n", [:],
         "workspace of 'a' starts from unknown input 'repo' (the workflow has no 'inputs')", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: files, outputs: [\"../x\"], prompt: p}\n", [:], "outputs of 'a': '../x' must stay inside the workspace ('..' is not allowed)", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: answer, judge: {model: m1}, prompt: p}\n", [:], "judge of 'a' needs a 'rubric': what a good result is", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: answer, judge: {model: m9, rubric: r}, prompt: p}\n", [:],
         "unknown judge model 'm9' for 'a' (candidates: m1, m2)", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: answer, judge: {model: m1, rubric: r, pass: 1.5}, prompt: p}\n", [:],
         "judge.pass of 'a' must be in [0, 1], got 1.5", 3),
        ("name: f\ninputs: {\"../up\": x}\nsubtasks:\n  - {id: a, prompt: p}\n", [:],
         "input name '../up' must be 1 to 64 characters of letters, digits, '_', '-' and '.'", 2),
        ("name: f\nsubtasks:\n  - {id: a, prompt: p}\n  - {id: a, foreach: [1], prompt: p}\n", [:], "duplicate subtask id 'a' (first defined on line 3)", 4),
        ("name: f\nsubtasks:\n  - {id: a, foreach: [1, 2], needs: [a], prompt: p}\n", [:], "subtask 'a[0]' needs itself (cycle: a[0] -> a[0])", 3),
        ("name: f\nsubtasks:\n  - {id: a, kind: json, schema: schemas/nope.json, prompt: p}\n", [:], "schema of 'a': cannot read 'schemas/nope.json' (relative to the workflow file)", 3),
    ] as [(String, [String: JSONValue], String, Int)])
    func badAgentWorkIsRefusedWithFileLineAndProblem(_ yaml: String, _ params: [String: JSONValue], _ message: String, _ line: Int) {
        let e = problem(yaml, params: params)
        #expect(e?.message == message, "\(String(describing: e))")
        #expect(e?.line == line, "\(String(describing: e))")
        #expect(e?.file == "wf.yaml")
    }

    @Test func anUndeclaredOverrideIsRefused() {
        let e = problem("name: f\nparams: {a: 1, b: 2}\nsubtasks:\n  - {id: s, prompt: p}\n", params: ["c": .number(1)])
        #expect(e?.description == "wf.yaml: parameter 'c' is not declared in 'params' (declared: a, b)")
    }

    @Test func placeholdersFillSchemasVerifiersRubricsAndGlobs() throws {
        let wf = try parse("""
            name: f
            params: {cities: [Oslo, Lima], least: 10, word: population, ext: md, judge: m2}
            subtasks:
              - id: j
                kind: json
                schema: {type: object, properties: {city: {enum: "{{ cities }}"}, n: {type: integer, minimum: "{{ least }}"}}}
                prompt: "p {{ '{{' }} literal }} and f\\"{{{x}}}\\""
                verify: {command: "grep -q {{ word }} answer.json"}
                judge: {model: "{{ judge }}", rubric: "mentions {{ word }}"}
                outputs: ["*.{{ ext }}"]
            """)
        let j = try #require(wf.subtask("j"))
        #expect(j.schema?.source == .object(["type": .string("object"), "properties": .object([
            "city": .object(["enum": .array([.string("Oslo"), .string("Lima")])]),
            "n": .object(["type": .string("integer"), "minimum": .number(10)]),
        ])]))
        #expect(j.prompt == "p {{ literal }} and f\"{{{x}}}\"")
        #expect(j.verify == .command("grep -q population answer.json"))
        #expect(j.judge == JudgeSpec(model: "m2", rubric: "mentions population", pass: 0.7))
        #expect(j.outputs == ["*.md"])
    }

    @Test func aSchemaFileIsReadBesideTheWorkflowAndSentWithIt() throws {
        let yaml = "name: f\nsubtasks:\n  - {id: a, kind: json, schema: schemas/r.json, prompt: p}\n"
        let files = WorkflowFiles.given(["schemas/r.json": #"{"type": "object", "required": ["x"]}"#])
        let wf = try Workflow.parse(yaml: yaml, file: "wf.yaml", knownModels: nil, files: files)
        #expect(wf.subtask("a")?.schema?.problems(in: .object([:])) == ["$: missing required property 'x'"])
        #expect(files.contents.keys.sorted() == ["schemas/r.json"])
        // Without the file (a coordinator reading the bare YAML), the reference is an error.
        let e = problem(yaml, files: nil)
        #expect(e?.message.contains("was not sent with the workflow") == true, "\(String(describing: e))")
    }

    @Test func aSubmissionCarriesParametersPackedInputsAndFilesAndReadsTheSame() throws {
        let yaml = """
            name: f
            params: {docs: [a]}
            inputs: {notes: ./notes}
            subtasks:
              - {id: e, foreach: "{{ docs }}", kind: json, schema: s.json, prompt: "read inputs/notes/{{ item }}"}
            """
        let blob = Blob(TarGz.pack([TreeEntry(path: "a", data: Data("A".utf8))]))
        let text = Submission(workflow: yaml, params: ["docs": .array([.string("x"), .string("y")])], inputs: ["notes": blob, "extra": blob],
                              files: ["s.json": #"{"type":"object"}"#]).text
        let wf = try Workflow.parse(yaml: text, file: "wf.yaml", knownModels: nil)
        #expect(wf.subtasks.map(\.id) == ["e[0]", "e[1]"])
        #expect(wf.inputs.map(\.name) == ["notes", "extra"])
        #expect(wf.inputs.map(\.blob) == [blob, blob])
        let work = try #require(wf.work(for: wf.subtasks[0]))
        #expect(work.inputs.map(\.at) == ["inputs/notes", "inputs/extra"])
        #expect(work.blobs == [blob])
        #expect(work.kind == .json && work.schema == #"{"type":"object"}"#)
        // The bare YAML with a path input is refused where no disk may be read.
        let e = problem(yaml.replacingOccurrences(of: "schema: s.json", with: "schema: {type: object}"), files: nil)
        #expect(e?.message.contains("input 'notes' (./notes) was not sent with the workflow") == true, "\(String(describing: e))")
        #expect(e?.line == 3)
    }

    @Test(arguments: [
        (#"{"workflow": "name: f", "oops": 1}"#, "unknown key 'oops' in the submission (expected: workflow, params, inputs, files)"),
        (#"{"workflow": 3}"#, "the submission's 'workflow' must be YAML text or an object"),
        (#"{"workflow": "x", "inputs": {"a": "%%%"}}"#, "input 'a' of the submission is not base64 text"),
        (#"{"workflow": "x", "params": [1]}"#, "the submission's 'params' must be an object"),
    ])
    func malformedSubmissionsAreRefused(_ text: String, _ message: String) {
        do {
            _ = try Workflow.parse(yaml: text, file: "wf.yaml", knownModels: nil)
            Issue.record("accepted \(text)")
        } catch let e as ConfigError {
            #expect(e.message == message)
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func aPlainCodeSubtaskDispatchesAsBefore() throws {
        let wf = try parse("name: f\nsubtasks:\n  - {id: a, prompt: p}\n  - {id: b, needs: [a], prompt: p}\n")
        #expect(wf.work(for: wf.subtasks[0]) == nil)
        #expect(wf.work(for: wf.subtasks[1]) == nil)
        let fanned = try parse("name: f\nsubtasks:\n  - {id: a, foreach: [1, 2], prompt: p}\n  - {id: b, needs: [a], prompt: p}\n")
        #expect(fanned.work(for: fanned.subtask("b")!)?.needs == [NeedLayout(id: "a[0]", kind: .code, module: "a_0.py"), NeedLayout(id: "a[1]", kind: .code, module: "a_1.py")])
    }
}

@Suite struct JSONValueTests {
    @Test func parsesAndWritesJSON() throws {
        let v = try JSONValue.parse(#" {"b": [1, 2.5, -3e2, true, null], "a": "é\n\u00e9\ud83d\ude00"} "#)
        #expect(v == .object(["b": .array([.number(1), .number(2.5), .number(-300), .bool(true), .null]), "a": .string("é\né😀")]))
        #expect(v.text == #"{"a":"é\né😀","b":[1,2.5,-300,true,null]}"#)
        #expect(try JSONValue.parse(v.prettyText) == v)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "NaN", "Infinity", "1e999", "\"\\ud800\"", "\"a\u{01}b\"", "[1] x", "{\"a\":1,\"a\":2}",
                      "'single'", "tru", String(repeating: "[", count: 100_000)])
    func refusesWhatIsNotStrictJSONWithoutCrashing(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }
}

@Suite struct JSONSchemaTests {
    let schema = try! JSONSchema(JSONValue.parse("""
        {"type": "object", "required": ["city", "n"], "additionalProperties": false,
         "properties": {"city": {"type": "string", "minLength": 2, "maxLength": 4}, "n": {"type": "integer", "minimum": 0, "maximum": 10},
                        "tags": {"type": "array", "items": {"enum": ["a", "b"]}}, "ratio": {"type": ["number", "null"]}}}
        """))

    @Test(arguments: [
        (#"{"city": "Oslo", "n": 3, "tags": ["a"], "ratio": null}"#, [String]()),
        (#"{"city": "Oslo", "n": 3.0}"#, []),
        (#"{"city": "O", "n": 3.5}"#, ["$.city: 1 characters, fewer than minLength 2", "$.n: expected integer, got number 3.5"]),
        (#"{"city": "Oslo!", "n": 11, "x": 1}"#, ["$.city: 5 characters, more than maxLength 4", "$.n: 11 is above the maximum 10",
                                                   "$: property 'x' is not allowed (additionalProperties is false)"]),
        (#"{"n": -1, "tags": ["c"], "ratio": "1"}"#, ["$: missing required property 'city'", "$.n: -1 is below the minimum 0",
                                                       "$.ratio: expected number or null, got string \"1\"", "$.tags[0]: \"c\" is not one of [\"a\",\"b\"]"]),
        (#"[1]"#, ["$: expected object, got array [1]"]),
    ])
    func reportsEveryProblemWithItsPath(_ json: String, _ expected: [String]) throws {
        #expect(schema.problems(in: try JSONValue.parse(json)) == expected)
    }

    @Test func itsExampleConforms() {
        #expect(schema.problems(in: schema.example) == [])
    }
}

@Suite struct WorkspacePathAndGlobTests {
    @Test(arguments: [("a/./b//c", "a/b/c"), ("./x", "x"), ("日本/é.txt", "日本/é.txt")])
    func normalises(_ path: String, _ normal: String) {
        #expect(WorkspacePath.normalized(path) == normal)
    }

    @Test(arguments: ["", "/etc/passwd", "~/x", "../x", "a/../../x", "a/..", ".", "a\u{0}b", "a\nb", String(repeating: "a", count: 300),
                      String(repeating: "a/", count: 600)])
    func refusesPathsThatLeaveOrAreNotNames(_ path: String) {
        #expect(WorkspacePath.normalized(path) == nil)
    }

    @Test(arguments: [
        ("*.py", "calc/core.py", true), ("*.py", "core.py", true), ("calc/*.py", "calc/core.py", true), ("calc/*.py", "x/calc/core.py", false),
        ("calc/*.py", "calc/sub/core.py", false), ("calc/**/*.py", "calc/sub/deep/core.py", true), ("calc/**/*.py", "calc/core.py", true),
        ("**/test_*.py", "a/b/test_x.py", true), ("answer.md", "answer.md", true), ("answer.md", "sub/answer.md", true),
        ("a?c.txt", "abc.txt", true), ("a?c.txt", "ac.txt", false), ("*", "anything/at/all", true), ("inputs/*", "inputs/x", true),
    ])
    func globsMatchLikeGitignore(_ pattern: String, _ path: String, _ expected: Bool) {
        #expect(OutputGlob.matches(pattern, path) == expected)
    }
}

@Suite struct ArchiveTests {
    @Test func aTreeRoundTripsWithLongNamesAndExecutableBits() throws {
        let long = (0..<12).map { "directory-\($0)" }.joined(separator: "/") + "/file.txt"
        let entries = [TreeEntry(path: "d", isDirectory: true), TreeEntry(path: "d/run.sh", data: Data("#!/bin/sh\n".utf8), executable: true),
                       TreeEntry(path: long, data: Data(repeating: 7, count: 1000)), TreeEntry(path: "empty", data: Data())]
        let back = try TarGz.unpack(TarGz.pack(entries))
        #expect(back.entries == entries)
        #expect(back.skipped == [])
    }

    /// A tar entry written by hand, for archives this writer would never make.
    func entry(_ name: String, type: Character, data: Data = Data(), linkTo: String = "") -> Data {
        var header = [UInt8](Tar.ustarHeader(name: name, size: data.count, mode: 0o644, type: type, force: true)!)
        for (i, b) in linkTo.utf8.enumerated() where i < 100 { header[157 + i] = b }
        for i in 148..<156 { header[i] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        for (i, b) in Array(String(format: "%06o", sum).utf8).enumerated() { header[148 + i] = b }
        header[154] = 0
        return Data(header) + Tar.padded(data)
    }

    @Test(arguments: ["../escape.txt", "/etc/passwd", "a/../../b"])
    func anArchiveWithAnEscapingPathIsRefused(_ name: String) {
        let tar = entry(name, type: "0", data: Data("x".utf8)) + Data(count: 1024)
        #expect(throws: Tar.Failure.self) { try TarGz.unpack(Gzip.compress(tar)) }
    }

    @Test func linksAndDevicesAreSkippedAndNamed() throws {
        let tar = entry("link", type: "2", linkTo: "/etc/shadow") + entry("hard", type: "1", linkTo: "/etc/shadow") + entry("dev", type: "3")
            + entry("ok.txt", type: "0", data: Data("ok".utf8)) + Data(count: 1024)
        let contents = try TarGz.unpack(Gzip.compress(tar))
        #expect(contents.entries.map(\.path) == ["ok.txt"])
        #expect(contents.skipped == ["link (symbolic link, not unpacked)", "hard (hard link, not unpacked)", "dev (device, not unpacked)"])
    }

    @Test func aSmallArchiveThatExpandsHugelyIsRefused() {
        let bomb = Gzip.compress(Data(count: 80 << 20))
        #expect(bomb.count < 200_000)
        #expect(throws: Tar.Failure.self) { try TarGz.unpack(bomb) }
    }

    @Test(arguments: [Data(), Data("not gzip".utf8), Data(Gzip.compress(Data("x".utf8)).prefix(8)), Gzip.compress(Data(repeating: 1, count: 600))])
    func garbageIsRefusedNotCrashedOn(_ data: Data) {
        #expect(throws: Tar.Failure.self) { try TarGz.unpack(data) }
    }

    @Test func aBlobWhoseBodyIsNotItsNameIsRefused() throws {
        let good = Blob(Data("abc".utf8))
        #expect(good.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let json = try JSONEncoder().encode(good)
        #expect(try JSONDecoder().decode(Blob.self, from: json) == good)
        let forged = String(decoding: json, as: UTF8.self).replacingOccurrences(of: Data("abc".utf8).base64EncodedString(), with: Data("abd".utf8).base64EncodedString())
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Blob.self, from: Data(forged.utf8)) }
    }
}
