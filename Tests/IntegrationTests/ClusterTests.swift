import Foundation
import Wire
import Testing

/// Real processes: one coordinator and three workers (`agentflow coordinator` / `agentflow
/// worker`) on loopback ZeroMQ, a real SQLite file, the CLI as a client.
@Suite(.serialized) struct ClusterTests {
    static let threeWorkers: [(name: String, model: String, slots: Int)] = [
        ("w0", "smollm2-135m", 2), ("w1", "smollm2-135m", 2), ("w2", "gemma3-270m", 2),
    ]

    @Test func badWorkflowExitsTwoAndNamesTheProblem() throws {
        let dir = NSTemporaryDirectory() + "af-bad-\(UUID().uuidString).yaml"
        try "name: bad\nsubtasks:\n  - {id: a, prompt: x, needs: [b]}\n  - {id: b, prompt: x, needs: [a]}\n".write(toFile: dir, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v = try agentflow(["validate", dir])
        #expect(v.code == 2)
        #expect(v.err.contains(dir) && v.err.contains("cycle"), "\(v.err)")
        let r = try agentflow(["run", dir, "--planner", "seq:1"])
        #expect(r.code == 2)
        #expect(r.err.contains("cycle"))
        let flags = try agentflow(["run", "workflows/chain.yaml", "--deadline", "soon"])
        #expect(flags.code == 2)
        #expect(flags.err.contains("--deadline"))
        let missing = try agentflow(["validate", "workflows/does-not-exist.yaml"])
        #expect(missing.code == 2)
        #expect(missing.err.contains("does-not-exist.yaml"))
    }

    @Test func unreachableCoordinatorExitsThree() throws {
        let r = try agentflow(["jobs", "--coordinator", "tcp://127.0.0.1:\(freePort())"], timeout: 30)
        #expect(r.code == 3, "\(r.err)")
        #expect(r.err.contains("cannot reach the coordinator"))
    }

    @Test func embeddedRunPrintsTheJobObject() throws {
        let db = NSTemporaryDirectory() + "af-run-\(UUID().uuidString).db"
        let r = try agentflow(["run", "workflows/diamond.yaml", "--json", "--planner", "seq:1", "--seed", "3", "--database", db])
        let job = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "stdout: \(r.out)\nstderr: \(r.err)")
        for key in ["id", "state", "reason", "budget", "deadline", "startedAt", "endedAt", "subtasks"] { #expect(job[key] != nil, "missing \(key)") }
        let budget = try #require(job["budget"] as? [String: Any])
        for key in ["limitTokens", "limitUSD", "spentTokens", "spentUSD", "reservedTokens"] { #expect(budget.keys.contains(key), "missing budget.\(key)") }
        #expect((budget["spentTokens"] as! Int) <= (budget["limitTokens"] as! Int))
        let subtasks = try #require(job["subtasks"] as? [[String: Any]])
        #expect(subtasks.count == 4)
        for s in subtasks { for key in ["id", "state", "model", "attempts", "tokens", "usd"] { #expect(s.keys.contains(key)) } }
        #expect((job["state"] as? String == "succeeded") == (r.code == 0))
        let check = try LedgerCheck(database: db, job: job["id"] as! String)
        #expect(check.consistent)
    }

    @Test func examplesRunAcrossProcesses() throws {
        let cluster = try TestCluster(workers: Self.threeWorkers, timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        let expected: [String: Set<String>] = [
            "chain": ["succeeded"], "diamond": ["succeeded"], "fan-out": ["succeeded"], "big-dag": ["succeeded"],
            "string-helpers": ["succeeded"], "infeasible": ["budget_exhausted"],
        ]
        for (name, states) in expected.sorted(by: { $0.key < $1.key }) {
            let r = try cluster.cli(["submit", "workflows/\(name).yaml", "--wait", "--json", "--planner", "seq:2", "--seed", "11",
                                     "--budget-tokens", name == "infeasible" ? "1500" : "1000000"])
            let job = try #require(try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any],
                                   "\(name): \(r.out) \(r.err)\n\(cluster.logs)")
            let state = job["state"] as? String ?? ""
            #expect(states.contains(state), "\(name) ended \(state): \(job["reason"] ?? "")")
            #expect(r.code == (state == "succeeded" ? 0 : 1))
            let check = try LedgerCheck(database: cluster.database, job: job["id"] as! String)
            #expect(check.consistent, "\(name): \(check)")
            #expect(check.doubleSettled == 0)
        }
        let w = try cluster.aliveWorkers()
        #expect(w.count == 3)
    }

    /// MCPP is the default planner of a live job; `--min-success` ends a hopeless job early.
    @Test func mcppIsTheDefaultLivePlanner() throws {
        let cluster = try TestCluster(workers: Self.threeWorkers, timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        let r = try cluster.cli(["submit", "workflows/big-dag.yaml", "--wait", "--json", "--seed", "4"])
        let job = try #require(try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.out)\(r.err)")
        #expect(job["planner"] as? String == "mcpp")
        #expect(job["state"] as? String == "succeeded", "\(job["reason"] ?? "")")
        let check = try LedgerCheck(database: cluster.database, job: job["id"] as! String)
        #expect(check.consistent, "\(check)")
        let hopeless = try cluster.cli(["submit", "workflows/infeasible.yaml", "--wait", "--json", "--min-success", "0.5"])
        let h = try #require(try? JSONSerialization.jsonObject(with: Data(hopeless.out.utf8)) as? [String: Any], "\(hopeless.out)\(hopeless.err)")
        #expect(h["state"] as? String == "infeasible")
        #expect((h["reason"] as? String ?? "").contains("below --min-success"))
        #expect(hopeless.code == 1)
    }

    /// kill -9 a worker in the middle of an attempt: the coordinator notices within
    /// liveness × heartbeat, charges the lost attempt in full, and re-plans it elsewhere.
    @Test func workerKilledMidAttempt() throws {
        let cluster = try TestCluster(workers: Self.threeWorkers, timeScale: 1)
        try cluster.startAll()
        defer { cluster.stop() }
        let wf = cluster.dir.appendingPathComponent("slow.yaml").path
        try """
        name: slow
        models: [smollm2-135m]
        budget: {tokens: 100000}
        deadline: 2m
        subtasks:
          - id: long_task
            prompt: "Takes a few seconds."
            estimates:
              smollm2-135m: {success: 1.0, tokens: 500, seconds: 4}
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        let submit = try cluster.cli(["submit", wf, "--planner", "seq:1", "--seed", "5"])
        #expect(submit.code == 0, "\(submit.err)")
        let job = submit.out.trimmingCharacters(in: .whitespacesAndNewlines)
        var victim = ""
        try waitUntil(timeout: 15, "the attempt to be dispatched") {
            victim = try cluster.aliveWorkers().first { ($0["busy"] as? Int ?? 0) > 0 }?["name"] as? String ?? ""
            return !victim.isEmpty
        }
        Thread.sleep(forTimeInterval: 0.5)
        let killedAt = Date().timeIntervalSince1970
        cluster.workers[victim]!.kill9()
        var final: [String: Any] = [:]
        try waitUntil(timeout: 60, "the job to end") {
            final = try cluster.status(job) ?? [:]
            return ["succeeded", "failed", "budget_exhausted", "deadline_exceeded"].contains(final["state"] as? String ?? "")
        }
        #expect(final["state"] as? String == "succeeded", "\(final)\n\(cluster.logs)")
        let sub = (final["subtasks"] as! [[String: Any]])[0]
        #expect((sub["attempts"] as! Int) >= 2)
        let check = try LedgerCheck(database: cluster.database, job: job)
        #expect(check.lostAttempts == 1)
        #expect(check.consistent, "\(check)")
        #expect(check.doubleSettled == 0)
        // Detected within liveness × heartbeat (3 s), with slack for a loaded machine.
        let c = try SQLiteHandle(cluster.database)
        let lostAt = try c.double("SELECT ended_at FROM attempts WHERE job = '\(job)' AND state = 'lost'")
        #expect(lostAt - killedAt <= 3 + 2.0, "detected after \(lostAt - killedAt) s")
        #expect(lostAt - killedAt >= 2.0)
        // The lost reservation was charged in full.
        let reserved = try c.double("SELECT reserved_tokens FROM attempts WHERE job = '\(job)' AND state = 'lost'")
        let charged = try c.double("SELECT tokens_in + tokens_out FROM ledger WHERE job = '\(job)' AND kind = 'lost'")
        #expect(reserved == charged && charged > 0)
    }

    /// kill -9 the coordinator mid-job and start it again: the job resumes from SQLite,
    /// workers re-register with what they run, no attempt runs twice, the ledger adds up.
    @Test func coordinatorKilledAndRestarted() throws {
        let cluster = try TestCluster(workers: Self.threeWorkers, timeScale: 1)
        try cluster.startAll()
        defer { cluster.stop() }
        let wf = cluster.dir.appendingPathComponent("chain.yaml").path
        try """
        name: restart-chain
        budget: {tokens: 200000, usd: 1}
        deadline: 3m
        subtasks:
          - {id: a, prompt: "a", estimates: {smollm2-135m: {success: 1, tokens: 300, seconds: 1.5}, gemma3-270m: {success: 1, tokens: 300, seconds: 1.5}}}
          - {id: b, needs: [a], prompt: "b", estimates: {smollm2-135m: {success: 1, tokens: 300, seconds: 1.5}, gemma3-270m: {success: 1, tokens: 300, seconds: 1.5}}}
          - {id: c, needs: [b], prompt: "c", estimates: {smollm2-135m: {success: 1, tokens: 300, seconds: 1.5}, gemma3-270m: {success: 1, tokens: 300, seconds: 1.5}}}
          - {id: d, needs: [b], prompt: "d", estimates: {smollm2-135m: {success: 1, tokens: 300, seconds: 1.5}, gemma3-270m: {success: 1, tokens: 300, seconds: 1.5}}}
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        let submit = try cluster.cli(["submit", wf, "--planner", "seq:2", "--seed", "9"])
        #expect(submit.code == 0, "\(submit.err)")
        let job = submit.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitUntil(timeout: 20, "subtask b to be running") {
            let s = try cluster.status(job)
            return (s?["subtasks"] as? [[String: Any]])?.first { $0["id"] as? String == "b" }?["state"] as? String == "running"
        }
        Thread.sleep(forTimeInterval: 0.3)
        cluster.coordinator!.kill9()
        // Attempts finish while the coordinator is down; workers hold their results.
        Thread.sleep(forTimeInterval: 2)
        try cluster.startCoordinator()
        var final: [String: Any] = [:]
        try waitUntil(timeout: 90, "the job to end after the restart") {
            final = (try? cluster.status(job)) ?? [:]
            return ["succeeded", "failed", "budget_exhausted", "deadline_exceeded", "cancelled"].contains(final["state"] as? String ?? "")
        }
        #expect(final["state"] as? String == "succeeded", "\(final)\n\(cluster.logs)")
        let check = try LedgerCheck(database: cluster.database, job: job)
        #expect(check.consistent, "\(check)")
        #expect(check.doubleSettled == 0)
        // No attempt id was started twice on any worker.
        var starts: [String] = []
        for name in cluster.workerNames {
            // Worker log lines: "… info worker: attempt started attempt=JOB/SUBTASK#N cap=… job=… …".
            starts += cluster.workers[name]!.output.split(separator: "\n").filter { $0.contains("attempt started") }
                .compactMap { $0.split(separator: " ").first { $0.hasPrefix("attempt=") }.map(String.init) }
        }
        #expect(!starts.isEmpty, "no 'attempt started' lines in the worker logs")
        #expect(Set(starts).count == starts.count, "\(starts)")
        let budget = final["budget"] as! [String: Any]
        #expect((budget["spentTokens"] as! Int) <= (budget["limitTokens"] as! Int))
    }

    /// The deadline ends the job and stops its attempts; nothing is spent past the budget.
    @Test func deadlineCancelsInFlightAttempts() throws {
        let cluster = try TestCluster(workers: Self.threeWorkers, timeScale: 1)
        try cluster.startAll()
        defer { cluster.stop() }
        let wf = cluster.dir.appendingPathComponent("late.yaml").path
        try """
        name: late
        models: [gemma3-270m]
        budget: {tokens: 50000}
        deadline: 2s
        subtasks:
          - {id: slow, prompt: "slow", estimates: {gemma3-270m: {success: 1, tokens: 1000, seconds: 30}}}
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        let started = Date()
        let r = try cluster.cli(["submit", wf, "--wait", "--json", "--planner", "seq:2"], timeout: 60)
        #expect(r.code == 1)
        let job = try #require(try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.out)\(r.err)")
        #expect(job["state"] as? String == "deadline_exceeded")
        #expect(Date().timeIntervalSince(started) < 15)
        let check = try LedgerCheck(database: cluster.database, job: job["id"] as! String)
        #expect(check.consistent, "\(check)")
        // Stopped after ~2 of 30 simulated seconds: far less than a full attempt was charged.
        #expect(check.ledgerTokens < 2 * 1000 / 4, "\(check)")
    }

    /// Malformed and hostile frames on both sockets are dropped and counted; the coordinator keeps serving.
    @Test func hostileMessagesDoNotCrashTheCoordinator() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 1)], timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        // An unregistered peer's heartbeat is answered with `reregister`; a `jobs` request with the jobs.
        let workerSide = try sendGarbage(to: "tcp://127.0.0.1:\(cluster.workersPort)", last: try BinaryCodec.encode(WorkerMessage.heartbeat)) {
            if case .reregister? = try? BinaryCodec.decode(CoordinatorMessage.self, from: $0) { return true }
            return false
        }
        #expect(workerSide, "the coordinator never answered on the worker socket after the garbage")
        let clientSide = try sendGarbage(to: "tcp://127.0.0.1:\(cluster.clientsPort)", last: try BinaryCodec.encode(ClientRequest.jobs)) {
            if case .jobs? = try? BinaryCodec.decode(ClientReply.self, from: $0) { return true }
            return false
        }
        #expect(clientSide, "the coordinator never answered on the client socket after the garbage")
        let r = try cluster.cli(["submit", "workflows/chain.yaml", "--wait", "--json", "--planner", "seq:1"])
        #expect(r.code == 0 || r.code == 1, "\(r.err)")
        #expect(cluster.coordinator!.process.isRunning)
        #expect(try cluster.aliveWorkers().count == 1)
    }
}
