import Foundation
import TestSupport
import Testing

/// The dashboard in a real browser: headless Chromium (Debian's `chromium`, installed by
/// tools/install-deps.sh) loads `/` while a job runs and the test reads what the page shows.
@Suite(.serialized) struct DashboardBrowserTests {
    static func chromium() -> String? {
        for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    /// Runs headless Chromium on `url`; returns the DOM after the page's scripts ran.
    static func renderedDOM(_ url: String, in dir: URL) throws -> String {
        guard let browser = chromium() else {
            Issue.record("headless Chromium is not installed: run tools/install-deps.sh (Debian package chromium)")
            return ""
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        // Virtual time runs only while no request is pending: `stream=1` makes the page's events
        // stream end after a second (the browser reconnects), so 2.5 s of page time pass.
        p.arguments = ["90", browser, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + dir.appendingPathComponent("chromium").path,
                       "--virtual-time-budget=2500", "--window-size=1400,1100", "--dump-dom", url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try launch(p)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// With bearer tokens on, a link with the token in its fragment opens the dashboard: its API
    /// calls send the header and its events stream (EventSource, which cannot) the cookie, and the
    /// attempts on the Gantt come from that stream's snapshot.
    @Test func withTokensTheEventsStreamAuthenticatesByCookie() throws {
        let cluster = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 1)
        defer { cluster.stop() }
        try cluster.enableHTTPTokens()
        let base = try cluster.startWithHTTP(tokens: true)
        var workflow = "name: slow-chain\ndeadline: 5m\nbudget: {tokens: 100000, usd: 1}\nsubtasks:\n"
        for i in 0..<6 {
            workflow += "  - {id: step\(i), prompt: p\(i == 0 ? "" : ", needs: [step\(i - 1)]"), estimates: {smollm2-135m: {success: 1, tokens: 200, seconds: 2}}}\n"
        }
        let posted = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: workflow, token: HTTPAPITests.adminToken)
        let id = try #require(posted.json?["id"] as? String, "\(posted.body)")
        try waitUntil(timeout: 30, "the first step to pass") {
            let a = (try? http("GET", base + "/api/v1/jobs/\(id)/attempts", token: HTTPAPITests.readToken).json?["attempts"] as? [[String: Any]]) ?? []
            return a.contains { $0["state"] as? String == "succeeded" }
        }
        let dom = try Self.renderedDOM(base + "/?stream=1&job=\(id)#token=\(HTTPAPITests.readToken)", in: cluster.dir)
        _ = try http("POST", base + "/api/v1/jobs/\(id)/cancel", token: HTTPAPITests.adminToken)
        #expect(dom.contains("<h1 id=\"job-id\">\(id)</h1>"), "\(dom.prefix(2000))")
        #expect(dom.contains("<form id=\"tokenform\" hidden=\"\">"), "the page did not ask for a token")
        #expect(dom.contains("<g class=\"bar\" data-attempt=\"\(id)/step0#1\" data-state=\"succeeded\">"), "the stream's snapshot arrived")
        #expect(dom.contains("<span id=\"conn\" class=\"muted\">live</span>") || dom.contains("<span id=\"conn\" class=\"muted\">reconnecting"), "the page follows the events stream")
    }

    /// An attempt's bar opens its transcript: on the dashboard (the bar's link, followed, shows
    /// the transcript panel the click opens) and in the HTML report (the bar's `#transcript=`
    /// anchor shows the embedded transcript).
    @Test func anAttemptsBarOpensItsTranscript() throws {
        let t = TranscriptTests()
        let s = try TranscriptTests.Scratch()
        let key = "key\(UUID().uuidString)"
        let reply = s.secrets.appendingPathComponent("reply.txt").path
        try "I think this is it.\n```python\ndef add(a, b):\n    return a - b  # from the model\n```\n".write(toFile: reply, atomically: true, encoding: .utf8)
        let server = FakeServer(arguments: ["--reply-file", reply], environment: ["FAKE_OPENAI_API_KEY": key])
        let port = freePort()
        let clusterFile = try t.cluster(s, server: server, served: "canned", http: port)
        let coordinator = try Proc(["coordinator", "--cluster", clusterFile], log: s.dir.appendingPathComponent("coordinator.log").path)
        let worker = try Proc(["worker", "--name", "gpu0", "--cluster", clusterFile], log: s.dir.appendingPathComponent("worker.log").path,
                              environment: ["AF_TEST_KEY": key])
        defer {
            worker.terminate()
            coordinator.terminate()
            _ = worker.wait(timeout: 5)
            _ = coordinator.wait(timeout: 5)
        }
        try t.waitForWorker(clusterFile)
        let run = try agentflow(["submit", try t.workflow(s, maxTurns: 1), "--cluster", clusterFile, "--planner", "seq:1", "--wait", "--json"], timeout: 120)
        let id = try #require(t.json(run.out)["id"] as? String, "\(run.out)\(run.err)")
        let base = "http://127.0.0.1:\(port)"

        let page = try Self.renderedDOM(base + "/?stream=1&job=\(id)", in: s.dir)
        #expect(page.contains("<section id=\"transcript-panel\" hidden=\"\">"), "no transcript is open before a bar is clicked")
        let marker = "<a class=\"bar-link\" href=\""
        let link = try #require(page.range(of: marker).map { String(page[$0.upperBound...].prefix { $0 != "\"" }) }, "\(page.prefix(3000))")
        #expect(link == "?job=\(id)&amp;transcript=add%231", "\(link)")
        #expect(page.contains("data-attempt=\"\(id)/add#1\" data-subtask=\"add\" data-n=\"1\"><g class=\"bar\""))
        let opened = try Self.renderedDOM(base + "/" + link.replacingOccurrences(of: "&amp;", with: "&") + "&stream=1", in: s.dir)
        #expect(opened.contains("<section id=\"transcript-panel\">"), "the panel is shown")
        #expect(opened.contains("<div class=\"transcript\" data-attempt=\"\(id)/add#1\">"), "\(opened.prefix(3000))")
        #expect(opened.contains("return a - b  # from the model") && opened.contains("verifier failed") && opened.contains("Write a Python function add(a, b)"))
        #expect(opened.contains("call 1 · agent"))

        let file = s.dir.appendingPathComponent("report.html")
        #expect(try agentflow(["report", id, "--html", file.path, "--cluster", clusterFile]).code == 0)
        let closed = try Self.renderedDOM(file.absoluteString, in: s.dir)
        #expect(closed.contains("<a class=\"bar-link\" href=\"#transcript=\(id)%2Fadd%231\""), "\(closed.prefix(3000))")
        let report = try Self.renderedDOM(file.absoluteString + "#transcript=\(id)%2Fadd%231", in: s.dir)
        #expect(report.contains("<div class=\"transcript\" data-attempt=\"\(id)/add#1\">") && report.contains("return a - b  # from the model"))
    }

    @Test func dashboardShowsARunningJob() throws {
        let cluster = try TestCluster(workers: [("gpu0", "smollm2-135m", 2), ("gpu1", "gemma3-270m", 1)], timeScale: 1)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        // A chain of six steps of about 10 simulated (= real) seconds each: it runs while the page
        // loads (chromium took over 10 s to render on a CI run; the job is cancelled after).
        var yaml = "name: slow-chain\ndeadline: 5m\nbudget: {tokens: 100000, usd: 1}\nsubtasks:\n"
        for i in 0..<6 {
            yaml += "  - {id: step\(i), prompt: p\(i == 0 ? "" : ", needs: [step\(i - 1)]"), estimates: {smollm2-135m: {success: 1, tokens: 200, seconds: 10}, gemma3-270m: {success: 1, tokens: 200, seconds: 10}}}\n"
        }
        let posted = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: yaml)
        let id = try #require(posted.json?["id"] as? String, "\(posted.body)")
        try waitUntil(timeout: 60, "the first step to pass") {
            let a = (try? http("GET", base + "/api/v1/jobs/\(id)/attempts").json?["attempts"] as? [[String: Any]]) ?? []
            return a.contains { $0["state"] as? String == "succeeded" }
        }
        let dom = try Self.renderedDOM(base + "/?stream=1&job=\(id)", in: cluster.dir)
        let job = try #require(try http("GET", base + "/api/v1/jobs/\(id)").json)
        #expect(job["state"] as? String == "running", "the job must still run after the page rendered")
        _ = try http("POST", base + "/api/v1/jobs/\(id)/cancel")

        // What the page shows: the job selected and running, its DAG coloured by state, the
        // attempts on the Gantt, the burn chart with the limit and deadline, workers and queue.
        #expect(dom.contains("<h1 id=\"job-id\">\(id)</h1>"), "\(dom.prefix(2000))")
        #expect(dom.contains("<tr data-job=\"\(id)\" class=\"selected\">"))
        #expect(dom.contains(">running</span>"))
        #expect(dom.contains("data-subtask=\"step0\" data-state=\"succeeded\""))
        #expect(dom.contains("data-subtask=\"step5\" data-state=\"pending\""))
        #expect(dom.contains("<g class=\"bar\" data-attempt=\"\(id)/step0#1\" data-state=\"succeeded\">"))
        // The bar's hover text (its <title>): attempt, model, outcome, tokens.
        let bar = dom.range(of: "data-attempt=\"\(id)/step0#1\"").map { String(dom[$0.upperBound...].prefix(400)) } ?? ""
        #expect(bar.contains("<title>\(id)/step0#1\n") && bar.contains("-270m · succeeded") || bar.contains("-135m · succeeded"), "\(bar)")
        #expect(bar.contains(" tokens ("), "\(bar)")
        #expect(dom.contains("class=\"limit\"") && dom.contains("class=\"deadline\""))
        #expect(dom.contains("data-worker=\"gpu0\"") && dom.contains("data-worker=\"gpu1\""))
        #expect(dom.contains("busy · breaker closed</span>"))
        #expect(dom.contains("<div>0 job(s) waiting to start</div>"))
        #expect(dom.contains("<span id=\"conn\" class=\"muted\">live</span>") || dom.contains("<span id=\"conn\" class=\"muted\">reconnecting"), "the page follows the events stream")

        // The job's report, rendered by the same browser from the file alone: the charts are drawn.
        try waitUntil(timeout: 30, "the cancelled job to settle") {
            (try? http("GET", base + "/api/v1/jobs/\(id)").json?["budget"] as? [String: Any])?["reservedTokens"] as? Int == 0
        }
        let file = cluster.dir.appendingPathComponent("report.html")
        #expect(try cluster.cli(["report", id, "--html", file.path]).code == 0)
        let report = try Self.renderedDOM(file.absoluteString, in: cluster.dir)
        #expect(report.contains("<svg class=\"dag\""))
        #expect(report.contains("<g class=\"bar\" data-attempt=\"\(id)/step0#1\" data-state=\"succeeded\">"))
        #expect(report.contains("<path class=\"spent\"") && report.contains("class=\"limit\"") && report.contains("class=\"deadline\""))
        #expect(report.contains(">cancelled</span>") && report.contains("<td>agent</td>"), "job state and spend per role")
    }

}
