import Foundation
import TestSupport
import Testing

/// Workers whose model server is down: a real coordinator and real worker processes whose
/// `openai` backend points at a loopback port where nothing listens.
@Suite(.serialized) struct BackendDownTests {
    /// A cluster file with the given workers (`url: nil` = a dead port), in a fresh directory.
    func cluster(_ workers: [(name: String, url: String?)]) throws -> (dir: URL, file: String, db: String) {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-down-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let db = dir.appendingPathComponent("agentflow.db").path
        var yaml = """
        coordinator: {workers: "tcp://127.0.0.1:\(freePort())", clients: "tcp://127.0.0.1:\(freePort())", database: "\(db)"}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 4096}
        workers:

        """
        for w in workers {
            let url = w.url ?? "http://127.0.0.1:\(freePort())/v1"
            yaml += "  - {name: \(w.name), gpus: [], model: smollm2-135m, slots: 1, backend: {kind: openai, url: \"\(url)\"}}\n"
        }
        let file = dir.appendingPathComponent("cluster.yaml").path
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return (dir, file, db)
    }

    func workflow(in dir: URL, deadline: String) throws -> String {
        let wf = dir.appendingPathComponent("wf.yaml").path
        try """
        name: down
        budget: {tokens: 20000}
        deadline: \(deadline)
        scaffold: {maxTurns: 2}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns a + b."
            verify: {python: "from solution import add\\\\nassert add(2, 3) == 5"}
            maxTokens: 1500
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        return wf
    }

    @Test func runRefusesToStartWhenNoModelServerAnswers() throws {
        let c = try cluster([("gpu0", nil), ("gpu1", nil)])
        defer { try? FileManager.default.removeItem(at: c.dir) }
        let r = try agentflow(["run", try workflow(in: c.dir, deadline: "1m"), "--cluster", c.file], timeout: 30)
        #expect(r.code == 3, "\(r)")
        #expect(r.err.contains("no model server answers"))
        #expect(r.err.contains("worker gpu0 (smollm2-135m): http://127.0.0.1:"), "\(r.err)")
        #expect(r.err.contains("/v1/models"))
        #expect(r.err.contains("worker gpu1"))
        #expect(!FileManager.default.fileExists(atPath: c.db), "nothing submitted, no database written")
    }

    @Test func aWorkerWhoseServerKeepsFailingIsSuspendedAndTheJobSaysWhy() throws {
        let c = try cluster([("gpu0", nil)])
        defer { try? FileManager.default.removeItem(at: c.dir) }
        let coordinator = try Proc(["coordinator", "--cluster", c.file], log: c.dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "gpu0", "--cluster", c.file], log: c.dir.appendingPathComponent("worker.log").path)
        defer {
            worker.terminate()
            coordinator.terminate()
            if worker.wait(timeout: 5) == nil { worker.kill9() }
            if coordinator.wait(timeout: 5) == nil { coordinator.kill9() }
        }
        let deadline = 25.0
        let submitted = try agentflow(["submit", try workflow(in: c.dir, deadline: "\(Int(deadline))s"), "--cluster", c.file, "--planner", "seq:1"], timeout: 30)
        #expect(submitted.code == 0, "\(submitted)")
        let id = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        // The worker says at start that its server does not answer (its probe may still be
        // running when the submit returns on a loaded machine).
        try waitUntil(timeout: 20, "the worker's warning: \(worker.output)") { worker.output.contains("model server does not answer") }
        // `workers` shows it suspended, with the server's error.
        var seen: [String: Any] = [:]
        try waitUntil(timeout: deadline, "gpu0 suspended") {
            let r = try agentflow(["workers", "--json", "--cluster", c.file], timeout: 10)
            let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
            seen = list.first ?? [:]
            return seen["state"] as? String == "suspended"
        }
        #expect((seen["problem"] as? String ?? "").contains("Couldn't connect to server"), "\(seen)")
        // The job runs to its deadline (the server might come back): a long-running coordinator
        // does not end it, but its status says what it waits for. Then it says why it failed.
        var job: [String: Any] = [:]
        var waiting: Set<String> = []
        try waitUntil(timeout: deadline + 15, "the job's end") {
            let r = try agentflow(["status", id, "--json", "--cluster", c.file], timeout: 30)
            job = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]) ?? [:]
            if let w = job["waiting"] as? String, !w.isEmpty { waiting.insert(w) }
            return (job["endedAt"] as? String) != nil
        }
        #expect(waiting.contains("gpu0 suspended — model server refuses connections"), "\(waiting)")
        #expect(job["waiting"] as? String == "", "an ended job waits for nothing: \(job)")
        #expect(job["state"] as? String == "deadline_exceeded", "\(job)")
        let reason = job["reason"] as? String ?? ""
        #expect(reason.contains("worker gpu0's model server keeps failing"), "\(reason)")
        #expect(reason.contains("Couldn't connect to server"), "\(reason)")
        // Each failing attempt takes about 1.75 s (the client's retries). Without the breaker one
        // slot would fail about 14 of them in 25 s; with it: 3, then one per cooldown (2, 4, 8 s).
        let check = try LedgerCheck(database: c.db, job: id)
        #expect(check.attemptRows <= 8, "\(check.attemptRows) attempts")
        #expect(check.attemptRows >= 3)
        #expect(check.ledgerTokens == 0 && check.spentTokens == 0)
    }
}
