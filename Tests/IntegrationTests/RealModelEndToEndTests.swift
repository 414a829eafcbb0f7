import Foundation
import TestSupport
import Testing

/// A workflow through a real coordinator process and a real worker process whose backend is
/// the real llama.cpp server with SmolLM2-135M: real tokens, real sandboxed code, real verifier.
@Suite(.serialized, .enabled(if: realModelTestsEnabled(), "needs tools/start-models.sh (smollm2-135m on 127.0.0.1:8198)"))
struct RealModelEndToEndTests {
    @Test func workflowRunsOnTheRealModelWithinBudgetAndDeadline() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-real-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let workersPort = freePort(), clientsPort = freePort()
        let db = dir.appendingPathComponent("agentflow.db").path
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator: {workers: "tcp://127.0.0.1:\(workersPort)", clients: "tcp://127.0.0.1:\(clientsPort)", database: "\(db)"}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 4096}
        workers:
          - {name: cpu0, gpus: [], model: smollm2-135m, slots: 1, backend: {kind: openai, url: "http://127.0.0.1:8198/v1"}}
        """.write(toFile: cluster, atomically: true, encoding: .utf8)
        let wf = dir.appendingPathComponent("wf.yaml").path
        // Two dependent helpers: square's workspace holds add.py, the output of add, and its prompt
        // shows it. The pair is chosen so that the system, not the model, is what is tested:
        // SmolLM2 passes each 20/20 and 16/16 at the scaffold's prompt (tools/prompt_probe.py). The
        // demo's total → average pair failed here on CI: when total comes out as a sum over an
        // isinstance filter (8 of 12 samples), SmolLM2 copies that body into average and
        // multiplies by 100 (2 of 12 pass; docs/benchmarks.md, "Scaffold").
        try """
        name: real-e2e
        models: [smollm2-135m]
        budget: {tokens: 12000, usd: 0.01}
        deadline: 120s
        scaffold: {maxTurns: 3}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns a + b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5\\nassert add(-1, 1) == 0"}
            maxTokens: 2000
          - id: square
            needs: [add]
            prompt: "Write a Python function square(x) that returns x * x."
            verify: {python: "from solution import square\\nassert square(3) == 9\\nassert square(-2) == 4"}
            maxTokens: 2000
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        let coordinator = try Proc(["coordinator", "--cluster", cluster], log: dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "cpu0", "--cluster", cluster, "--verbose"], log: dir.appendingPathComponent("worker.log").path)
        defer {
            worker.terminate()
            coordinator.terminate()
            if worker.wait(timeout: 5) == nil { worker.kill9() }
            if coordinator.wait(timeout: 5) == nil { coordinator.kill9() }
        }
        let started = Date()
        let r = try agentflow(["submit", wf, "--cluster", cluster, "--wait", "--json", "--planner", "seq:1"], timeout: 150)
        let job = try #require(try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any],
                               "stdout: \(r.out)\nstderr: \(r.err)\n\(coordinator.output)\n\(worker.output)")
        // The model passes each of these nearly always; the budget buys several samples anyway.
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(worker.output)")
        // The deadline is kept: the job ends by its deadline (plus the time to report).
        #expect(Date().timeIntervalSince(started) < 120 + 15)
        // The outputs are real code: run them ourselves against the verifiers, side by side.
        let subtasks = job["subtasks"] as? [[String: Any]] ?? []
        let outputs = Dictionary(uniqueKeysWithValues: subtasks.compactMap { s in
            (s["output"] as? String).map { (s["id"] as! String, $0) }
        })
        #expect(outputs.keys.sorted() == ["add", "square"], "\(job)")
        if outputs.count == 2 {
            let check = dir.appendingPathComponent("check")
            try FileManager.default.createDirectory(at: check, withIntermediateDirectories: true)
            try outputs["add"]!.write(to: check.appendingPathComponent("add.py"), atomically: true, encoding: .utf8)
            try outputs["square"]!.write(to: check.appendingPathComponent("solution.py"), atomically: true, encoding: .utf8)
            let run = try runTool(
                "/usr/bin/env", ["python3", "-c", "from solution import square\nassert square(7) == 49\nassert square(0.5) == 0.25"], in: check)
            #expect(run.code == 0, "\(outputs)\n\(run.output)")
        }
        for s in subtasks {
            // Tokens reported per role reach the report; the agent role always runs.
            let roles = s["roles"] as? [[String: Any]] ?? []
            #expect(roles.contains { $0["role"] as? String == "agent" && ($0["tokens"] as? Int ?? 0) > 0 }, "\(s)")
            #expect((s["note"] as? String ?? "").contains("verified"), "\(s)")
        }
        let check = try LedgerCheck(database: db, job: job["id"] as! String)
        #expect(check.consistent, "\(check)")
        #expect(check.ledgerTokens > 0, "the real model was called and its tokens charged")
        #expect(check.doubleSettled == 0)
        // Tokens come per role from the real server through the worker.
        let c = try SQLiteHandle(db)
        let agentTokens = try c.double("SELECT SUM(tokens_in + tokens_out) FROM ledger WHERE role = 'agent' AND model = 'smollm2-135m'")
        #expect(agentTokens > 0)
        #expect(worker.output.contains("started"))
        let maxAttemptTokens = try c.double("SELECT MAX(tokens_in + tokens_out) FROM attempts")
        #expect(maxAttemptTokens <= 2000, "an attempt went past its cap")

        // With the coordinator gone, the job's attempts and its HTML report come from the
        // database (read-only), as after `make demo`.
        worker.terminate()
        coordinator.terminate()
        #expect(coordinator.wait(timeout: 15) == 0, "\(coordinator.output)")
        let id = job["id"] as! String
        let offline = try agentflow(["attempts", id, "--json", "--cluster", cluster], timeout: 30)
        #expect(offline.code == 0 && offline.err.contains("reading the database"), "\(offline.err)")
        let rows = (try? JSONSerialization.jsonObject(with: Data(offline.out.utf8)) as? [[String: Any]]) ?? []
        #expect(rows.count == subtasks.reduce(0) { $0 + (($1["attempts"] as? Int) ?? 0) }, "\(offline.out)")
        let html = dir.appendingPathComponent("report.html").path
        let report = try agentflow(["report", id, "--html", html, "--cluster", cluster], timeout: 30)
        #expect(report.code == 0 && ((try? String(contentsOfFile: html, encoding: .utf8)) ?? "").contains(id), "\(report.err)")
    }
}
