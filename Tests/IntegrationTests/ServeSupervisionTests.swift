import Foundation
import Testing
import TestSupport

/// `agentflow node` keeps a worker's model server running (issue 12): it starts the `serve`
/// command with {gpu}/{port} substituted and CUDA_VISIBLE_DEVICES set, waits for a real
/// completion, restarts the server when it dies, and stops it on SIGTERM. The server is
/// tools/fake_openai_server.py; only this host's workers (`host:`) run.
@Suite(.serialized) struct ServeSupervisionTests {
    @Test func nodeStartsRestartsAndStopsTheModelServer() throws {
        let port = freePort()
        let root = Paths.root.path
        let marker = NSTemporaryDirectory() + "af-serve-\(UUID().uuidString).txt"
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let serve = "echo gpu={gpu} cvd=$CUDA_VISIBLE_DEVICES >> \(marker); exec python3 \(root)/tools/fake_openai_server.py --port {port}"
        let scene = try NodeTests.Scene(gpus: [(0, 1000, "GPU A"), (1, 2000, "GPU B")], extra: """
            workers:
              - {name: h1-gpu1, host: h1, gpus: [1], model: m, backend: {kind: openai, serve: "\(serve)", port: \(port)}}
              - {name: h2-gpu0, host: h2, gpus: [0], model: m, backend: {kind: sim}}
            """)
        defer { scene.stop() }
        _ = try scene.start(["coordinator", "--cluster", scene.cluster], log: "coordinator.log")
        let node = try scene.start(["node", "--cluster", scene.cluster, "--host", "h1"], log: "node.log")
        try waitUntil(timeout: 30, "the model server answered a completion") { node.output.contains("ready at http://127.0.0.1:\(port)/v1") }
        try waitUntil(timeout: 20, "h1-gpu1 registered") { (try? scene.alive().keys.sorted()) == ["h1-gpu1"] }
        #expect(try scene.alive()["h1-gpu1"]?["freeMemory"] as? Int == 2000 * 1_048_576)
        #expect((try? String(contentsOfFile: marker, encoding: .utf8)) == "gpu=1 cvd=1\n")
        #expect(listening(on: UInt16(port)))

        // The server dies: the node restarts it and waits for a completion again.
        let pidText = try #require(node.output.range(of: #"started \(pid (\d+)"#, options: .regularExpression).map { node.output[$0] })
        let pid = try #require(Int32(pidText.filter(\.isNumber)))
        kill(pid, SIGKILL)
        try waitUntil(timeout: 30, "the server restarted and answered") {
            node.output.contains("exited") && node.output.components(separatedBy: "ready at").count == 3
        }
        #expect(((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").split(separator: "\n").count == 2)

        // SIGTERM: the workers drain and the server is stopped with the node.
        node.terminate()
        #expect(node.wait(timeout: 30) != nil, "\(scene.logs)")
        try waitUntil(timeout: 10, "the server gone") { !listening(on: UInt16(port)) }
    }
}

/// The same with a real llama.cpp server (SmolLM2 from tools/setup-models.sh): the node starts
/// it, waits until it completes, runs an attempt on it, restarts it after kill -9.
@Suite(.serialized) struct LlamaServeSupervisionTests {
    static var localModelsInstalled: Bool {
        FileManager.default.fileExists(atPath: Paths.root.appendingPathComponent(".agentflow/models.env").path)
            && FileManager.default.isExecutableFile(atPath: Paths.root.appendingPathComponent(".venv/bin/python").path)
    }

    @Test(.enabled(if: localModelsInstalled || ProcessInfo.processInfo.environment["AGENTFLOW_REQUIRE_MODELS"] == "1",
                   "needs tools/setup-models.sh (.venv and .agentflow/models.env)"))
    func nodeSupervisesALlamaServer() throws {
        let env = try String(contentsOf: Paths.root.appendingPathComponent(".agentflow/models.env"), encoding: .utf8)
        let gguf = try #require(env.split(separator: "\n").first { $0.hasPrefix("SMOLLM2_GGUF=") }.map { String($0.dropFirst("SMOLLM2_GGUF=".count)) })
        let python = Paths.root.appendingPathComponent(".venv/bin/python").path
        let port = freePort()
        let serve = "exec \(python) -m llama_cpp.server --model \(gguf) --model_alias smollm2-135m --host 127.0.0.1 --port {port} "
            + "--n_ctx 2048 --n_threads 1 --n_threads_batch 1 --verbose false --interrupt_requests false"
        let scene = try NodeTests.Scene(gpus: [(0, 1000, "GPU A")], model: "smollm2-135m", extra: """
            workers:
              - {name: h1-gpu0, host: h1, gpus: [0], model: smollm2-135m, backend: {kind: openai, serve: "\(serve)", port: \(port)}}
            """)
        defer { scene.stop() }
        _ = try scene.start(["coordinator", "--cluster", scene.cluster], log: "coordinator.log")
        let node = try scene.start(["node", "--cluster", scene.cluster, "--host", "h1", "--drain-grace", "5s"], log: "node.log")
        try waitUntil(timeout: 180, "llama.cpp answered a completion") { node.output.contains("ready at http://127.0.0.1:\(port)/v1") }
        try waitUntil(timeout: 20, "h1-gpu0 registered") { (try? scene.alive().keys.sorted()) == ["h1-gpu0"] }
        let wf = scene.dir.appendingPathComponent("add.yaml").path
        try """
        name: add
        budget: {tokens: 4000}
        deadline: 3m
        scaffold: {maxTurns: 2}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns a + b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5"}
            maxTokens: 1200
            maxAttempts: 1
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        let r = try agentflow(["submit", wf, "--cluster", scene.cluster, "--planner", "seq:1", "--wait", "--json"], timeout: 200)
        let job = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.err)\n\(scene.logs)")
        let spent = (job["budget"] as? [String: Any])?["spentTokens"] as? Int ?? 0
        #expect(spent > 0, "the attempt reached the supervised server: \(r.out)")

        let pidText = try #require(node.output.range(of: #"started \(pid (\d+)"#, options: .regularExpression).map { node.output[$0] })
        kill(try #require(Int32(pidText.filter(\.isNumber))), SIGKILL)
        try waitUntil(timeout: 180, "llama.cpp restarted and answered") {
            node.output.contains("exited") && node.output.components(separatedBy: "ready at").count == 3
        }
        node.terminate()
        #expect(node.wait(timeout: 60) != nil, "\(scene.logs)")
        try waitUntil(timeout: 15, "the server gone") { !listening(on: UInt16(port)) }
    }
}
