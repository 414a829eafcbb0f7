import Foundation
import TestSupport
import Testing

/// One HTTP exchange through curl (a real client on a real socket).
struct HTTPReply {
    var status: Int
    var body: String
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
}

/// `contentType` goes with a body ("" sends none at all).
func http(_ method: String, _ url: String, body: String? = nil, token: String? = nil, headers: [String] = [], maxTime: Int = 20,
          contentType: String = "application/yaml") throws -> HTTPReply {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    var args = ["curl", "-s", "-S", "--max-time", String(maxTime), "-X", method, "-w", "\n%{http_code}", url]
    if let token { args += ["-H", "Authorization: Bearer \(token)"] }
    for h in headers { args += ["-H", h] }
    let bodyFile = NSTemporaryDirectory() + "af-http-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: bodyFile) }
    if let body {
        try body.write(toFile: bodyFile, atomically: true, encoding: .utf8)
        // An empty value makes curl leave the header out (else it would add form-urlencoded).
        args += ["-H", "Content-Type: \(contentType)", "--data-binary", "@" + bodyFile]
    }
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try launch(p)
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    var text = String(decoding: data, as: UTF8.self)
    let code = Int(text.split(separator: "\n").last ?? "") ?? 0
    if let nl = text.lastIndex(of: "\n") { text = String(text[..<nl]) }
    return HTTPReply(status: code, body: text)
}

extension TestCluster {
    /// Turns bearer tokens on in the cluster file (`httpTokens`, HTTPAPITests' read and admin
    /// tokens, with a comment line); call before `startWithHTTP(tokens: true)`. The client socket
    /// moves to a Unix socket (mode 0660): with tokens on, a TCP one would be a way around them.
    func enableHTTPTokens() throws {
        let tokens = dir.appendingPathComponent("tokens").path
        try "# role token\nadmin \(HTTPAPITests.adminToken)\nread \(HTTPAPITests.readToken)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let yaml = try String(contentsOfFile: clusterFile, encoding: .utf8)
        try yaml.replacingOccurrences(of: "  liveness: 3\n", with: "  liveness: 3\n  httpTokens: \(tokens)\n")
            .replacingOccurrences(of: "clients: tcp://127.0.0.1:\(clientsPort)\n", with: "clients: \(clientsSocket)\n")
            .write(toFile: clusterFile, atomically: true, encoding: .utf8)
    }

    /// The `ipc://` client endpoint `enableHTTPTokens` switches to.
    var clientsSocket: String { "ipc://" + dir.appendingPathComponent("clients.sock").path }

    /// Starts the coordinator with HTTP on a free loopback port; returns the base URL.
    func startWithHTTP(extra: [String] = [], tokens: Bool = false) throws -> String {
        let port = freePort()
        coordinator = try Proc(["coordinator", "--cluster", clusterFile, "--http", "127.0.0.1:\(port)"] + extra,
                               log: dir.appendingPathComponent("coordinator-http.log").path)
        for n in workerNames { try startWorker(n) }
        try waitUntil(timeout: 30, "all workers registered") { (try? self.aliveWorkers().count) == self.workerNames.count }
        let base = "http://127.0.0.1:\(port)"
        try waitUntil(timeout: 20, "the HTTP server to answer") {
            ((try? http("GET", base + "/api/v1/openapi.yaml", token: tokens ? HTTPAPITests.readToken : nil).status) ?? 0) == 200
        }
        return base
    }
}

@Suite(.serialized) struct HTTPAPITests {
    static let adminToken = "admin-token-0123456789abcdef"
    static let readToken = "read-token-0123456789abcdef"

    /// POST a workflow, watch it succeed over GET, and read its attempts, ledger, events and metrics.
    @Test func jobPostedOverHTTPRunsAndIsReported() throws {
        let cluster = try TestCluster(workers: [("gpu0", "smollm2-135m", 2), ("gpu1", "gemma3-270m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        let yaml = try String(contentsOf: Paths.root.appendingPathComponent("workflows/diamond.yaml"), encoding: .utf8)
        let posted = try http("POST", base + "/api/v1/jobs?planner=seq:1&budgetTokens=60000&deadline=2m&priority=1&tenant=team-a", body: yaml)
        #expect(posted.status == 201, "\(posted.body)\n\(cluster.logs)")
        let id = try #require(posted.json?["id"] as? String)
        #expect(posted.json?["planner"] as? String == "seq:1")
        var job: [String: Any] = [:]
        try waitUntil(timeout: 60, "the job to end") {
            job = (try? http("GET", base + "/api/v1/jobs/\(id)").json) ?? [:]
            return ["succeeded", "failed", "budget_exhausted", "deadline_exceeded", "infeasible"].contains(job["state"] as? String ?? "")
        }
        #expect(job["state"] as? String == "succeeded", "\(job)")
        let budget = try #require(job["budget"] as? [String: Any])
        let spent = try #require(budget["spentTokens"] as? Int)
        #expect(spent > 0 && spent <= 60000)
        let subtasks = try #require(job["subtasks"] as? [[String: Any]])
        #expect(subtasks.contains { ($0["needs"] as? [String])?.isEmpty == false }, "the DAG's edges are in the job object")

        // Attempts and ledger agree with the job.
        let attempts = try #require(try http("GET", base + "/api/v1/jobs/\(id)/attempts").json?["attempts"] as? [[String: Any]])
        #expect(attempts.count == subtasks.reduce(0) { $0 + ($1["attempts"] as? Int ?? 0) })
        #expect(attempts.allSatisfy { ["succeeded", "failed", "cancelled", "lost"].contains($0["state"] as? String ?? "") })
        let ledger = try #require(try http("GET", base + "/api/v1/jobs/\(id)/ledger").json?["lines"] as? [[String: Any]])
        #expect(ledger.reduce(0) { $0 + ($1["tokensIn"] as! Int) + ($1["tokensOut"] as! Int) } == spent)

        // Lists, filters, pagination; cancel of an ended job answers it as it is.
        let page = try #require(try http("GET", base + "/api/v1/jobs?state=succeeded&workflow=diamond&limit=5").json)
        #expect((page["jobs"] as? [[String: Any]])?.first?["id"] as? String == id)
        #expect(page["total"] as? Int == 1)
        #expect((try http("GET", base + "/api/v1/jobs?state=failed").json?["total"] as? Int) == 0)
        let byTenant = try #require(try http("GET", base + "/api/v1/jobs?tenant=team-a&state=succeeded").json)
        #expect((byTenant["jobs"] as? [[String: Any]])?.first?["tenant"] as? String == "team-a", "\(byTenant)")
        #expect(byTenant["total"] as? Int == 1)
        #expect((try http("GET", base + "/api/v1/jobs?tenant=team-b").json?["total"] as? Int) == 0)
        #expect(try http("POST", base + "/api/v1/jobs/\(id)/cancel").json?["state"] as? String == "succeeded")
        #expect((try http("GET", base + "/api/v1/workers").json?["workers"] as? [[String: Any]])?.count == 2)

        // The event stream of an ended job: a snapshot, then its end.
        let events = try http("GET", base + "/api/v1/jobs/\(id)/events")
        #expect(events.status == 200)
        #expect(events.body.hasPrefix("retry: 1000\n\nevent: snapshot\n"), "\(events.body.prefix(300))")
        #expect(events.body.contains("event: end\n"))

        // Metrics carry the job's spend.
        var metrics = HTTPReply(status: 0, body: "")
        try waitUntil(timeout: 10, "the jobs gauge to count the job") {
            metrics = try http("GET", base + "/metrics")
            return metrics.body.contains("agentflow_jobs{state=\"succeeded\"} 1.0")
        }
        #expect(metrics.status == 200)
        for series in ["agentflow_attempts_total{model=", "agentflow_spent_tokens_total{model=",
                       "agentflow_spent_usd_total{model=", "agentflow_worker_slots{worker=\"gpu0\",model=\"smollm2-135m\",state=\"free\"}",
                       "agentflow_dispatch_latency_seconds_bucket", "agentflow_planner_decision_seconds_count",
                       "agentflow_malformed_messages_total{socket=\"workers\"} 0"] {
            #expect(metrics.body.contains(series), "missing \(series)")
        }
        let tokenLines = metrics.body.split(separator: "\n").filter { $0.hasPrefix("agentflow_spent_tokens_total{") }
        #expect(tokenLines.reduce(0) { $0 + (Int($1.split(separator: " ").last ?? "") ?? 0) } == spent)

        // The CLI's history commands read the same.
        let cliAttempts = try cluster.cli(["attempts", id, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(cliAttempts.out.utf8)) as? [[String: Any]])?.count == attempts.count)
        let report = cluster.dir.appendingPathComponent("report.html").path
        #expect(try cluster.cli(["report", id, "--html", report]).code == 0)
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains(id) && html.contains("AF.gantt(") && !html.contains("src=\"http"))
    }

    /// Hostile and broken input answers 400 or 404 with a message, and the server keeps serving.
    @Test func badInputAnswers400WithTheValidateMessage() throws {
        let cluster = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 0.01)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        let cyclic = "name: cyc\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: p, needs: [b]}\n  - {id: b, prompt: p, needs: [a]}\n"
        let r = try http("POST", base + "/api/v1/jobs?file=cyc.yaml", body: cyclic)
        #expect(r.status == 400)
        #expect(r.json?["error"] as? String == "cyc.yaml:5: the subtasks form a cycle: a -> b -> a", "\(r.body)")
        #expect(r.json?["line"] as? Int == 5)
        let file = cluster.dir.appendingPathComponent("cyc.yaml").path
        try cyclic.write(toFile: file, atomically: true, encoding: .utf8)
        let validate = try agentflow(["validate", file, "--cluster", cluster.clusterFile])
        #expect(validate.code == 2 && validate.err.contains("the subtasks form a cycle: a -> b -> a"))
        let good = "name: ok\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: p}\n"
        for query in ["budgetUSD=inf", "budgetUSD=nan", "budgetUSD=-1", "budgetTokens=0", "budgetTokens=99999999999999999999", "deadline=forever",
                      "priority=1e9", "planner=nope", "tenant=%0a"] {
            let reply = try http("POST", base + "/api/v1/jobs?" + query, body: good)
            #expect(reply.status == 400, "\(query): \(reply.status) \(reply.body)")
            #expect(reply.json?["error"] is String, "\(query)")
        }
        #expect(try http("POST", base + "/api/v1/jobs", body: "\u{01}\u{02}: [").status == 400)
        // The workflow is parsed by the coordinator's intake only: the same broken text again
        // (its refusal kept there) gets the same answer, and hostile texts a 400 naming the file.
        let again = try http("POST", base + "/api/v1/jobs?file=cyc.yaml", body: cyclic)
        #expect(again.status == 400 && again.body == r.body, "\(again.body)")
        for hostile in ["name: n\u{0}\ndeadline: 1m\n", String(repeating: "[", count: 100_000), "subtasks: 7\n",
                        "name: x\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: p, estimates: {smollm2-135m: {success: .nan, tokens: 1e300, seconds: -1}}}\n",
                        "name: x\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: p, needs: [a]}\n"] {
            let reply = try http("POST", base + "/api/v1/jobs?file=h.yaml", body: hostile)
            #expect(reply.status == 400, "\(hostile.prefix(60)): \(reply.status) \(reply.body.prefix(300))")
            #expect((reply.json?["error"] as? String)?.hasPrefix("h.yaml") == true, "\(reply.body.prefix(300))")
        }
        // Nothing refused was stored: the coordinator holds no job.
        let listed = try http("GET", base + "/api/v1/jobs")
        #expect(listed.status == 200 && !listed.body.contains("\"j-"), "\(listed.body.prefix(300))")
        #expect(try http("GET", base + "/api/v1/jobs?limit=100000").status == 400)
        #expect(try http("GET", base + "/api/v1/jobs/no-such-job").status == 404)
        #expect(try http("GET", base + "/api/v1/jobs/no-such-job/events").status == 404)
        #expect(try http("POST", base + "/api/v1/jobs/%00%01/cancel").status == 404)
        #expect(try http("GET", base + "/api/v1/workers").status == 200)
    }

    /// Tokens: none → 401, read → GET only, admin → everything; a public address without tokens is refused.
    @Test func bearerTokensAndNonLoopbackRefusal() throws {
        let cluster = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 0.01)
        defer { cluster.stop() }
        try cluster.enableHTTPTokens()
        let base = try cluster.startWithHTTP(tokens: true)
        let good = "name: ok\ndeadline: 1m\nbudget: {tokens: 10000}\nsubtasks:\n  - {id: a, prompt: p}\n"
        #expect(try http("GET", base + "/api/v1/jobs").status == 401)
        #expect(try http("GET", base + "/api/v1/jobs", token: "wrong-token-0123456789abcdef").status == 401)
        #expect(try http("GET", base + "/metrics").status == 401)
        #expect(try http("GET", base + "/api/v1/jobs", token: Self.readToken).status == 200)
        #expect(try http("POST", base + "/api/v1/jobs", body: good, token: Self.readToken).status == 403)
        #expect(try http("POST", base + "/api/v1/jobs", body: good, token: Self.adminToken).status == 201)
        #expect(try http("GET", base + "/").status == 200, "the dashboard page itself carries no data")
        // The dashboard's events stream authenticates with a cookie: for reads only, never from the URL.
        let readCookie = "Cookie: theme=dark; agentflow_token=\(Self.readToken)"
        #expect(try http("GET", base + "/api/v1/jobs", headers: [readCookie]).status == 200)
        #expect(try http("GET", base + "/api/v1/jobs", headers: ["Cookie: agentflow_token=wrong-token-0123456789abcdef"]).status == 401)
        #expect(try http("POST", base + "/api/v1/jobs", body: good, headers: ["Cookie: agentflow_token=\(Self.adminToken)"]).status == 401,
                "a cookie never authorizes a change (another site's page could send it)")
        #expect(try http("GET", base + "/api/v1/jobs?access_token=\(Self.readToken)").status == 401, "a token in the URL is not accepted")
        // Hostile cookies are refused like a missing token, and the server keeps answering.
        for cookie in ["agentflow_token=%ZZ%", ";;;=;agentflow_token", "agentflow_token=\(Self.readToken)%00",
                       "agentflow_token=\"\(Self.readToken)\"x", "agentflow_token=" + String(repeating: "a", count: 6000)] {
            let status = try http("GET", base + "/api/v1/jobs", headers: ["Cookie: " + cookie]).status
            #expect(status == 401 || status == 431 || status == 400, "\(cookie.prefix(60)): \(status)")
        }
        #expect(try http("GET", base + "/api/v1/jobs", headers: [readCookie]).status == 200)

        // Without tokens, a non-loopback bind is refused before anything is bound.
        let open = cluster.dir.appendingPathComponent("open.yaml").path
        let yaml = try String(contentsOfFile: cluster.clusterFile, encoding: .utf8)
        try yaml.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("  httpTokens:") }.joined(separator: "\n")
            .write(toFile: open, atomically: true, encoding: .utf8)
        let refused = try agentflow(["coordinator", "--cluster", open, "--http", "0.0.0.0:\(freePort())", "--database", cluster.dir.appendingPathComponent("x.db").path], timeout: 30)
        #expect(refused.code == 2)
        #expect(refused.err.contains("refusing to serve HTTP on 0.0.0.0"), "\(refused.err)")
    }
}
