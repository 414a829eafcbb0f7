import Foundation
import Testing

/// Keys and tokens that can do only what they are for (issue 18 item 3), on real processes: a
/// coordinator with CURVE client keys per role and tenant and HTTP tokens per role and tenant,
/// a worker registering with its node key, the CLI as each key.
@Suite(.serialized) struct TenantAccessTests {
    static let adminToken = "admin-token-0123456789abcdef"
    static let readToken = "read-token-0123456789abcdef"
    static let teamAToken = "team-a-submit-0123456789abcdef"
    static let teamBReadToken = "team-b-read-0123456789abcdef"

    /// A job that runs long enough to be cancelled.
    static let slow = "name: slow\nbudget: {tokens: 100000}\ndeadline: 5m\nsubtasks:\n  - {id: a, prompt: x, estimates: {smollm2-135m: {success: 0, tokens: 100, seconds: 600}}}\n"

    @Test func eachKeyAndTokenDoesOnlyWhatItIsFor() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-access-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try keyPair(dir, "server.key"), node = try keyPair(dir, "node.key"), admin = try keyPair(dir, "admin.key")
        let teamA = try keyPair(dir, "a.key"), teamB = try keyPair(dir, "b.key"), reader = try keyPair(dir, "read.key")
        let tokens = dir.appendingPathComponent("tokens").path
        try """
            admin \(Self.adminToken)
            read \(Self.readToken)
            submit \(Self.teamAToken) tenant=team-a
            read \(Self.teamBReadToken) tenant=team-b
            """.write(toFile: tokens, atomically: true, encoding: .utf8)
        let (w, c, h) = (freePort(), freePort(), freePort())
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(w)
          clients: tcp://127.0.0.1:\(c)
          database: \(dir.appendingPathComponent("db.sqlite").path)
          http: 127.0.0.1:\(h)
          httpTokens: \(tokens)
          curve:
            serverKey: "\(server)"
            serverKeyFile: \(dir.appendingPathComponent("server.key").path)
            workerKeys: {"w-*": "\(node)"}
            clientKeys:
              "\(admin)": admin
              "\(reader)": read
              "\(teamA)": {role: submit, tenant: team-a}
              "\(teamB)": {role: submit, tenant: team-b}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}}
        workers:
          - {name: w-0, model: smollm2-135m, slots: 4, backend: {kind: sim, timeScale: 0.01}}
          - {name: w-1, model: smollm2-135m, slots: 1, backend: {kind: sim, timeScale: 0.01}}
        tenants:
          - {name: team-a}
          - {name: team-b}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let coordinator = try Proc(["coordinator", "--cluster", clusterFile], log: dir.appendingPathComponent("c.log").path)
        let worker = try Proc(["worker", "--name", "w-0", "--cluster", clusterFile, "--key", dir.appendingPathComponent("node.key").path],
                              log: dir.appendingPathComponent("w-0.log").path)
        // A client key trying to register a worker, even one whose name the node key owns.
        let impostor = try Proc(["worker", "--name", "w-1", "--cluster", clusterFile, "--key", dir.appendingPathComponent("a.key").path],
                                log: dir.appendingPathComponent("w-1.log").path)
        defer {
            for p in [worker, impostor, coordinator] { p.terminate() }
            for p in [worker, impostor, coordinator] where p.wait(timeout: 5) == nil { p.kill9() }
        }
        func cli(_ key: String, _ args: [String]) throws -> (code: Int32, out: String, err: String) {
            try agentflow(args + ["--cluster", clusterFile, "--key", dir.appendingPathComponent(key).path], timeout: 60)
        }
        func json(_ r: (code: Int32, out: String, err: String)) -> Any? { try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) }
        try waitUntil(timeout: 20, "w-0 registered") {
            ((json(try cli("admin.key", ["workers", "--json"])) as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "w-0" && $0["state"] as? String == "alive" }
        }
        let workflow = dir.appendingPathComponent("slow.yaml").path
        try Self.slow.write(toFile: workflow, atomically: true, encoding: .utf8)

        // The node's key registers its workers and does nothing else.
        for args in [["status"], ["workers"], ["submit", workflow], ["drain", "w-0"], ["tenants"]] {
            let r = try cli("node.key", args)
            #expect(r.code == 4 && r.err.contains("worker key"), "\(args) with the node key: \(r.code) \(r.err)")
        }
        // A client key registers no worker.
        try waitUntil(timeout: 15, "the impostor was told why") { impostor.output.contains("client keys cannot register workers") }
        #expect(!((json(try cli("admin.key", ["workers", "--json"])) as? [[String: Any]]) ?? []).contains { $0["name"] as? String == "w-1" })

        // A tenant's key submits as its tenant, and as no other.
        let a1 = try cli("a.key", ["submit", workflow, "--planner", "seq:1"])
        #expect(a1.code == 0, "\(a1.err)")
        let jobA = a1.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let asB = try cli("a.key", ["submit", workflow, "--tenant", "team-b"])
        #expect(asB.code == 4 && asB.err.contains("tenant team-a") && asB.err.contains("team-b"), "\(asB.code) \(asB.err)")
        let b1 = try cli("b.key", ["submit", workflow, "--planner", "seq:1"])
        #expect(b1.code == 0, "\(b1.err)")
        let jobB = b1.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((json(try cli("admin.key", ["status", jobA, "--json"])) as? [String: Any])?["tenant"] as? String == "team-a")
        #expect((json(try cli("admin.key", ["status", jobB, "--json"])) as? [String: Any])?["tenant"] as? String == "team-b")
        let byAdmin = try cli("admin.key", ["submit", workflow, "--tenant", "team-b", "--planner", "seq:1"])
        #expect(byAdmin.code == 0, "an operator's key may submit for any tenant: \(byAdmin.err)")

        // Tenant A's key cannot read or cancel tenant B's job; it sees its own only.
        for args in [["status", jobB], ["attempts", jobB], ["ledger", jobB], ["cancel", jobB], ["watch", jobB]] {
            let r = try cli("a.key", args)
            #expect(r.code == 4 && r.err.contains("another tenant"), "\(args): \(r.code) \(r.err)")
        }
        #expect((json(try cli("admin.key", ["status", jobB, "--json"])) as? [String: Any])?["state"] as? String != "cancelled")
        let listed = (json(try cli("a.key", ["jobs", "--json"])) as? [[String: Any]]) ?? []
        #expect(listed.map { $0["id"] as? String } == [jobA], "\(listed.map { $0["id"] ?? "" })")
        let rows = (json(try cli("a.key", ["tenants", "--json"])) as? [[String: Any]]) ?? []
        #expect(rows.map { $0["name"] as? String } == ["team-a"], "\(rows)")
        #expect(((json(try cli("admin.key", ["tenants", "--json"])) as? [[String: Any]]) ?? []).count == 2)
        #expect(try cli("a.key", ["status", jobA]).code == 0)
        // A read key reads everything and changes nothing.
        let readCancel = try cli("read.key", ["cancel", jobA])
        #expect(readCancel.code == 4 && readCancel.err.contains("needs submit"), "\(readCancel.err)")
        #expect(((json(try cli("read.key", ["jobs", "--json"])) as? [[String: Any]]) ?? []).count == 3)

        // Over HTTP the same, with tokens.
        let base = "http://127.0.0.1:\(h)"
        let bOverHTTP = try http("GET", base + "/api/v1/jobs/\(jobB)", token: Self.teamAToken)
        #expect(bOverHTTP.status == 403 && bOverHTTP.body.contains("another tenant"), "\(bOverHTTP.status) \(bOverHTTP.body)")
        for path in ["/api/v1/jobs/\(jobB)/attempts", "/api/v1/jobs/\(jobB)/ledger", "/api/v1/jobs/\(jobB)/events?maxSeconds=1",
                     "/api/v1/jobs/\(jobB)/outputs", "/api/v1/jobs/\(jobB)/outputs/a/x.txt", "/api/v1/jobs/\(jobB)/attempts/a/1/transcript"] {
            #expect(try http("GET", base + path, token: Self.teamAToken).status == 403, "\(path)")
        }
        #expect(try http("POST", base + "/api/v1/jobs/\(jobB)/cancel", token: Self.teamAToken).status == 403)
        let pageA = try http("GET", base + "/api/v1/jobs", token: Self.teamAToken).json?["jobs"] as? [[String: Any]] ?? []
        #expect(pageA.map { $0["id"] as? String } == [jobA])
        let otherPage = try http("GET", base + "/api/v1/jobs?tenant=team-b", token: Self.teamAToken)
        #expect(otherPage.status == 403, "\(otherPage.status) \(otherPage.body)")
        let tenantsA = try http("GET", base + "/api/v1/tenants", token: Self.teamAToken).json?["tenants"] as? [[String: Any]] ?? []
        #expect(tenantsA.map { $0["name"] as? String } == ["team-a"])
        let asOther = try http("POST", base + "/api/v1/jobs?planner=seq:1&tenant=team-b", body: Self.slow, token: Self.teamAToken)
        #expect(asOther.status == 403 && asOther.body.contains("team-b"), "\(asOther.status) \(asOther.body)")
        let own = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: Self.slow, token: Self.teamAToken)
        #expect(own.status == 201 && own.json?["tenant"] as? String == "team-a", "\(own.status) \(own.body)")
        let readPost = try http("POST", base + "/api/v1/jobs", body: Self.slow, token: Self.teamBReadToken)
        #expect(readPost.status == 403 && readPost.body.contains("needs submit"), "\(readPost.body)")
        #expect(try http("GET", base + "/api/v1/jobs/\(jobB)", token: Self.teamBReadToken).status == 200)
        #expect(try http("GET", base + "/api/v1/jobs/\(jobA)", token: Self.teamBReadToken).status == 403)
        for path in ["/metrics", "/metrics/", "//metrics", "/metrics?x=1"] {
            let tenantMetrics = try http("GET", base + path, token: Self.teamAToken)
            #expect(tenantMetrics.status == 403 && tenantMetrics.body.contains("tenant"), "\(path): \(tenantMetrics.status) \(tenantMetrics.body)")
        }
        #expect((try http("GET", base + "/api/v1/jobs?limit=50", token: Self.adminToken).json?["jobs"] as? [[String: Any]] ?? []).count == 4)
        // The operator cancels anyone's job.
        let cancelled = try http("POST", base + "/api/v1/jobs/\(jobB)/cancel", token: Self.adminToken)
        #expect(cancelled.status == 200 && cancelled.json?["state"] as? String == "cancelled", "\(cancelled.body)")

        // Every refusal is counted, by the right missing.
        let metrics = try http("GET", base + "/metrics", token: Self.readToken).body
        func count(_ right: String) -> Double {
            for line in metrics.split(separator: "\n") where line.hasPrefix("agentflow_refused_requests_total{right=\"\(right)\"}") {
                return Double(line.split(separator: " ").last ?? "") ?? 0
            }
            return 0
        }
        #expect(count("client") >= 5, "\(metrics.split(separator: "\n").filter { $0.contains("refused_requests") })")
        #expect(count("worker") >= 1)
        #expect(count("tenant") >= 18)
        #expect(count("submit") >= 2)
        #expect(coordinator.process.isRunning)
    }

    /// A token bound to a tenant the cluster file does not list (a typo: team_a for team-a)
    /// would let its jobs spend outside every tenant's budget: the coordinator does not start,
    /// exits 2 and names the file and line; binds nothing, writes no database.
    @Test func aTokenForAnUnlistedTenantStopsTheCoordinator() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-unlisted-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tokens = dir.appendingPathComponent("tokens").path
        try "admin \(Self.adminToken)\nsubmit \(Self.teamAToken) tenant=team_a\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        let database = dir.appendingPathComponent("db.sqlite").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(freePort())
          clients: ipc://\(dir.path)/clients.sock
          database: \(database)
          http: 127.0.0.1:\(freePort())
          httpTokens: \(tokens)
        models:
          - {name: smollm2-135m}
        tenants:
          - {name: team-a}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let r = try agentflow(["coordinator", "--cluster", clusterFile], timeout: 30)
        #expect(r.code == 2, "\(r.code) \(r.err)")
        #expect(r.err.contains("\(tokens):2:") && r.err.contains("'team_a'") && r.err.contains("(team-a)"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: database))
    }

    /// The issue's reproduction: CURVE with node keys bound to their names and operator keys in
    /// authorizedKeys, no clientKeys and no tokens. The node's key registers its worker and can
    /// still neither cancel a job nor drain another worker; an operator's key can.
    @Test func aNodesKeyIsRefusedAsAClientWithoutClientKeysToo() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-nodekey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try keyPair(dir, "server.key"), node = try keyPair(dir, "node.key"), op = try keyPair(dir, "operator.key")
        let (w, c) = (freePort(), freePort())
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(w)
          clients: tcp://127.0.0.1:\(c)
          database: \(dir.appendingPathComponent("db.sqlite").path)
          curve:
            serverKey: "\(server)"
            serverKeyFile: \(dir.appendingPathComponent("server.key").path)
            authorizedKeys: ["\(op)"]
            workerKeys: {"gpu-host-1-*": "\(node)"}
        models:
          - {name: smollm2-135m}
        workers:
          - {name: gpu-host-1-gpu0, model: smollm2-135m, slots: 1, backend: {kind: sim, timeScale: 0.01}}
          - {name: gpu-host-1-gpu1, model: smollm2-135m, slots: 1, backend: {kind: sim, timeScale: 0.01}}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let coordinator = try Proc(["coordinator", "--cluster", clusterFile], log: dir.appendingPathComponent("c.log").path)
        let workers = try ["gpu-host-1-gpu0", "gpu-host-1-gpu1"].map {
            try Proc(["worker", "--name", $0, "--cluster", clusterFile, "--key", dir.appendingPathComponent("node.key").path], log: dir.appendingPathComponent("\($0).log").path)
        }
        defer {
            for p in workers + [coordinator] { p.terminate() }
            for p in workers + [coordinator] where p.wait(timeout: 5) == nil { p.kill9() }
        }
        func cli(_ key: String, _ args: [String]) throws -> (code: Int32, out: String, err: String) {
            try agentflow(args + ["--cluster", clusterFile, "--key", dir.appendingPathComponent(key).path], timeout: 60)
        }
        try waitUntil(timeout: 20, "both workers registered") { try cli("operator.key", ["workers"]).out.components(separatedBy: " alive ").count == 3 }
        let workflow = dir.appendingPathComponent("slow.yaml").path
        try Self.slow.write(toFile: workflow, atomically: true, encoding: .utf8)
        let submitted = try cli("operator.key", ["submit", workflow, "--planner", "seq:1"])
        #expect(submitted.code == 0, "\(submitted.err)")
        let job = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        for args in [["cancel", job], ["drain", "gpu-host-1-gpu1"], ["jobs"]] {
            let r = try cli("node.key", args)
            #expect(r.code == 4 && r.err.contains("worker key") && r.err.contains("gpu-host-1-*"), "\(args): \(r.code) \(r.err)")
        }
        let status = try cli("operator.key", ["status", job, "--json"])
        #expect(status.out.contains("\"running\"") || status.out.contains("\"queued\""), "\(status.out)")
        #expect(try cli("operator.key", ["workers"]).out.components(separatedBy: " alive ").count == 3, "no worker was drained")
        let cancel = try cli("operator.key", ["cancel", job])
        #expect(cancel.code == 0 || cancel.code == 1, "\(cancel.err)")
        #expect(try cli("operator.key", ["status", job, "--json"]).out.contains("\"cancelled\""), "the operator cancels")
    }
}
