import Foundation
import TestSupport
import Testing

/// The real llama.cpp server (llama-cpp-python, SmolLM2-135M) started with `--api_key`, as
/// `vllm serve --api-key` is: `agentflow run` with the key from `apiKeyEnv` gets completions
/// (tokens are spent on the model), a wrong key stops it before anything is submitted, and the
/// key is in none of its output; a coordinator and a worker process get completions with it and
/// the key is in no log, CLI or HTTP answer (`workers --json`, the transcript included), report
/// or database file; a worker given a wrong key is suspended, named as refused. A second server
/// of our own on a free port; the shared ones on 8198/8199 are not touched.
@Suite(.serialized, .enabled(if: ModelServerOutageTests.localModelsInstalled || ProcessInfo.processInfo.environment["AGENTFLOW_REQUIRE_MODELS"] == "1",
                             "needs tools/setup-models.sh (.venv and .agentflow/models.env)"))
struct RealKeyedServerTests {
    /// llama_cpp.server with SmolLM2 and a fresh key of its own on a free loopback port, started
    /// and answering (401 without the key is an answer); `stop()` kills it.
    struct KeyedServer {
        let key = "sk-llama-\(UUID().uuidString)"
        let process = Process()
        /// The OpenAI base URL (`http://127.0.0.1:PORT/v1`).
        let url: String

        init(log: URL) throws {
            let env = try String(contentsOf: Paths.root.appendingPathComponent(".agentflow/models.env"), encoding: .utf8)
            let gguf = try #require(env.split(separator: "\n").first { $0.hasPrefix("SMOLLM2_GGUF=") }.map { String($0.dropFirst("SMOLLM2_GGUF=".count)) })
            let port = freePort()
            url = "http://127.0.0.1:\(port)/v1"
            let p = process
            p.executableURL = Paths.root.appendingPathComponent(".venv/bin/python")
            p.arguments = ["-m", "llama_cpp.server", "--model", gguf, "--model_alias", "smollm2-135m", "--api_key", key, "--host", "127.0.0.1",
                           "--port", String(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false",
                           "--interrupt_requests", "false"]
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            p.standardOutput = handle
            p.standardError = handle
            p.standardInput = FileHandle.nullDevice
            try launch(p)
            try? handle.close()  // the child writes through its own copy
            do {
                try waitUntil(timeout: 120, "the keyed llama.cpp server to answer") {
                    guard p.isRunning else { throw WaitTimeout(what: "the server exited: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")") }
                    return (try? http("GET", "http://127.0.0.1:\(port)/v1/models", maxTime: 2).status) == 401
                }
            } catch {
                stop()
                throw error
            }
        }

        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// One subtask SmolLM2 can answer in one turn; without `maxAttempts` it is tried until its deadline.
    static func workflow(in dir: URL, deadline: String, maxAttempts: Int? = 1) throws -> String {
        let file = dir.appendingPathComponent("wf-\(maxAttempts.map(String.init) ?? "unlimited").yaml").path
        try """
        name: real-keyed
        budget: {tokens: 6000}
        deadline: \(deadline)
        scaffold: {maxTurns: 1, summarizer: off, corrector: off}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns the sum of a and b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5"}
            maxTokens: 1200
        \(maxAttempts.map { "    maxAttempts: \($0)" } ?? "")
        """.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func runUsesTheKeyFromTheEnvironmentAndNamesAWrongOne() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-realkey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try KeyedServer(log: dir.appendingPathComponent("llama.log"))
        defer { server.stop() }
        let (key, url) = (server.key, server.url)
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator: {workers: "tcp://127.0.0.1:\(freePort())", clients: "tcp://127.0.0.1:\(freePort())", database: "\(dir.appendingPathComponent("agentflow.db").path)"}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 2048}
        workers:
          - name: cpu0
            model: smollm2-135m
            slots: 1
            backend: {kind: openai, url: "\(url)", apiKeyEnv: LLAMA_KEY, responseFormat: json_object, timeout: 2m}
        """.write(toFile: cluster, atomically: true, encoding: .utf8)
        let workflow = try Self.workflow(in: dir, deadline: "3m")

        let wrong = try agentflow(["run", workflow, "--cluster", cluster], timeout: 60, environment: ["LLAMA_KEY": "sk-wrong-\(UUID().uuidString)"])
        #expect(wrong.code == 3, "\(wrong.out)\(wrong.err)")
        #expect(wrong.err.contains("worker cpu0 (smollm2-135m): \(url)/models: the backend refused the key (HTTP 401)"), "\(wrong.err)")

        let run = try agentflow(["run", workflow, "--cluster", cluster, "--planner", "seq:1", "--json"], timeout: 180, environment: ["LLAMA_KEY": key])
        #expect(run.code == 0 || run.code == 1, "\(run.out)\(run.err)")
        let job = try #require(try JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any], "\(run.out)\(run.err)")
        let subtask = try #require((job["subtasks"] as? [[String: Any]])?.first)
        #expect((subtask["tokens"] as? Int ?? 0) > 0, "the model answered with the key: \(job)")
        #expect(!(job["reason"] as? String ?? "").contains("refused"), "\(job)")
        #expect(!(run.out + run.err).contains(key) && !(wrong.out + wrong.err).contains(key))
    }

    @Test func aWorkerWithTheKeyLeavesItNowhereAndAWrongKeyIsNamed() throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-realkey-\(UUID().uuidString)")
        // Everything under `dir` is scanned for the keys; the server's own log lies beside it.
        let dir = base.appendingPathComponent("cluster")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let wrongKey = "sk-wrong-\(UUID().uuidString)"
        let server = try KeyedServer(log: base.appendingPathComponent("llama.log"))
        defer { server.stop() }
        let (key, url) = (server.key, server.url)
        let httpPort = freePort()
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(freePort())
          clients: tcp://127.0.0.1:\(freePort())
          database: \(dir.appendingPathComponent("agentflow.db").path)
          http: 127.0.0.1:\(httpPort)
          heartbeat: 1s
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 2048}
        workers:
          - {name: cpu0, model: smollm2-135m, slots: 1, backend: {kind: openai, url: "\(url)", apiKeyEnv: LLAMA_KEY, timeout: 2m}}
          - {name: cpu1, model: smollm2-135m, slots: 1, backend: {kind: openai, url: "\(url)", apiKeyEnv: LLAMA_KEY, timeout: 2m}}
        """.write(toFile: cluster, atomically: true, encoding: .utf8)
        let workflow = try Self.workflow(in: dir, deadline: "4m")
        let coordinator = try Proc(["coordinator", "--cluster", cluster], log: dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "cpu0", "--cluster", cluster, "--verbose", "--log-level", "trace"],
                              log: dir.appendingPathComponent("worker-cpu0.log").path, environment: ["LLAMA_KEY": key])
        var wrong: Proc?
        defer {
            for p in [wrong, worker, coordinator].compactMap({ $0 }) {
                p.terminate()
                _ = p.wait(timeout: 5)
            }
        }
        func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

        // The job runs on the real model with the key: tokens spent, a call with a reply in its transcript.
        let submit = try agentflow(["submit", workflow, "--cluster", cluster, "--planner", "seq:1", "--wait", "--json"], timeout: 240)
        #expect(submit.code == 0 || submit.code == 1, "\(submit.out)\(submit.err)\n\(worker.output)")
        let job = try #require(json(submit.out) as? [String: Any], "\(submit.out)\(submit.err)\n\(worker.output)")
        let id = try #require(job["id"] as? String)
        let subtask = try #require((job["subtasks"] as? [[String: Any]])?.first)
        #expect((subtask["tokens"] as? Int ?? 0) > 0, "the model answered with the key: \(job)")
        let transcript = try agentflow(["attempts", id, "--transcript", "add#1", "--json", "--cluster", cluster], timeout: 20)
        let events = (json(transcript.out) as? [String: Any])?["events"] as? [[String: Any]] ?? []
        // The first call of the turn (call 0 is the token estimator's calibration, its prompt not kept).
        let reply = events.compactMap { $0["type"] as? String == "call" ? $0["reply"] as? [String: Any] : nil }
            .first { $0["finishReason"] as? String != "calibration" } ?? [:]
        #expect(!(reply["text"] as? String ?? "").isEmpty && (reply["tokensOut"] as? Int ?? 0) > 0, "\(transcript.out)\(transcript.err)")

        // Everything a user or an operator can read.
        var seen = [submit.out, submit.err, transcript.out, transcript.err]
        for args in [["workers", "--json"], ["workers"], ["status", id, "--json"], ["attempts", id, "--json"], ["attempts", id, "--transcript", "add#1"],
                     ["jobs", "--json"], ["ledger", id]] {
            let r = try agentflow(args + ["--cluster", cluster], timeout: 30)
            #expect(r.code == 0, "\(args): \(r.err)")
            seen.append(r.out + r.err)
        }
        let api = "http://127.0.0.1:\(httpPort)"
        for path in ["/api/v1/jobs", "/api/v1/jobs/\(id)", "/api/v1/jobs/\(id)/attempts", "/api/v1/jobs/\(id)/attempts/add/1/transcript",
                     "/api/v1/jobs/\(id)/ledger", "/api/v1/workers", "/api/v1/jobs/\(id)/events", "/metrics", "/"] {
            let r = try http("GET", api + path)
            #expect(r.status == 200, "\(path): \(r.status)")
            seen.append(r.body)
        }
        #expect(try agentflow(["report", id, "--html", dir.appendingPathComponent("report.html").path, "--cluster", cluster]).code == 0)

        // A second worker with a wrong key: its first call is refused, its breaker opens at once, and
        // `workers`, `status` and the metrics name the refusal.
        worker.terminate()
        _ = worker.wait(timeout: 10)
        wrong = try Proc(["worker", "--name", "cpu1", "--cluster", cluster, "--verbose", "--log-level", "trace"],
                         log: dir.appendingPathComponent("worker-cpu1.log").path, environment: ["LLAMA_KEY": wrongKey])
        // No attempt limit: the job waits while its only worker is suspended.
        let unlimited = try Self.workflow(in: dir, deadline: "4m", maxAttempts: nil)
        let second = try agentflow(["submit", unlimited, "--cluster", cluster, "--planner", "seq:1"], timeout: 30)
        let secondID = second.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(second.code == 0 && secondID.hasPrefix("j-"), "\(second.out)\(second.err)")
        var refused: [String: Any] = [:]
        var workersJSON = ""
        try waitUntil(timeout: 120, "cpu1's breaker to open on the refused key") {
            workersJSON = try agentflow(["workers", "--json", "--cluster", cluster], timeout: 10).out
            refused = (json(workersJSON) as? [[String: Any]] ?? []).first { $0["name"] as? String == "cpu1" } ?? [:]
            return refused["state"] as? String == "suspended"
        }
        #expect((refused["problem"] as? String ?? "").contains("the backend refused the key (HTTP 401"), "\(refused)")
        let status = try agentflow(["status", secondID, "--json", "--cluster", cluster], timeout: 10)
        #expect(status.out.contains("cpu1 suspended — the backend refused the key"), "\(status.out)")
        var metrics = ""
        try waitUntil(timeout: 15, "the breaker gauge") {
            metrics = try http("GET", api + "/metrics").body
            return metrics.contains(#"agentflow_worker_breaker_open{worker="cpu1",model="smollm2-135m",cause="refused_key"} 1.0"#)
        }
        seen += [workersJSON, status.out, status.err, metrics, try http("GET", api + "/api/v1/workers").body]
        _ = try agentflow(["cancel", secondID, "--cluster", cluster], timeout: 10)
        for p in [wrong, coordinator].compactMap({ $0 }) {
            p.terminate()
            _ = p.wait(timeout: 10)
        }
        seen += [worker.output, wrong?.output ?? "", coordinator.output]

        for secret in [key, wrongKey] {
            for (i, text) in seen.enumerated() { #expect(!text.contains(secret), "a key appears in output \(i): \(text.prefix(400))") }
            #expect(filesHolding(secret, in: dir).isEmpty, "a key is in \(filesHolding(secret, in: dir))")
        }
    }
}
