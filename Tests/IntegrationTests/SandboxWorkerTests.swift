import Foundation
import Testing

/// How a worker process runs model code: it refuses to start without bubblewrap unless told
/// `--unsafe-no-sandbox`, its registration says which sandbox it has (`agentflow workers`), and
/// the cluster file's `sandbox:` limits reach its attempts.
@Suite(.serialized) struct SandboxWorkerTests {
    /// A cluster with one `openai` worker (the stand-in model server is not needed to register)
    /// and one `sim` worker.
    func cluster(extra: String = "") throws -> (dir: URL, file: String) {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-sandbox-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("cluster.yaml").path
        try """
            coordinator: {workers: "tcp://127.0.0.1:\(freePort())", clients: "tcp://127.0.0.1:\(freePort())", database: "\(dir.path)/agentflow.db"}
            models:
              - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 4096}
            workers:
              - {name: coder, gpus: [], model: smollm2-135m, slots: 1, backend: {kind: openai, url: "http://127.0.0.1:\(freePort())/v1"}}
              - {name: simulated, gpus: [], model: smollm2-135m, slots: 1, backend: {kind: sim, timeScale: 0, seed: 1}}
            \(extra)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        return (dir, file)
    }

    @Test func withoutBubblewrapAWorkerRefusesToRunModelCode() throws {
        let c = try cluster()
        defer { try? FileManager.default.removeItem(at: c.dir) }
        let noBwrap = ["AGENTFLOW_BWRAP": "/nonexistent/bwrap"]
        let refused = try agentflow(["worker", "--name", "coder", "--cluster", c.file], timeout: 30, environment: noBwrap)
        #expect(refused.code == 1, "\(refused)")
        #expect(refused.err.contains("bubblewrap") && refused.err.contains("--unsafe-no-sandbox"), "\(refused.err)")
        let workflow = c.dir.appendingPathComponent("wf.yaml").path
        try "name: one\nsubtasks:\n  - id: a\n    prompt: Write add(a, b).\n    verify: {command: \"true\"}\n".write(toFile: workflow, atomically: true, encoding: .utf8)
        let run = try agentflow(["run", workflow, "--cluster", c.file], timeout: 30, environment: noBwrap)
        #expect(run.code == 1 && run.err.contains("bubblewrap"), "\(run)")

        // With the flag it runs, and says so in its registration.
        let coordinator = try Proc(["coordinator", "--cluster", c.file], log: c.dir.appendingPathComponent("coordinator.log").path)
        let unsafe = try Proc(["worker", "--name", "coder", "--cluster", c.file, "--unsafe-no-sandbox"], log: c.dir.appendingPathComponent("coder.log").path,
                              environment: noBwrap)
        let simulated = try Proc(["worker", "--name", "simulated", "--cluster", c.file], log: c.dir.appendingPathComponent("sim.log").path, environment: noBwrap)
        defer {
            for p in [unsafe, simulated, coordinator] { p.terminate() }
            for p in [unsafe, simulated, coordinator] where p.wait(timeout: 5) == nil { p.kill9() }
        }
        var list: [[String: Any]] = []
        try waitUntil(timeout: 30, "both workers registered: \(unsafe.output)") {
            let r = try agentflow(["workers", "--json", "--cluster", c.file], timeout: 10)
            list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
            return list.count == 2
        }
        let coder = try #require(list.first { $0["name"] as? String == "coder" })
        #expect((coder["sandbox"] as? String)?.hasPrefix("none (--unsafe-no-sandbox)") == true, "\(coder)")
        #expect(list.first { $0["name"] as? String == "simulated" }?["sandbox"] == nil, "a sim worker runs no code")
        let table = try agentflow(["workers", "--cluster", c.file], timeout: 10)
        #expect(table.out.contains("SANDBOX") || table.out.contains("sandbox"))
        #expect(table.out.contains("none (--unsafe-no-sandbox)"), "\(table.out)")
        #expect(unsafe.output.contains("sandbox: none (--unsafe-no-sandbox)"), "\(unsafe.output)")
    }

    @Test func aWorkerWithoutCgroupsSaysCgroupsOff() throws {
        let c = try cluster()
        defer { try? FileManager.default.removeItem(at: c.dir) }
        let coordinator = try Proc(["coordinator", "--cluster", c.file], log: c.dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "coder", "--cluster", c.file], log: c.dir.appendingPathComponent("coder.log").path,
                              environment: ["AGENTFLOW_SANDBOX_NO_CGROUPS": "1"])
        defer {
            for p in [worker, coordinator] { p.terminate() }
            for p in [worker, coordinator] where p.wait(timeout: 5) == nil { p.kill9() }
        }
        var line = ""
        try waitUntil(timeout: 30, "the worker registered: \(worker.output)") {
            let r = try agentflow(["workers", "--json", "--cluster", c.file], timeout: 10)
            let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
            line = list.first?["sandbox"] as? String ?? ""
            return !line.isEmpty
        }
        #expect(line.hasPrefix("bubblewrap, cgroups: off"), "\(line)")
    }
}
