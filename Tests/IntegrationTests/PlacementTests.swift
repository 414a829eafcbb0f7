import Foundation
import Store
import Testing
import TestSupport

/// Placement across GPUs (issue 20 item 3) with real coordinator and worker processes, real
/// ZeroMQ and a real SQLite file: a fan-out spreads over the model's workers instead of filling
/// the first one's slots, and a worker whose model server reports a queue is passed over.
@Suite(.serialized) struct PlacementTests {
    /// `n` independent subtasks of smollm2-135m.
    static func fanOut(_ n: Int, seconds: Int = 10) -> String {
        var yaml = "name: fan\(n)\nmodels: [smollm2-135m]\nbudget: {tokens: 1000000}\ndeadline: 5m\nsubtasks:\n"
        for i in 0..<n {
            yaml += "  - {id: s\(i), prompt: part \(i), estimates: {smollm2-135m: {success: 1, tokens: 200, seconds: \(seconds)}}}\n"
        }
        return yaml
    }

    /// The worker of each subtask's first attempt, from the SQLite file.
    static func firstAttemptWorkers(_ database: String, job: String) throws -> [String: String] {
        let c = try SQLiteConnection(path: database)
        var out: [String: String] = [:]
        for row in try c.query("SELECT subtask, worker FROM attempts WHERE job = ? AND n = 1", job) { out[row.string(0)] = row.string(1) }
        return out
    }

    /// The acceptance test: 4 workers × 8 slots of one model, an 8-way fan-out uses all
    /// 4 (2 attempts each); first-free placement sent all 8 to the first worker.
    @Test func anEightWayFanOutOnFourWorkersOfEightSlotsUsesAllFour() throws {
        let cluster = try TestCluster(workers: (0..<4).map { ("gpu\($0)", "smollm2-135m", 8) }, timeScale: 0.2)
        try cluster.startAll()
        defer { cluster.stop() }
        let file = cluster.dir.appendingPathComponent("fan.yaml").path
        try Self.fanOut(8).write(toFile: file, atomically: true, encoding: .utf8)
        let r = try cluster.cli(["submit", file, "--planner", "seq:1", "--wait", "--json"], timeout: 120)
        let report = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        let job = try #require(report?["id"] as? String, "\(r)\n\(cluster.logs)")
        #expect(report?["state"] as? String == "succeeded", "\(r.out)")
        let placed = try Self.firstAttemptWorkers(cluster.database, job: job)
        #expect(placed.count == 8)
        let perWorker = placed.values.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        #expect(perWorker == ["gpu0": 2, "gpu1": 2, "gpu2": 2, "gpu3": 2], "\(placed)")
    }

    /// Two workers of 8 slots on two OpenAI-compatible servers (scripted): gpu0's server's
    /// `/metrics` says 100 requests wait (vLLM's `vllm:num_requests_waiting`), the other's says
    /// nothing (no `/metrics`, no `/slots`). The worker polls its server and reports with its
    /// heartbeat; the coordinator places the whole fan-out on the other worker (first-free would
    /// have put it all on gpu0, the first by name; least-loaded blind to the queue, 3 on each).
    @Test func aWorkerWhoseServerQueuesIsPassedOver() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-place-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let metrics = dir.appendingPathComponent("metrics.txt").path
        try "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"smollm2-135m\"} 100\nvllm:num_requests_running{model_name=\"smollm2-135m\"} 8\n"
            .write(toFile: metrics, atomically: true, encoding: .utf8)
        let busy = FakeServer(arguments: ["--metrics-file", metrics])
        let quiet = FakeServer()
        let database = dir.appendingPathComponent("agentflow.db").path
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator: {workers: "tcp://127.0.0.1:\(freePort())", clients: "tcp://127.0.0.1:\(freePort())", database: \(database), heartbeat: 1s, liveness: 3}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}
        workers:
          - {name: gpu0, gpus: [0], model: smollm2-135m, slots: 8, backend: {kind: openai, url: "\(busy.baseURL)"}}
          - {name: gpu1, gpus: [1], model: smollm2-135m, slots: 8, backend: {kind: openai, url: "\(quiet.baseURL)"}}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let coordinator = try Proc(["coordinator", "--cluster", clusterFile], log: dir.appendingPathComponent("coordinator.log").path)
        let workers = try ["gpu0", "gpu1"].map { try Proc(["worker", "--name", $0, "--cluster", clusterFile, "--verbose"], log: dir.appendingPathComponent("\($0).log").path) }
        defer {
            for p in workers + [coordinator] { p.terminate() }
            for p in workers + [coordinator] where p.wait(timeout: 10) == nil { p.kill9() }
        }
        let logs = { (workers + [coordinator]).map(\.output).joined(separator: "\n==\n") }
        try waitUntil(timeout: 30, "both workers registered") {
            let r = try agentflow(["workers", "--json", "--cluster", clusterFile], timeout: 10)
            let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
            return list.filter { $0["state"] as? String == "alive" }.count == 2
        }
        // The first poll is at start-up; its answer rides the next heartbeat (1 s).
        Thread.sleep(forTimeInterval: 3)
        let file = dir.appendingPathComponent("fan.yaml").path
        try Self.fanOut(6).write(toFile: file, atomically: true, encoding: .utf8)
        let r = try agentflow(["submit", file, "--cluster", clusterFile, "--planner", "seq:1"], timeout: 30)
        let job = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(r.code == 0, "\(r)")
        var placed: [String: String] = [:]
        try waitUntil(timeout: 30, "6 first attempts dispatched") {
            placed = (try? Self.firstAttemptWorkers(database, job: job)) ?? [:]
            return placed.count == 6 && placed.values.allSatisfy { !$0.isEmpty }
        }
        #expect(Set(placed.values) == ["gpu1"], "\(placed)\n\(logs())")
        _ = try agentflow(["cancel", job, "--cluster", clusterFile], timeout: 30)
    }
}
