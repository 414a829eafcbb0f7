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
        try """
        name: real-e2e
        models: [smollm2-135m]
        budget: {tokens: 6000, usd: 0.01}
        deadline: 90s
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns the sum a + b."
            verify: {python: "from solution import add\\nassert add(2, 3) == 5"}
            maxTokens: 2500
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
        let state = job["state"] as? String ?? ""
        #expect(["succeeded", "deadline_exceeded", "budget_exhausted", "infeasible"].contains(state), "\(job)")
        // The deadline is kept: the job ends by its deadline (plus the time to report).
        #expect(Date().timeIntervalSince(started) < 90 + 15)
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
        #expect(maxAttemptTokens <= 2500, "an attempt went past its cap")
    }
}
