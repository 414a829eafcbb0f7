import Foundation
import TestSupport
import Testing

/// Model servers that require a key, as hosted APIs, LiteLLM and `vllm serve --api-key` do: the
/// worker reads it from `apiKeyEnv`, jobs run, and the key is nowhere else — not in a log, the
/// CLI's or the HTTP API's answers, the metrics or the database. A refused key is named as such
/// (breaker open, `workers`, `status`, `run`).
@Suite(.serialized) struct EndpointKeyTests {
    let key = "sk-proj-\(UUID().uuidString)"

    func scratch() throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A cluster whose one worker (gpu0) asks `baseURL` for model `served` with the key from
    /// AF_TEST_KEY, and a one-subtask workflow the canned reply solves.
    func files(in dir: URL, baseURL: String, served: String = "canned", http: Int? = nil) throws -> (cluster: String, workflow: String) {
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(freePort())
          clients: tcp://127.0.0.1:\(freePort())
          database: \(dir.appendingPathComponent("agentflow.db").path)
        \(http.map { "  http: 127.0.0.1:\($0)" } ?? "")
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 4096}
        workers:
          - name: gpu0
            model: smollm2-135m
            slots: 2
            backend:
              kind: openai
              url: \(baseURL)
              apiKeyEnv: AF_TEST_KEY
              served: \(served)
              headers: {X-Team: search}
              timeout: 2m
        """.write(toFile: cluster, atomically: true, encoding: .utf8)
        let workflow = dir.appendingPathComponent("wf.yaml").path
        try """
        name: keyed
        budget: {tokens: 20000}
        deadline: 3m
        scaffold: {maxTurns: 2}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns a + b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5"}
            maxTokens: 1500
        """.write(toFile: workflow, atomically: true, encoding: .utf8)
        return (cluster, workflow)
    }

    func cannedReply(in dir: URL) throws -> String {
        let reply = dir.appendingPathComponent("reply.txt").path
        try "Here it is.\n```python\ndef add(a, b):\n    return a + b\n```\n".write(toFile: reply, atomically: true, encoding: .utf8)
        return reply
    }

    @Test func aJobRunsAgainstAKeyedEndpointAndTheKeyIsNowhereElse() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = FakeServer(arguments: ["--reply-file", try cannedReply(in: dir), "--require-header", "X-Team=search"],
                                environment: ["FAKE_OPENAI_API_KEY": key])
        let port = freePort()
        let f = try files(in: dir, baseURL: server.baseURL, http: port)
        let coordinator = try Proc(["coordinator", "--cluster", f.cluster], log: dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "gpu0", "--cluster", f.cluster, "--verbose", "--log-level", "trace"],
                              log: dir.appendingPathComponent("worker.log").path, environment: ["AF_TEST_KEY": key])
        defer {
            worker.terminate()
            coordinator.terminate()
            _ = worker.wait(timeout: 5)
            _ = coordinator.wait(timeout: 5)
        }
        let submit = try agentflow(["submit", f.workflow, "--cluster", f.cluster, "--planner", "seq:1", "--wait", "--json"], timeout: 120)
        #expect(submit.code == 0, "\(submit.out)\(submit.err)\n\(worker.output)")
        let job = try #require(try JSONSerialization.jsonObject(with: Data(submit.out.utf8)) as? [String: Any], "\(submit.out)")
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(worker.output)")
        let id = try #require(job["id"] as? String)

        // Everything a user or operator can read.
        var seen = [submit.out, submit.err, coordinator.output, worker.output]
        for args in [["workers", "--json"], ["workers"], ["status", id, "--json"], ["attempts", id, "--json"], ["jobs", "--json"], ["ledger", id],
                     ["attempts", id, "--transcript", "add#1"], ["attempts", id, "--transcript", "add#1", "--json"]] {
            let r = try agentflow(args + ["--cluster", f.cluster], timeout: 30)
            #expect(r.code == 0, "\(args): \(r.err)")
            seen.append(r.out + r.err)
        }
        let transcript = (try? JSONSerialization.jsonObject(with: Data((seen.last ?? "").utf8))) as? [String: Any]
        let events = transcript?["events"] as? [[String: Any]] ?? []
        #expect(events.contains { $0["type"] as? String == "call" }, "the transcript lists the model calls: \(seen.last ?? "")")
        let base = "http://127.0.0.1:\(port)"
        for path in ["/api/v1/jobs", "/api/v1/jobs/\(id)", "/api/v1/jobs/\(id)/attempts", "/api/v1/jobs/\(id)/ledger", "/api/v1/workers",
                     "/api/v1/jobs/\(id)/events", "/api/v1/jobs/\(id)/attempts/add/1/transcript", "/metrics", "/"] {
            let reply = try http("GET", base + path)
            #expect(reply.status == 200, "\(path): \(reply.status)")
            seen.append(reply.body)
        }
        let report = dir.appendingPathComponent("report.html").path
        #expect(try agentflow(["report", id, "--html", report, "--cluster", f.cluster]).code == 0)
        for (i, text) in seen.enumerated() { #expect(!text.contains(key), "the key appears in output \(i)") }
        #expect(filesHolding(key, in: dir).isEmpty, "the key is in \(filesHolding(key, in: dir))")
        #expect(!(try String(contentsOfFile: f.cluster, encoding: .utf8)).contains(key))
    }

    /// The server accepts the key for its model list, then refuses it for completions (a key
    /// revoked mid-run) and echoes it in its 401 body: the breaker opens, `workers`, `status`
    /// and the metrics name the refusal, and the key is cut out of every message.
    @Test func aRefusedKeyOpensTheBreakerAndIsNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = FakeServer(arguments: ["--reply-file", try cannedReply(in: dir), "--revoke-after", "0"], environment: ["FAKE_OPENAI_API_KEY": key])
        let port = freePort()
        let f = try files(in: dir, baseURL: server.baseURL, http: port)
        let coordinator = try Proc(["coordinator", "--cluster", f.cluster], log: dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "gpu0", "--cluster", f.cluster], log: dir.appendingPathComponent("worker.log").path,
                              environment: ["AF_TEST_KEY": key])
        defer {
            worker.terminate()
            coordinator.terminate()
            _ = worker.wait(timeout: 5)
            _ = coordinator.wait(timeout: 5)
        }
        let submit = try agentflow(["submit", f.workflow, "--cluster", f.cluster, "--planner", "seq:1"], timeout: 30)
        let id = submit.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(submit.code == 0 && id.hasPrefix("j-"), "\(submit.out)\(submit.err)")
        var workers: [[String: Any]] = []
        try waitUntil(timeout: 60, "the worker's breaker to open") {
            let r = try agentflow(["workers", "--json", "--cluster", f.cluster], timeout: 10)
            workers = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
            return workers.first?["state"] as? String == "suspended"
        }
        let problem = workers.first?["problem"] as? String ?? ""
        #expect(problem.contains("the backend refused the key (HTTP 401: Incorrect API key provided: [redacted]"), "\(problem)")
        let status = try agentflow(["status", id, "--json", "--cluster", f.cluster], timeout: 10)
        #expect(status.out.contains("gpu0 suspended — the backend refused the key"), "\(status.out)")
        var metrics = ""
        try waitUntil(timeout: 10, "the breaker gauge") {
            metrics = try http("GET", "http://127.0.0.1:\(port)/metrics").body
            return metrics.contains(#"agentflow_worker_breaker_open{worker="gpu0",model="smollm2-135m",cause="refused_key"} 1.0"#)
        }
        for text in [problem, status.out, metrics, coordinator.output, worker.output] { #expect(!text.contains(key)) }
        #expect(filesHolding(key, in: dir).isEmpty, "the key is in \(filesHolding(key, in: dir))")
        _ = try agentflow(["cancel", id, "--cluster", f.cluster], timeout: 10)
    }

    /// `agentflow run` owns its workers: a key refused at the probe stops it before anything is
    /// submitted (exit 3); refused mid-run, the job ends failed naming the refusal (exit 1); a
    /// variable that is not set is bad input (exit 2). The key is in none of its output.
    @Test func runNamesARefusedOrMissingKey() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = FakeServer(arguments: ["--reply-file", try cannedReply(in: dir), "--revoke-after", "0"], environment: ["FAKE_OPENAI_API_KEY": key])
        let f = try files(in: dir, baseURL: server.baseURL)

        let unset = try agentflow(["run", f.workflow, "--cluster", f.cluster], timeout: 30, environment: ["AF_TEST_KEY_UNUSED": "x"])
        #expect(unset.code == 2 && unset.err.contains("worker gpu0: the API key comes from the environment variable AF_TEST_KEY, which is not set"),
                "\(unset.code) \(unset.err)")

        let wrong = "sk-wrong-\(UUID().uuidString)"
        let refused = try agentflow(["run", f.workflow, "--cluster", f.cluster], timeout: 30, environment: ["AF_TEST_KEY": wrong])
        #expect(refused.code == 3, "\(refused.out)\(refused.err)")
        #expect(refused.err.contains("worker gpu0 (smollm2-135m): \(server.baseURL)/models: the backend refused the key (HTTP 401)"), "\(refused.err)")
        #expect(!(refused.out + refused.err).contains(wrong))

        let revoked = try agentflow(["run", f.workflow, "--cluster", f.cluster, "--planner", "seq:1"], timeout: 120, environment: ["AF_TEST_KEY": key])
        let out = revoked.out + revoked.err
        #expect(revoked.code == 1, "\(out)")
        #expect(out.contains("waiting: gpu0 suspended — the backend refused the key"), "\(out)")
        #expect(out.contains("worker gpu0 (\(server.baseURL)): the backend refused the key"), "\(out)")
        #expect(!out.contains(key))
    }

    /// A job's priority reaches a backend configured with `priority: true` as vLLM's `priority`
    /// (negated: vLLM serves lower values first), on every model call of its attempts.
    @Test func theJobsPriorityReachesAPriorityBackend() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let requests = dir.appendingPathComponent("requests.jsonl").path
        let server = FakeServer(arguments: ["--reply-file", try cannedReply(in: dir), "--log-requests", requests], environment: ["FAKE_OPENAI_API_KEY": key])
        let f = try files(in: dir, baseURL: server.baseURL)
        let yaml = try String(contentsOfFile: f.cluster, encoding: .utf8)
        let patched = yaml.replacingOccurrences(of: "      timeout: 2m", with: "      timeout: 2m\n      priority: true")
        #expect(patched != yaml)
        try patched.write(toFile: f.cluster, atomically: true, encoding: .utf8)
        let run = try agentflow(["run", f.workflow, "--cluster", f.cluster, "--planner", "seq:1", "--priority", "5"], timeout: 60,
                                environment: ["AF_TEST_KEY": key])
        #expect(run.code == 0, "\(run.out)\(run.err)")
        let lines = try String(contentsOfFile: requests, encoding: .utf8).split(separator: "\n")
        let sent = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let calls = sent.filter { $0["stream"] as? Bool == true }
        #expect(!calls.isEmpty, "\(lines)")
        #expect(calls.allSatisfy { $0["priority"] as? Int == -5 && $0["model"] as? String == "canned" }, "\(lines.joined(separator: "\n"))")
    }

    /// A hosted worker whose key lives elsewhere does not stop `run` of a workflow that cannot
    /// use its model; the same worker stops a workflow that could (exit 2, naming the variable).
    @Test func runLeavesOutAWorkerWithoutItsKeyWhenTheWorkflowDoesNotUseIt() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = FakeServer(arguments: ["--reply-file", try cannedReply(in: dir)], environment: ["FAKE_OPENAI_API_KEY": key])
        let f = try files(in: dir, baseURL: server.baseURL)
        let yaml = try String(contentsOfFile: f.cluster, encoding: .utf8)
            .replacingOccurrences(of: "workers:\n", with: """
                workers:
                  - {name: hosted, model: gpt-4o-mini, backend: {kind: openai, url: "https://api.openai.com/v1", apiKeyEnv: AF_TEST_UNSET_KEY}}

                """)
            .replacingOccurrences(of: "models:\n", with: "models:\n  - {name: gpt-4o-mini, price: {input: 0.15, output: 0.6}}\n")
        try yaml.write(toFile: f.cluster, atomically: true, encoding: .utf8)
        let local = try String(contentsOfFile: f.workflow, encoding: .utf8).replacingOccurrences(of: "name: keyed\n", with: "name: keyed\nmodels: [smollm2-135m]\n")
        try local.write(toFile: f.workflow, atomically: true, encoding: .utf8)
        let run = try agentflow(["run", f.workflow, "--cluster", f.cluster, "--planner", "seq:1"], timeout: 60, environment: ["AF_TEST_KEY": key])
        #expect(run.code == 0, "\(run.out)\(run.err)")
        #expect(run.err.contains("note: worker hosted: the API key comes from the environment variable AF_TEST_UNSET_KEY, which is not set for this worker; left out"), "\(run.err)")
        #expect(run.err.contains("; 1 workers"), "\(run.err)")
        try local.replacingOccurrences(of: "models: [smollm2-135m]\n", with: "").write(toFile: f.workflow, atomically: true, encoding: .utf8)
        let both = try agentflow(["run", f.workflow, "--cluster", f.cluster], timeout: 60, environment: ["AF_TEST_KEY": key])
        #expect(both.code == 2 && both.err.contains("AF_TEST_UNSET_KEY, which is not set"), "\(both.out)\(both.err)")
    }

    /// A `json` subtask without actions: the worker sends its schema as `response_format` in the
    /// backend's style (here llama-cpp-python's `json_object`), and the bare JSON reply is the answer.
    @Test func aJSONSubtasksSchemaReachesTheBackendAsResponseFormat() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reply = dir.appendingPathComponent("reply.txt").path
        try #"{"city": "Oslo"}"#.write(toFile: reply, atomically: true, encoding: .utf8)
        let requests = dir.appendingPathComponent("requests.jsonl").path
        let server = FakeServer(arguments: ["--reply-file", reply, "--log-requests", requests], environment: ["FAKE_OPENAI_API_KEY": key])
        let f = try files(in: dir, baseURL: server.baseURL)
        let yaml = try String(contentsOfFile: f.cluster, encoding: .utf8)
        let patched = yaml.replacingOccurrences(of: "      timeout: 2m", with: "      timeout: 2m\n      responseFormat: json_object")
        #expect(patched != yaml)
        try patched.write(toFile: f.cluster, atomically: true, encoding: .utf8)
        try """
        name: capital
        budget: {tokens: 20000}
        deadline: 3m
        subtasks:
          - id: capital
            kind: json
            actions: []
            schema: {type: object, required: [city], properties: {city: {type: string}}}
            prompt: "What is the capital of Norway?"
        """.write(toFile: f.workflow, atomically: true, encoding: .utf8)
        let run = try agentflow(["run", f.workflow, "--cluster", f.cluster, "--planner", "seq:1", "--json"], timeout: 60, environment: ["AF_TEST_KEY": key])
        #expect(run.code == 0, "\(run.out)\(run.err)")
        let sent = try String(contentsOfFile: requests, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.filter { $0["stream"] as? Bool == true }
        let format = try #require(sent.first?["response_format"] as? [String: Any], "\(sent)")
        #expect(format["type"] as? String == "json_object")
        #expect((format["schema"] as? [String: Any])?["required"] as? [String] == ["city"], "\(format)")
    }
}
