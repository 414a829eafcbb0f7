import Foundation
import Store
import Testing

/// `agentflow node` as real processes: a coordinator, a node that reads a stand-in nvidia-smi,
/// the CLI (issue 12).
@Suite(.serialized) struct NodeTests {
    /// A scratch directory with a stand-in `nvidia-smi` on a PATH of its own and a cluster file.
    final class Scene: @unchecked Sendable {
        let dir: URL
        let cluster: String
        let database: String
        let workersPort = freePort(), clientsPort = freePort()
        var procs: [Proc] = []

        init(gpus: [(index: Int, freeMiB: Int, name: String)], model: String = "m", extra: String = "") throws {
            dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-node-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("bin"), withIntermediateDirectories: true)
            let lines = gpus.map { "\($0.index), \($0.freeMiB), \($0.name)" }.joined(separator: "\n")
            let smi = dir.appendingPathComponent("bin/nvidia-smi").path
            try "#!/bin/sh\n# stand-in: the query agentflow node makes\ncat <<'EOF'\n\(lines)\nEOF\n".write(toFile: smi, atomically: true, encoding: .utf8)
            chmod(smi, 0o755)
            cluster = dir.appendingPathComponent("cluster.yaml").path
            database = dir.appendingPathComponent("db.sqlite").path
            try """
            coordinator:
              workers: tcp://127.0.0.1:\(workersPort)
              clients: tcp://127.0.0.1:\(clientsPort)
              database: \(database)
            models:
              - {name: \(model), price: {input: 1, output: 1}, context: 8192}
            \(extra)
            """.write(toFile: cluster, atomically: true, encoding: .utf8)
        }

        var path: String { dir.appendingPathComponent("bin").path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") }

        func start(_ args: [String], log: String, environment: [String: String] = [:]) throws -> Proc {
            let p = try Proc(args, log: dir.appendingPathComponent(log).path, environment: ["PATH": path].merging(environment) { $1 })
            procs.append(p)
            return p
        }

        func workers() throws -> [[String: Any]] {
            let r = try agentflow(["workers", "--json", "--cluster", cluster], timeout: 20)
            return (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
        }

        func alive() throws -> [String: [String: Any]] {
            Dictionary(try workers().filter { $0["state"] as? String != "dead" }.map { ($0["name"] as! String, $0) }) { a, _ in a }
        }

        func workflow(_ name: String, subtasks: Int, seconds: Double) throws -> String {
            let path = dir.appendingPathComponent("\(name).yaml").path
            var text = "name: \(name)\nbudget: {tokens: 1000000}\ndeadline: 5m\nsubtasks:\n"
            for i in 0..<subtasks { text += "  - {id: s\(i), prompt: x, estimates: {m: {success: 1, tokens: 100, seconds: \(seconds)}}}\n" }
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// (worker, state) of every attempt of a job, from the SQLite file.
        func attempts(_ job: String) throws -> [(worker: String, state: String)] {
            let c = try SQLiteConnection(path: database)
            return try c.query("SELECT COALESCE(worker, ''), state FROM attempts WHERE job = ?", job).map { ($0.string(0), $0.string(1)) }
        }

        var logs: String {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }) ?? []
            return files.sorted().map { "== \($0)\n" + ((try? String(contentsOfFile: dir.appendingPathComponent($0).path, encoding: .utf8)) ?? "") }.joined(separator: "\n")
        }

        func stop() {
            for p in procs.reversed() { p.terminate() }
            for p in procs.reversed() where p.wait(timeout: 10) == nil { p.kill9() }
            procs = []
        }

        deinit {
            stop()
            try? FileManager.default.removeItem(at: dir)
        }
    }

    @Test func fourGPUsFourWorkersDrainUndrainAndSIGTERM() throws {
        let scene = try Scene(gpus: [(0, 81037, "NVIDIA H100 80GB HBM3"), (1, 80512, "NVIDIA H100 80GB HBM3"),
                                     (2, 40000, "NVIDIA A100-SXM4-40GB"), (3, 1024, "NVIDIA A100-SXM4-40GB")])
        defer { scene.stop() }
        _ = try scene.start(["coordinator", "--cluster", scene.cluster], log: "coordinator.log")
        let node = try scene.start(["node", "--cluster", scene.cluster, "--model", "m", "--backend", "sim", "--time-scale", "0.03",
                                    "--gpus", "all", "--slots", "2", "--name-prefix", "hx"], log: "node.log")
        try waitUntil(timeout: 30, "four workers registered") { (try? scene.alive().count) == 4 }
        let alive = try scene.alive()
        #expect(Set(alive.keys) == ["hx-gpu0", "hx-gpu1", "hx-gpu2", "hx-gpu3"], "\(scene.logs)")
        for (i, mib, gpu) in [(0, 81037, "NVIDIA H100 80GB HBM3"), (2, 40000, "NVIDIA A100-SXM4-40GB"), (3, 1024, "NVIDIA A100-SXM4-40GB")] {
            let w = try #require(alive["hx-gpu\(i)"])
            #expect((w["freeMemory"] as? Int) == mib * 1_048_576)
            #expect(w["gpuName"] as? String == gpu)
            #expect(w["gpus"] as? [Int] == [i])
            #expect(w["slots"] as? Int == 2)
        }

        // drain two workers from the CLI: the next job runs on the other two only.
        for name in ["hx-gpu0", "hx-gpu1"] {
            let r = try agentflow(["drain", name, "--cluster", scene.cluster])
            #expect(r.code == 0 && r.out.contains("draining"), "\(r.out)\(r.err)")
        }
        let unknown = try agentflow(["drain", "hx-gpu9", "--cluster", scene.cluster])
        #expect(unknown.code == 2 && unknown.err.contains("no worker 'hx-gpu9'"))
        let wf = try scene.workflow("fan", subtasks: 8, seconds: 1)
        let done = try agentflow(["submit", wf, "--cluster", scene.cluster, "--wait", "--json", "--planner", "seq:1"])
        #expect(done.code == 0, "\(done.err)\n\(scene.logs)")
        let job = try #require((try JSONSerialization.jsonObject(with: Data(done.out.utf8)) as? [String: Any])?["id"] as? String)
        let used = Set(try scene.attempts(job).map(\.worker))
        #expect(used.isSubset(of: ["hx-gpu2", "hx-gpu3"]) && !used.isEmpty, "attempts ran on \(used)")
        let undrained = try agentflow(["undrain", "hx-gpu0", "--cluster", scene.cluster])
        #expect(undrained.code == 0 && undrained.out.contains("alive"), "\(undrained.out)")

        // SIGTERM: running attempts (3 s each) finish, nothing is lost, then the workers say goodbye.
        let slow = try scene.workflow("slow", subtasks: 4, seconds: 100)
        let submitted = try agentflow(["submit", slow, "--cluster", scene.cluster, "--planner", "seq:1"])
        let slowJob = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitUntil(timeout: 20, "attempts running") { ((try? scene.attempts(slowJob).filter { $0.state == "dispatched" }.count) ?? 0) >= 2 }
        let t0 = Date()
        node.terminate()
        let exit = node.wait(timeout: 30)
        #expect(exit != nil, "node did not exit after SIGTERM\n\(scene.logs)")
        #expect(Date().timeIntervalSince(t0) < 25)
        let states = try scene.attempts(slowJob).map(\.state)
        #expect(!states.contains("lost") && !states.contains("dispatched"), "\(states)\n\(scene.logs)")
        #expect(states.contains("succeeded"), "\(states)")
        #expect(node.output.contains("draining"))
        try waitUntil(timeout: 10, "workers gone") { (try? scene.alive().isEmpty) == true }
        _ = try agentflow(["cancel", slowJob, "--cluster", scene.cluster])
        let check = try LedgerCheck(database: scene.database, job: slowJob)
        #expect(check.consistent && check.lostAttempts == 0)
    }

    @Test func drainGraceCancelsAndChargesWhatWasUsed() throws {
        let scene = try Scene(gpus: [(0, 1000, "GPU A"), (1, 1000, "GPU B"), (2, 1000, "GPU C")])
        defer { scene.stop() }
        _ = try scene.start(["coordinator", "--cluster", scene.cluster], log: "coordinator.log")
        // CUDA_VISIBLE_DEVICES hides GPU 1.
        let node = try scene.start(["node", "--cluster", scene.cluster, "--model", "m", "--backend", "sim", "--time-scale", "0.03",
                                    "--gpus", "all", "--drain-grace", "1s"], log: "node.log", environment: ["CUDA_VISIBLE_DEVICES": "2,0"])
        try waitUntil(timeout: 30, "two workers registered") { (try? scene.alive().count) == 2 }
        #expect(Set(try scene.alive().keys).allSatisfy { $0.hasSuffix("-gpu0") || $0.hasSuffix("-gpu2") })
        let slow = try scene.workflow("slow", subtasks: 2, seconds: 2000)
        let job = try agentflow(["submit", slow, "--cluster", scene.cluster, "--planner", "seq:1"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitUntil(timeout: 20, "attempts running") { (try? scene.attempts(job).filter { $0.state == "dispatched" }.count) == 2 }
        Thread.sleep(forTimeInterval: 1)
        node.terminate()
        #expect(node.wait(timeout: 20) != nil, "node did not exit\n\(scene.logs)")
        let states = try scene.attempts(job).map(\.state)
        #expect(states.filter { $0 == "cancelled" }.count == 2, "\(states)\n\(scene.logs)")
        _ = try agentflow(["cancel", job, "--cluster", scene.cluster])
        let check = try LedgerCheck(database: scene.database, job: job)
        #expect(check.consistent && check.lostAttempts == 0)
        #expect(check.spentTokens > 0, "cancelled attempts report the tokens they used")
    }
}
