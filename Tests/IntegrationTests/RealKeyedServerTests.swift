import Foundation
import TestSupport
import Testing

/// The real llama.cpp server (llama-cpp-python, SmolLM2-135M) started with `--api_key`, as
/// `vllm serve --api-key` is: `agentflow run` with the key from `apiKeyEnv` gets completions
/// (tokens are spent on the model), a wrong key stops it before anything is submitted, and the
/// key is in none of its output. A second server of our own on a free port; the shared ones on
/// 8198/8199 are not touched.
@Suite(.serialized, .enabled(if: ModelServerOutageTests.localModelsInstalled || ProcessInfo.processInfo.environment["AGENTFLOW_REQUIRE_MODELS"] == "1",
                             "needs tools/setup-models.sh (.venv and .agentflow/models.env)"))
struct RealKeyedServerTests {
    /// Starts llama_cpp.server with SmolLM2 and `key` on a free loopback port; waits until it
    /// answers (401 without the key is an answer).
    static func startServer(key: String, log: URL) throws -> (port: Int, process: Process) {
        let env = try String(contentsOf: Paths.root.appendingPathComponent(".agentflow/models.env"), encoding: .utf8)
        let gguf = try #require(env.split(separator: "\n").first { $0.hasPrefix("SMOLLM2_GGUF=") }.map { String($0.dropFirst("SMOLLM2_GGUF=".count)) })
        let port = freePort()
        let p = Process()
        p.executableURL = Paths.root.appendingPathComponent(".venv/bin/python")
        p.arguments = ["-m", "llama_cpp.server", "--model", gguf, "--model_alias", "smollm2-135m", "--api_key", key, "--host", "127.0.0.1",
                       "--port", String(port), "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1", "--verbose", "false",
                       "--interrupt_requests", "false"]
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        try waitUntil(timeout: 120, "the keyed llama.cpp server to answer") {
            guard p.isRunning else { throw WaitTimeout(what: "the server exited: \((try? String(contentsOf: log, encoding: .utf8)) ?? "")") }
            return (try? http("GET", "http://127.0.0.1:\(port)/v1/models", maxTime: 2).status) == 401
        }
        return (port, p)
    }

    @Test func runUsesTheKeyFromTheEnvironmentAndNamesAWrongOne() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-realkey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = "sk-llama-\(UUID().uuidString)"
        let server = try Self.startServer(key: key, log: dir.appendingPathComponent("llama.log"))
        defer {
            kill(server.process.processIdentifier, SIGKILL)
            server.process.waitUntilExit()
        }
        let url = "http://127.0.0.1:\(server.port)/v1"
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
        let workflow = dir.appendingPathComponent("wf.yaml").path
        try """
        name: real-keyed
        budget: {tokens: 6000}
        deadline: 3m
        scaffold: {maxTurns: 1, summarizer: off, corrector: off}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns the sum of a and b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5"}
            maxTokens: 1200
            maxAttempts: 1
        """.write(toFile: workflow, atomically: true, encoding: .utf8)

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
}
