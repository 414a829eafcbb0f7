import Foundation
import TestSupport
import Testing

/// Model servers that die in the middle of `agentflow run` (embedded mode): the progress line
/// says what the job waits for, and once every worker's breaker has suspended it three times in
/// a row the job ends `failed`, naming the servers and their error, and the command exits 1.
@Suite(.serialized) struct ModelServerOutageTests {
    func scratch() throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-outage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A cluster whose workers (slots 2 each) use the given server ports, and a three-step chain.
    func files(in dir: URL, workers: [(name: String, port: Int)]) throws -> (cluster: String, workflow: String) {
        var yaml = """
        coordinator: {workers: "tcp://127.0.0.1:\(freePort())", clients: "tcp://127.0.0.1:\(freePort())", database: "\(dir.appendingPathComponent("agentflow.db").path)"}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 4096}
        workers:

        """
        for w in workers {
            yaml += "  - {name: \(w.name), gpus: [], model: smollm2-135m, slots: 2, backend: {kind: openai, url: \"http://127.0.0.1:\(w.port)/v1\"}}\n"
        }
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try yaml.write(toFile: cluster, atomically: true, encoding: .utf8)
        let workflow = dir.appendingPathComponent("wf.yaml").path
        try """
        name: outage
        budget: {tokens: 40000}
        deadline: 5m
        scaffold: {maxTurns: 3}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns a + b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5"}
            maxTokens: 1500
          - id: twice
            needs: [add]
            prompt: "Write a Python function twice(x) that returns add(x, x), using add from add.py."
            verify: {python: "from solution import twice\\nassert twice(4) == 8"}
            maxTokens: 1500
          - id: square
            needs: [twice]
            prompt: "Write a Python function square(x) that returns x * x."
            verify: {python: "from solution import square\\nassert square(3) == 9"}
            maxTokens: 1500
        """.write(toFile: workflow, atomically: true, encoding: .utf8)
        return (cluster, workflow)
    }

    /// Waits for the run to end; its exit status and seconds taken, or nil past `timeout`.
    func waitForEnd(_ run: Proc, timeout: Double) -> (code: Int32, seconds: Double)? {
        let started = Date()
        guard let code = run.wait(timeout: timeout) else { return nil }
        return (code, Date().timeIntervalSince(started))
    }

    @Test func runEndsFailedNamingTheServersWhenTheyDieMidRun() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two stand-in servers that answer the start-up probe (GET /v1/models), then die.
        var servers: [(name: String, port: Int, process: Process)] = []
        for name in ["gpu0", "gpu1"] {
            let port = freePort()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-m", "llama_cpp.server", "--port", String(port)]
            p.environment = ProcessInfo.processInfo.environment.merging(
                ["PYTHONPATH": Paths.root.appendingPathComponent("tools/stand-in-llama-server").path, "AGENTFLOW_STANDIN": "ok"]) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try launch(p)
            servers.append((name, port, p))
        }
        defer { for s in servers where s.process.isRunning { kill(s.process.processIdentifier, SIGKILL) } }
        try waitUntil(timeout: 20, "the stand-in servers listen") { servers.allSatisfy { listening(on: UInt16($0.port)) } }
        let f = try files(in: dir, workers: servers.map { ($0.name, $0.port) })
        let run = try Proc(["run", f.workflow, "--cluster", f.cluster, "--planner", "seq:1"], log: dir.appendingPathComponent("run.log").path)
        defer { if run.process.isRunning { run.kill9() } }
        try waitUntil(timeout: 30, "the job is submitted") { run.output.contains("submitted j-") }
        for s in servers {
            kill(s.process.processIdentifier, SIGKILL)
            s.process.waitUntilExit()
        }
        let end = try #require(waitForEnd(run, timeout: 60), "agentflow run still running 60 s after its servers died:\n\(run.output)")
        let out = run.output
        #expect(end.code == 1, "\(out)")
        #expect(out.contains("waiting: gpu0, gpu1 suspended — model server refuses connections"), "\(out)")
        #expect(out.contains("outage  failed  (every model server the job could use kept failing (suspended 3 times in a row)"), "\(out)")
        for s in servers {
            #expect(out.contains("worker \(s.name) (http://127.0.0.1:\(s.port)/v1): model server refuses connections"), "\(out)")
        }
        #expect(out.contains("Couldn't connect to server"), "\(out)")
    }

    /// The venv and GGUF files of `tools/setup-models.sh` in this checkout (`make test` runs it first).
    static var localModelsInstalled: Bool {
        FileManager.default.fileExists(atPath: Paths.root.appendingPathComponent(".agentflow/models.env").path)
            && FileManager.default.isExecutableFile(atPath: Paths.root.appendingPathComponent(".venv/bin/python").path)
    }

    @Test(.enabled(if: localModelsInstalled || ProcessInfo.processInfo.environment["AGENTFLOW_REQUIRE_MODELS"] == "1",
                   "needs tools/setup-models.sh (.venv and .agentflow/models.env)"))
    func runEndsFailedWhenItsRealLlamaServerIsKilledMidRun() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Our own llama.cpp server (SmolLM2) on a free port, with its own pid file and log.
        try FileManager.default.copyItem(at: Paths.root.appendingPathComponent(".agentflow/models.env"), to: dir.appendingPathComponent("models.env"))
        let port = freePort()
        let env = ["AGENTFLOW_STATE_DIR": dir.path, "AGENTFLOW_SMOLLM2_PORT": String(port)]
        let started = try runScript("tools/start-models.sh", ["smollm2"], env: env, timeout: 240)
        let pidFile = dir.appendingPathComponent("llama-smollm2-135m.pid").path
        let pid = Int32(((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        defer { if pid > 0 { kill(pid, SIGKILL) } }
        try #require(started.code == 0 && pid > 0, "\(started.output)")
        let f = try files(in: dir, workers: [("cpu0", port)])
        let run = try Proc(["run", f.workflow, "--cluster", f.cluster, "--planner", "seq:1"], log: dir.appendingPathComponent("run.log").path)
        defer { if run.process.isRunning { run.kill9() } }
        try waitUntil(timeout: 30, "the job is submitted") { run.output.contains("submitted j-") }
        // Let the first attempt reach the model, then kill the server without warning.
        Thread.sleep(forTimeInterval: 2)
        #expect(run.process.isRunning, "the job ended before the server was killed:\n\(run.output)")
        kill(pid, SIGKILL)
        let end = try #require(waitForEnd(run, timeout: 60), "agentflow run still running 60 s after its server was killed:\n\(run.output)")
        let out = run.output
        #expect(end.code == 1, "\(out)")
        #expect(out.contains("waiting: cpu0 suspended — model server refuses connections"), "\(out)")
        #expect(out.contains("outage  failed  (every model server the job could use kept failing"), "\(out)")
        #expect(out.contains("worker cpu0 (http://127.0.0.1:\(port)/v1): model server refuses connections"), "\(out)")
    }
}
