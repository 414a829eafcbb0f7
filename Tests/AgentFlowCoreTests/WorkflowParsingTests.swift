import AgentFlowCore
import Foundation
import Testing

private let models: Set<String> = ["smollm2-135m", "gemma3-270m"]

private func parseError(_ yaml: String) -> ConfigError? {
    do {
        _ = try Workflow.parse(yaml: yaml, file: "wf.yaml", knownModels: models)
        return nil
    } catch let e as ConfigError {
        return e
    } catch {
        return nil
    }
}

@Suite struct WorkflowParsingTests {
    @Test func parsesTheDesignExample() throws {
        let yaml = """
        name: string-helpers
        description: Three helpers.
        models: [smollm2-135m, gemma3-270m]
        budget: {tokens: 40000, usd: 0.05}
        deadline: 5m
        scaffold: {summarizer: off, corrector: on}
        subtasks:
          - id: reverse_words
            prompt: |
              Write reverse_words.
            verify:
              python: |
                from solution import reverse_words
            estimates:
              smollm2-135m: {success: 0.4, tokens: 300, seconds: 2}
          - id: title_case
            needs: [reverse_words]
            prompt: Write title_case.
            verify: {command: "python3 -m pytest -q"}
        """
        let wf = try Workflow.parse(yaml: yaml, file: "wf.yaml", knownModels: models)
        #expect(wf.name == "string-helpers")
        #expect(wf.budget == Budget(tokens: 40000, usd: 0.05))
        #expect(wf.deadline == 300)
        #expect(wf.scaffold == ScaffoldOptions(summarizer: false, corrector: true))
        #expect(wf.subtasks.map(\.id) == ["reverse_words", "title_case"])
        #expect(wf.subtasks[1].needs == ["reverse_words"])
        #expect(wf.subtasks[1].verify == .command("python3 -m pytest -q"))
        #expect(wf.subtasks[0].estimates["smollm2-135m"] == Estimate(success: 0.4, tokens: 300, seconds: 2))
        #expect(wf.subtasks[0].line == 8)
        #expect(wf.topologicalOrder == ["reverse_words", "title_case"])
    }

    @Test func cycleIsPrintedAsAPath() throws {
        let e = try #require(parseError("""
        name: c
        subtasks:
          - {id: a, prompt: x, needs: [c]}
          - {id: b, prompt: x, needs: [a]}
          - {id: c, prompt: x, needs: [b]}
        """))
        #expect(e.message.contains("cycle"))
        // Every node of the cycle appears, and the path closes on itself.
        let path = e.message.components(separatedBy: ": ").last!.components(separatedBy: " -> ")
        #expect(path.count == 4 && path.first == path.last)
        #expect(Set(path) == ["a", "b", "c"])
        #expect(e.file == "wf.yaml" && e.line != nil)
    }

    @Test func selfCycle() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - {id: a, prompt: x, needs: [a]}\n"))
        #expect(e.message.contains("a -> a"))
    }

    @Test func unknownNeeds() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - {id: a, prompt: x}\n  - {id: b, prompt: x, needs: [zzz]}\n"))
        #expect(e.message.contains("unknown subtask 'zzz'"))
        #expect(e.line == 4)
    }

    @Test func duplicateID() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - {id: a, prompt: x}\n  - {id: a, prompt: y}\n"))
        #expect(e.message.contains("duplicate subtask id 'a'"))
        #expect(e.message.contains("line 3"))
        #expect(e.line == 4)
    }

    @Test func unknownModelInModelsList() throws {
        let e = try #require(parseError("name: c\nmodels: [gpt-9]\nsubtasks:\n  - {id: a, prompt: x}\n"))
        #expect(e.message.contains("unknown model 'gpt-9'"))
        #expect(e.line == 2)
    }

    @Test func unknownModelInEstimates() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - id: a\n    prompt: x\n    estimates:\n      llama-70b: {success: 0.5}\n"))
        #expect(e.message.contains("unknown model 'llama-70b'"))
        #expect(e.line == 6)
    }

    @Test(arguments: ["5 minutes", "-3s", "0s", "abc", "5x", "m"])
    func badDuration(_ value: String) throws {
        let e = try #require(parseError("name: c\ndeadline: \(value)\nsubtasks:\n  - {id: a, prompt: x}\n"))
        #expect(e.message.contains("bad duration"))
        #expect(e.line == 2)
    }

    @Test(arguments: ["{tokens: 0}", "{tokens: -5}", "{usd: 0}", "{usd: -0.5}"])
    func nonPositiveBudget(_ value: String) throws {
        let e = try #require(parseError("name: c\nbudget: \(value)\nsubtasks:\n  - {id: a, prompt: x}\n"))
        #expect(e.message.contains("must be positive"))
        #expect(e.line == 2)
    }

    @Test func emptyWorkflow() throws {
        let e = try #require(parseError("name: c\nsubtasks: []\n"))
        #expect(e.message.contains("empty"))
        let missing = try #require(parseError("name: c\n"))
        #expect(missing.message.contains("subtasks"))
        let blank = try #require(parseError(""))
        #expect(blank.message.contains("empty"))
    }

    @Test func invalidYAMLNamesTheLine() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - id: a\n    prompt: x: y\n"))
        #expect(e.message.contains("not valid YAML"))
        #expect(e.line == 4)
    }

    /// Nested aliases (a "billion laughs") are refused before the YAML parser can stall on them.
    @Test func aliasBombIsRefusedQuickly() throws {
        var lines = ["name: bomb", "subtasks:", "  - id: s", "    prompt: p", "    estimates:", "      ? &a0 [x, x, x, x, x, x, x, x, x, x]", "      : 1"]
        for i in 1..<9 {
            lines.append("      ? &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]")
            lines.append("      : 1")
        }
        let start = Date()
        let e = try #require(parseError(lines.joined(separator: "\n")))
        #expect(e.message.contains("alias"))
        #expect(Date().timeIntervalSince(start) < 5)
        // A few aliases, and code with *args in a block scalar, are fine.
        let ok = "name: ok\nsubtasks:\n  - id: a\n    prompt: &p \"same\"\n    verify:\n      python: |\n        def f(*args, **kw):\n            return sum(*args)\n  - {id: b, prompt: *p}\n"
        #expect(parseError(ok) == nil)
    }

    @Test func unknownKeyIsNotIgnored() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - {id: a, prompt: x, neds: [b]}\n"))
        #expect(e.message.contains("unknown key 'neds'"))
    }

    @Test func successOutOfRange() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - id: a\n    prompt: x\n    estimates: {gemma3-270m: {success: 1.5}}\n"))
        #expect(e.message.contains("[0, 1]"))
    }

    @Test func durations() {
        #expect(parseDuration("90") == .seconds(90))
        #expect(parseDuration("30s") == .seconds(30))
        #expect(parseDuration("5m") == .seconds(300))
        #expect(parseDuration("1.5h") == .seconds(5400))
        #expect(parseDuration("1h30m") == .seconds(5400))
        #expect(parseDuration("") == nil)
        #expect(parseDuration("0") == nil)
        #expect(parseDuration("10q") == nil)
    }

    @Test func everyExampleWorkflowValidates() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cluster = try Cluster.load(path: root.appendingPathComponent("cluster.yaml").path)
        let dir = root.appendingPathComponent("workflows")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 5)
        for f in files {
            let wf = try Workflow.load(path: dir.appendingPathComponent(f).path, knownModels: cluster.modelNames)
            #expect(wf.findCycle() == nil)
        }
    }
}

@Suite struct ClusterParsingTests {
    @Test func parsesTheDesignExample() throws {
        let c = try Cluster.parse(yaml: """
        coordinator:
          workers: tcp://127.0.0.1:5555
          clients: tcp://127.0.0.1:5556
          database: .agentflow/agentflow.db
          heartbeat: 1s
          liveness: 3
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 4096}
        workers:
          - name: gpu0
            gpus: [0]
            model: smollm2-135m
            backend: {kind: openai, url: http://127.0.0.1:8198/v1}
            slots: 2
          - name: sim0
            model: smollm2-135m
            backend: {kind: sim, timeScale: 0.01, seed: 7}
        """, file: "cluster.yaml")
        #expect(c.coordinator.deadAfter == .seconds(3))
        #expect(c.models[0].priceOutput == 0.05)
        #expect(c.workers[0].backend == .openai(url: "http://127.0.0.1:8198/v1"))
        #expect(c.workers[1].backend == .sim(timeScale: 0.01, seed: 7))
        #expect(c.workers[1].slots == 1)
    }

    @Test(arguments: [
        ("models: []\n", "empty"),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: other, backend: {kind: sim}}\n", "unknown model 'other'"),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: m, backend: {kind: grpc}}\n", "unknown backend kind"),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: m, backend: {kind: openai}}\n", "needs 'url'"),
        ("coordinator: {workers: localhost:1}\nmodels:\n  - {name: m}\n", "ZeroMQ endpoint"),
        ("models:\n  - {name: m, price: {input: -1}}\n", "must not be negative"),
        ("models:\n  - {name: m}\nworkers:\n  - {name: w, model: m, slots: 0, backend: {kind: sim}}\n", "at least 1 slot"),
    ])
    func errors(_ yaml: String, _ expected: String) throws {
        do {
            _ = try Cluster.parse(yaml: yaml, file: "c.yaml")
            Issue.record("expected an error containing \(expected)")
        } catch let e as ConfigError {
            #expect(e.message.contains(expected), "\(e)")
            #expect(e.file == "c.yaml")
        }
    }
}

@Suite struct EdgeLimitTests {
    @Test func duplicateNeedsAreRefusedWithLineAndName() throws {
        let e = try #require(parseError("name: c\nsubtasks:\n  - {id: a, prompt: x}\n  - {id: b, prompt: x, needs: [a, a]}\n"))
        #expect(e.message.contains("'a' twice"), "\(e.message)")
        #expect(e.message.contains("'b'"))
        #expect(e.line == 4)
    }

    @Test(arguments: ["{usd: 1e10}", "{usd: .inf}", "{usd: .nan}", "{tokens: 9223372036854775807}"])
    func absurdBudgetsAreRefused(_ value: String) throws {
        let e = try #require(parseError("name: c\nbudget: \(value)\nsubtasks:\n  - {id: a, prompt: x}\n"))
        #expect(e.line == 2, "\(e.message)")
    }

    @Test func namesWithControlCharactersAreRefusedAndNeverEchoedRaw() {
        #expect(Limits.name("gpu0", "name") == nil)
        for bad in ["", "a\u{1b}[2Jb", "x\u{0}y", String(repeating: "n", count: 65), "gpu 0"] {
            let problem = Limits.name(bad, "the worker name")
            #expect(problem != nil)
            #expect(problem?.contains("\u{1b}") == false && problem?.contains("\u{0}") == false)
        }
        #expect(Limits.budgetUSD(.infinity) != nil && Limits.budgetUSD(.nan) != nil && Limits.budgetUSD(1e10) != nil)
        #expect(Limits.seconds(.nan, "d") != nil && Limits.seconds(-1, "d") != nil && Limits.seconds(60, "d") == nil)
    }
}
