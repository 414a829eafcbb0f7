import Foundation
import Store
import Synchronization
import Testing
import Wire

/// Issue 16 item 5 (intake): `POST /api/v1/jobs` answers with the job's report in one request,
/// and a job is acknowledged — over HTTP or the client socket — only once its row is
/// committed, however the coordinator batches its commits (a batch that only applies planner
/// decisions and sends nothing rides in the next commit): a `kill -9` right after the last
/// acknowledgement loses none of them.
@Suite(.serialized) struct IntakeAcknowledgementTests {
    /// The 201's body is what `GET /api/v1/jobs/{id}` returns for the job (its worker is never
    /// started: nothing moves the job after its first plan, so the two must be equal field for field).
    @Test func theCreatedBodyIsWhatStatusReturns() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 1)], timeScale: 1)
        defer { cluster.stop() }
        let port = freePort()
        cluster.coordinator = try Proc(["coordinator", "--cluster", cluster.clusterFile, "--http", "127.0.0.1:\(port)"],
                                       log: cluster.dir.appendingPathComponent("coordinator-http.log").path)
        let base = "http://127.0.0.1:\(port)"
        try waitUntil(timeout: 20, "the HTTP server to answer") { ((try? http("GET", base + "/api/v1/openapi.yaml").status) ?? 0) == 200 }
        let yaml = try String(contentsOf: Paths.root.appendingPathComponent("workflows/diamond.yaml"), encoding: .utf8)
        for query in ["planner=seq:1&budgetTokens=60000&deadline=1h", "planner=seq:2&budgetUSD=0.5&tenant=team-a&priority=3"] {
            let posted = try http("POST", base + "/api/v1/jobs?" + query, body: yaml)
            #expect(posted.status == 201, "\(posted.body)\n\(cluster.logs)")
            guard let created = posted.json, let id = created["id"] as? String else {
                Issue.record("no job in the 201: \(posted.body)")
                continue
            }
            let got = try http("GET", base + "/api/v1/jobs/\(id)")
            #expect(got.status == 200)
            let status = got.json ?? [:]
            #expect(NSDictionary(dictionary: created).isEqual(to: status), "201: \(posted.body)\nGET: \(got.body)")
            // Not an empty shell: the report names the workflow, its subtasks and their edges, and the plan's reservation.
            #expect(created["workflow"] as? String == "diamond" && created["state"] as? String == "queued")
            let subtasks = created["subtasks"] as? [[String: Any]] ?? []
            #expect(subtasks.count == 4 && subtasks.contains { ($0["needs"] as? [String])?.isEmpty == false })
            let budget = created["budget"] as? [String: Any] ?? [:]
            #expect((budget["reservedTokens"] as? Int ?? 0) > 0 || (budget["reservedUSD"] as? Double ?? 0) > 0, "\(budget)")
        }
        // A refused workflow is still a 400 naming the file and line, and stores nothing.
        let refused = try http("POST", base + "/api/v1/jobs?file=broken.yaml", body: "name: x\nsubtasks:\n  - {id: a, prompt: p, needs: [zz]}\n")
        #expect(refused.status == 400 && refused.body.contains("broken.yaml"), "\(refused.body)")
        let c = try SQLiteConnection(path: cluster.database)
        #expect(try c.query("SELECT COUNT(*) FROM jobs")[0].int(0) == 2)
    }

    /// 8 HTTP clients and 4 socket clients submit MCPP jobs at once to a one-slot fleet (their
    /// plans keep arriving while others are submitted); the coordinator is killed the moment
    /// the last acknowledgement arrives. Every acknowledged job is in the database, and the
    /// restarted coordinator reports each one with its budget intact.
    @Test func noAcknowledgedJobIsLostWhenTheCoordinatorIsKilledRightAfter() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 1)], timeScale: 1)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        let yaml = try String(contentsOf: Paths.root.appendingPathComponent("workflows/diamond.yaml"), encoding: .utf8)
        let acknowledged = Collected(), problems = Collected()
        let clients = DispatchGroup()
        for t in 0..<12 {
            clients.enter()
            Thread.detachNewThread {
                defer { clients.leave() }
                do {
                    if t < 8 {
                        for i in 0..<15 {
                            let r = try http("POST", base + "/api/v1/jobs?planner=mcpp&budgetTokens=50000&deadline=2h&file=h\(t)-\(i).yaml", body: yaml)
                            guard r.status == 201, let id = r.json?["id"] as? String else {
                                problems.append("HTTP \(r.status): \(r.body.prefix(200))")
                                continue
                            }
                            acknowledged.append(id)
                        }
                    } else {
                        let client = try RawClient("tcp://127.0.0.1:\(cluster.clientsPort)")
                        for i in 0..<40 {
                            let request = SubmitRequest(yaml: yaml, file: "s\(t)-\(i).yaml", budgetTokens: 50_000, deadline: 7_200, planner: "mcpp")
                            guard case .submitted(let id)? = try client.request(.submit(request)) else {
                                problems.append("socket submission \(t)/\(i) not acknowledged")
                                continue
                            }
                            acknowledged.append(id)
                        }
                    }
                } catch {
                    problems.append("client \(t): \(error)")
                }
            }
        }
        #expect(clients.wait(timeout: .now() + 120) == .success, "the clients did not finish in 2 minutes")
        cluster.coordinator!.kill9()
        _ = cluster.coordinator!.wait(timeout: 10)
        let ids = acknowledged.items
        #expect(problems.items.isEmpty, "\(problems.items)")
        #expect(ids.count == 8 * 15 + 4 * 40)
        #expect(Set(ids).count == ids.count, "a job id was acknowledged twice")

        let c = try SQLiteConnection(path: cluster.database)
        let stored = Set(try c.query("SELECT id FROM jobs").map { $0.string(0) })
        let lost = ids.filter { !stored.contains($0) }
        #expect(lost.isEmpty, "acknowledged but not stored: \(lost.prefix(10)) (\(lost.count) of \(ids.count))")
        let subtasks = Dictionary(grouping: try c.query("SELECT job FROM subtasks").map { $0.string(0) }, by: { $0 }).mapValues(\.count)
        #expect(ids.allSatisfy { subtasks[$0] == 4 }, "an acknowledged job's subtasks were not all stored with it")

        // The restarted coordinator resumes every one of them, within its budget.
        try cluster.startCoordinator()
        let client = try RawClient("tcp://127.0.0.1:\(cluster.clientsPort)")
        try waitUntil(timeout: 30, "the restarted coordinator answers") {
            if case .job? = try? client.request(.status(job: ids[0]), timeout: 2) { return true }
            return false
        }
        for id in ids {
            guard case .job(let j)? = try client.request(.status(job: id), timeout: 10) else {
                Issue.record("no status for acknowledged job \(id) after the restart")
                continue
            }
            #expect(j.budget.spentTokens + j.budget.reservedTokens <= 50_000, "\(id): \(j.budget)")
        }
    }
}

/// Strings gathered from several threads.
private final class Collected: Sendable {
    private let list = Mutex<[String]>([])
    func append(_ s: String) { list.withLock { $0.append(s) } }
    var items: [String] { list.withLock { $0 } }
}
