import Foundation
import Testing

/// Preemption through real processes: a coordinator with `scheduling.preemption: true`, one sim
/// worker with 2 slots (time scale 1: simulated seconds are real seconds), real ZeroMQ and SQLite.
@Suite(.serialized) struct PreemptionTests {
    static func oneStep(_ name: String, seconds: Double, tokens: Int, deadline: String, budget: Int) -> String {
        """
        name: \(name)
        models: [smollm2-135m]
        budget: {tokens: \(budget)}
        deadline: \(deadline)
        subtasks:
          - id: work
            prompt: do the work
            verify: {command: "true"}
            estimates:
              smollm2-135m: {success: 1.0, tokens: \(tokens), seconds: \(seconds)}

        """
    }

    func json(_ r: (code: Int32, out: String, err: String)) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(r.out.utf8))
    }

    /// Two priority-0 jobs hold both slots with ~10 s attempts (preemptible for their first 5 s);
    /// a priority-1 job whose 1 s attempt has a 5 s deadline arrives. The younger long attempt is
    /// cancelled for it: it ends `cancelled` with "preempted for job …", is charged exactly the
    /// tokens it used (fewer than a full run, and what its ledger lines say), and its subtask runs
    /// again and passes. The urgent job meets its deadline; spent ≤ budget for every job. With
    /// `preemption: false` the urgent job ends `deadline_exceeded`. About 13 s.
    @Test func aJobAtRiskTakesTheSlotOfALowerPriorityAttempt() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 1)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.clusterFile))
        handle.seekToEndOfFile()
        handle.write(Data("scheduling: {policy: fleet, preemption: true}\n".utf8))
        try handle.close()
        try cluster.startAll()
        defer { cluster.stop() }
        let long = cluster.dir.appendingPathComponent("long.yaml").path
        try Self.oneStep("long", seconds: 10, tokens: 1_000, deadline: "10m", budget: 20_000).write(toFile: long, atomically: true, encoding: .utf8)
        let urgent = cluster.dir.appendingPathComponent("urgent.yaml").path
        try Self.oneStep("urgent", seconds: 1, tokens: 200, deadline: "5s", budget: 5_000).write(toFile: urgent, atomically: true, encoding: .utf8)

        var longIDs: [String] = []
        for seed in 1...2 {
            let r = try cluster.cli(["submit", long, "--planner", "seq:1", "--seed", "\(seed)"])
            #expect(r.code == 0, "\(r.err)")
            longIDs.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try waitUntil(timeout: 20, "both long jobs running") {
            try longIDs.allSatisfy { (try cluster.status($0))?["state"] as? String == "running" }
        }
        let r = try cluster.cli(["submit", urgent, "--planner", "seq:1", "--priority", "1", "--wait", "--json", "--seed", "9"], timeout: 30)
        let job = try #require(json(r) as? [String: Any], "\(r.out)\(r.err)\n\(cluster.logs)")
        let urgentID = job["id"] as? String ?? ""
        #expect(job["state"] as? String == "succeeded", "\(job["state"] ?? ""): \(job["reason"] ?? "")\n\(cluster.logs)")

        // Both long jobs finish; exactly one lost an attempt to preemption.
        try waitUntil(timeout: 40, "the long jobs ended") {
            try longIDs.allSatisfy { ["succeeded", "failed"].contains((try cluster.status($0))?["state"] as? String ?? "") }
        }
        var preempted: [[String: Any]] = []
        for id in longIDs {
            #expect((try cluster.status(id))?["state"] as? String == "succeeded")
            let attempts = try #require(json(try cluster.cli(["attempts", id, "--json"])) as? [[String: Any]])
            let mine = attempts.filter { ($0["detail"] as? String ?? "").hasPrefix("preempted for job \(urgentID)") }
            preempted += mine
            if !mine.isEmpty {
                // Cancelled, then its subtask ran again and passed.
                #expect(mine.count == 1 && mine[0]["state"] as? String == "cancelled", "\(attempts)")
                #expect(attempts.count == 2 && attempts.contains { $0["state"] as? String == "succeeded" && $0["n"] as? Int == 2 }, "\(attempts)")
                // Charged what it used: some tokens, fewer than the run that passed, and its ledger lines add up to them.
                let used = mine[0]["tokens"] as? Int ?? -1
                let full = attempts.first { $0["n"] as? Int == 2 }?["tokens"] as? Int ?? 0
                #expect(used > 0 && used < full, "preempted attempt charged \(used) tokens, a full run \(full)")
                let ledger = try #require(json(try cluster.cli(["ledger", id, "--json"])) as? [[String: Any]])
                let lines = ledger.filter { $0["n"] as? Int == 1 }
                #expect(lines.allSatisfy { $0["kind"] as? String == "charge" }, "\(lines)")
                #expect(lines.reduce(0) { $0 + ($1["tokensIn"] as? Int ?? 0) + ($1["tokensOut"] as? Int ?? 0) } == used)
            }
        }
        #expect(preempted.count == 1, "\(cluster.logs)")
        for id in longIDs + [urgentID] {
            let check = try LedgerCheck(database: cluster.database, job: id)
            #expect(check.consistent, "\(id): \(check)")
            #expect(check.lostAttempts == 0 && check.doubleSettled == 0)
        }
    }
}
