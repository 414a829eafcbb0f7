import Foundation
import Store
import Testing

/// A standby coordinator on PostgreSQL (issue 21 item 2), with real processes: two coordinators
/// with HTTP on one database, one leading. The standby serves reads (HTTP and ZeroMQ) from the
/// database and answers writes 421 Misdirected Request (a redirect by status, never a forward:
/// the client sends the write to the leader); the CLI given both endpoints lands its write on
/// the leader; `status --database postgres://…` reads the database with no coordinator asked;
/// when the leader stops (SIGTERM gives the lease up) the standby takes writes at once.
@Suite struct StandbyCoordinatorTests {
    @Test(.timeLimit(.minutes(3))) func aStandbyServesReadsAndSendsWritesToTheLeader() throws {
        let url = try PostgresTestCluster.get().database()
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-standby-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let workers = (0..<2).map { _ in "tcp://127.0.0.1:\(freePort())" }
        let clients = (0..<2).map { _ in "tcp://127.0.0.1:\(freePort())" }
        let https = (0..<2).map { _ in "127.0.0.1:\(freePort())" }
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: \(workers[0])
          clients: \(clients[0])
          database: \(url)
          lease: 5s
        models:
          - {name: m, price: {input: 1, output: 1}, context: 8192}
        workers:
          - {name: w, gpus: [0], model: m, slots: 2, backend: {kind: sim, timeScale: 0.01, seed: 1}}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let workflow = dir.appendingPathComponent("one.yaml").path
        try """
        name: one
        budget: {tokens: 10000}
        deadline: 5m
        subtasks:
          - {id: a, prompt: x, estimates: {m: {success: 1, tokens: 50, seconds: 1}}}
        """.write(toFile: workflow, atomically: true, encoding: .utf8)
        func coordinator(_ i: Int) throws -> Proc {
            try Proc(["coordinator", "--cluster", clusterFile, "--bind-workers", workers[i], "--coordinator", clients[i], "--http", https[i]],
                     log: dir.appendingPathComponent("coordinator\(i).log").path)
        }
        let db = try PostgresConnection(url: url, timeout: .seconds(10))
        let leader = try coordinator(0)
        var standby: Proc?
        let worker = try Proc(["worker", "--name", "w", "--cluster", clusterFile, "--coordinator", workers.joined(separator: ",")],
                              log: dir.appendingPathComponent("worker.log").path)
        defer {
            for p in [worker, leader, standby].compactMap({ $0 }) {
                p.terminate()
                if p.wait(timeout: 10) == nil { p.kill9() }
            }
        }
        do {
            try waitUntil(timeout: 60, "the first coordinator to lead") { try CoordinatorFailoverTests.leader(db)?.pid == leader.pid }
            standby = try coordinator(1)
            let leaderURL = "http://\(https[0])", standbyURL = "http://\(https[1])"
            try waitUntil(timeout: 60, "the standby's HTTP server") { ((try? http("GET", standbyURL + "/api/v1/openapi.yaml").status) ?? 0) == 200 }

            // Writes: the leader takes them, the standby answers 421 and names nothing it cannot.
            let posted = try http("POST", leaderURL + "/api/v1/jobs", body: try String(contentsOfFile: workflow, encoding: .utf8))
            #expect(posted.status == 201, "\(posted.body)")
            let id = try #require(posted.json?["id"] as? String)
            let refused = try http("POST", standbyURL + "/api/v1/jobs", body: try String(contentsOfFile: workflow, encoding: .utf8))
            #expect(refused.status == 421)
            #expect(refused.body.contains("stands by"), "\(refused.body)")
            #expect(try http("POST", standbyURL + "/api/v1/jobs/\(id)/cancel").status == 421)
            #expect(try db.query("SELECT COUNT(*) FROM jobs", timeout: .seconds(10)).first?.int(0) == 1, "the standby wrote nothing")

            // Reads: the standby answers them from the database.
            let read = try http("GET", standbyURL + "/api/v1/jobs/\(id)")
            #expect(read.status == 200 && read.json?["id"] as? String == id, "\(read.body)")
            #expect((try http("GET", standbyURL + "/api/v1/jobs").json?["total"] as? Int) == 1)
            let viaStandby = try agentflow(["status", id, "--json", "--cluster", clusterFile, "--coordinator", clients[1]])
            #expect(viaStandby.code == 0 && viaStandby.out.contains(id), "\(viaStandby)")

            // The CLI with both endpoints, the standby's first: its submission lands on the leader.
            let submitted = try agentflow(["submit", workflow, "--cluster", clusterFile, "--coordinator", clients.reversed().joined(separator: ",")])
            #expect(submitted.code == 0, "\(submitted)")
            let second = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try db.query("SELECT COUNT(*) FROM jobs WHERE id = $1", second, timeout: .seconds(10)).first?.int(0) == 1)
            // Only the standby: the write is refused, not lost in silence.
            let onlyStandby = try agentflow(["submit", workflow, "--cluster", clusterFile, "--coordinator", clients[1]])
            #expect(onlyStandby.code != 0 && onlyStandby.err.contains("stands by"), "\(onlyStandby)")

            // status --database reads PostgreSQL directly (no coordinator asked).
            try waitUntil(timeout: 60, "the first job to end") {
                try db.query("SELECT state FROM jobs WHERE id = $1", id, timeout: .seconds(10)).first?.string(0) == "succeeded"
            }
            let direct = try agentflow(["status", id, "--json", "--database", url])
            #expect(direct.code == 0, "\(direct)")
            let report = try JSONSerialization.jsonObject(with: Data(direct.out.utf8)) as? [String: Any]
            #expect(report?["id"] as? String == id && report?["state"] as? String == "succeeded", "\(direct.out)")
            let listed = try agentflow(["jobs", "--json", "--database", url])
            #expect(listed.code == 0 && listed.out.contains(second), "\(listed)")
            let missing = try agentflow(["status", "--database", url.replacingOccurrences(of: "/t_", with: "/no_such_")])
            #expect(missing.code == 3 || missing.code == 2, "\(missing)")
            #expect(!missing.err.isEmpty && !missing.err.contains("Fatal error"), "\(missing)")

            // The leader stops gracefully: it gives the lease up and the standby takes writes.
            leader.terminate()
            #expect(leader.wait(timeout: 20) == 0)
            try waitUntil(timeout: 20, "the standby to lead") { try CoordinatorFailoverTests.leader(db)?.pid == standby!.pid }
            let after = try http("POST", standbyURL + "/api/v1/jobs", body: try String(contentsOfFile: workflow, encoding: .utf8))
            #expect(after.status == 201, "\(after.body)")
        } catch {
            let logs = (0..<2).map { (try? String(contentsOfFile: dir.appendingPathComponent("coordinator\($0).log").path, encoding: .utf8)) ?? "" }
            Issue.record("\(error)\n== coordinator0\n\(logs[0].suffix(3000))\n== coordinator1\n\(logs[1].suffix(3000))")
            throw error
        }
    }
}
