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
        // Two dependent helpers: average's workspace holds total.py, the output of total.
        try """
        name: real-e2e
        models: [smollm2-135m]
        budget: {tokens: 12000, usd: 0.01}
        deadline: 120s
        scaffold: {maxTurns: 3}
        subtasks:
          - id: total
            prompt: "Write a Python function total(numbers) that returns the sum of a list of numbers."
            verify: {python: "from solution import total\\nassert total([1, 2, 3]) == 6\\nassert total([]) == 0"}
            maxTokens: 2000
          - id: average
            needs: [total]
            prompt: "Write a Python function average(numbers) that returns the mean of a non-empty list of numbers."
            verify: {python: "from solution import average\\nassert average([1, 2, 3]) == 2\\nassert average([4]) == 4"}
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
        // The model passes each of these about nine times in ten; the budget buys several samples.
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(worker.output)")
        // The deadline is kept: the job ends by its deadline (plus the time to report).
        #expect(Date().timeIntervalSince(started) < 120 + 15)
        // The outputs are real code: run them ourselves against the verifiers, side by side.
        let subtasks = job["subtasks"] as? [[String: Any]] ?? []
        let outputs = Dictionary(uniqueKeysWithValues: subtasks.compactMap { s in
            (s["output"] as? String).map { (s["id"] as! String, $0) }
        })
        #expect(outputs.keys.sorted() == ["average", "total"], "\(job)")
        if outputs.count == 2 {
            let check = dir.appendingPathComponent("check")
            try FileManager.default.createDirectory(at: check, withIntermediateDirectories: true)
            try outputs["total"]!.write(to: check.appendingPathComponent("total.py"), atomically: true, encoding: .utf8)
            try outputs["average"]!.write(to: check.appendingPathComponent("solution.py"), atomically: true, encoding: .utf8)
            let run = try runProcess(
                "/usr/bin/env", ["python3", "-c", "from solution import average\nassert average([2, 4, 9]) == 5"], in: check)
            #expect(run.status == 0, "\(outputs)\n\(run.output)")
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
    }
}

/// Runs a short command in `directory`; its exit status and output (stdout and stderr together).
private func runProcess(_ executable: String, _ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.currentDirectoryURL = directory
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
