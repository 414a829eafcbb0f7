import Foundation
import Testing

/// The metrics, alert rules and dashboard checked with Prometheus' own tool, `promtool`
/// (Debian's `prometheus` package, installed by tools/install-deps.sh).
@Suite(.serialized) struct PrometheusToolsTests {
    static func promtool() -> String? {
        for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    /// Runs promtool with `args` (stdin from `input`); exit status and everything it printed.
    static func run(_ args: [String], input: String? = nil, cwd: URL = Paths.root) throws -> (code: Int32, output: String) {
        guard let tool = promtool() else {
            Issue.record("promtool is not installed: run tools/install-deps.sh (Debian package prometheus)")
            return (-1, "")
        }
        return try runTool(tool, args, in: cwd, input: input)
    }

    /// A live coordinator's `/metrics`, scraped while one job runs and after another ended, with
    /// workers registered: `promtool check metrics` finds nothing, every family carries HELP and
    /// TYPE, jobs are labelled `job_id` with their tenant.
    @Test func liveMetricsPassPromtoolCheck() throws {
        let cluster = try TestCluster(workers: [("gpu0", "smollm2-135m", 2), ("gpu1", "gemma3-270m", 1)], timeScale: 1)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        let quick = "name: quick\ndeadline: 2m\nbudget: {tokens: 50000, usd: 1}\nsubtasks:\n"
            + "  - {id: one, prompt: p, estimates: {smollm2-135m: {success: 1, tokens: 100, seconds: 0.1}}}\n"
        var slow = "name: slow\ndeadline: 5m\nbudget: {tokens: 100000, usd: 2}\nsubtasks:\n"
        for i in 0..<8 {
            slow += "  - {id: s\(i), prompt: p\(i == 0 ? "" : ", needs: [s\(i - 1)]"), estimates: {smollm2-135m: {success: 1, tokens: 200, seconds: 2}}}\n"
        }
        let q = try http("POST", base + "/api/v1/jobs?planner=seq:1&tenant=team-b", body: quick)
        let quickID = try #require(q.json?["id"] as? String, "\(q.body)\n\(cluster.logs)")
        let s = try http("POST", base + "/api/v1/jobs?planner=seq:1&tenant=team-a", body: slow)
        let slowID = try #require(s.json?["id"] as? String, "\(s.body)")
        defer { _ = try? http("POST", base + "/api/v1/jobs/\(slowID)/cancel") }
        var text = ""
        try waitUntil(timeout: 60, "the quick job to end and the slow one to be running with spend") {
            text = try http("GET", base + "/metrics").body
            return text.contains(#"agentflow_jobs_ended_total{state="succeeded",tenant="team-b"} 1"#)
                && text.contains(#"agentflow_job_deadline_remaining_seconds{job_id="\#(slowID)",tenant="team-a"}"#)
                && text.contains(#"tenant="team-a"}"#) && text.contains("agentflow_spent_usd_total{model=\"smollm2-135m\",tenant=\"team-a\"}")
        }
        #expect(quickID != slowID)
        let check = try Self.run(["check", "metrics"], input: text)
        #expect(check.code == 0 && check.output.isEmpty, "promtool check metrics:\n\(check.output)\n---\n\(text)")
        let families = Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        #expect(families.count >= 15, "\(families.sorted())")
        #expect(families == helped, "families without help: \(families.subtracting(helped))")
        #expect(!text.contains("{job=\"") && !text.contains(",job=\""), "a `job` label clashes with Prometheus' own")
        for series in [#"agentflow_budget_remaining_usd{job_id="\#(slowID)",tenant="team-a"}"#,
                       #"agentflow_job_success_estimate{job_id="\#(slowID)",tenant="team-a"}"#,
                       #"agentflow_worker_up{worker="gpu1",model="gemma3-270m"} 1.0"#,
                       #"agentflow_worker_breaker_open{worker="gpu0",model="smollm2-135m",cause="unreachable"} 0.0"#] {
            #expect(text.contains(series), "missing \(series)")
        }
        #expect(!text.contains(#"job_id="\#(quickID)""#), "an ended job keeps no per-job series")
    }

    @Test func alertRulesPassTheirUnitTests() throws {
        let dir = Paths.root.appendingPathComponent("tools/prometheus")
        let check = try Self.run(["check", "rules", "alerts.yaml"], cwd: dir)
        #expect(check.code == 0 && check.output.contains("SUCCESS: 7 rules found"), "\(check.output)")
        let tests = try Self.run(["test", "rules", "alerts.test.yaml"], cwd: dir)
        #expect(tests.code == 0 && tests.output.contains("SUCCESS"), "\(tests.output)")
    }

    /// Every query of the Grafana dashboard is valid PromQL: promtool checks them as recording
    /// rules (Grafana's `$__rate_interval` and `$tenant` filled in).
    @Test func dashboardQueriesAreValidPromQL() throws {
        let url = Paths.root.appendingPathComponent("tools/grafana/agentflow.json")
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var exprs: [String] = []
        func walk(_ panels: [[String: Any]]) {
            for p in panels {
                for t in (p["targets"] as? [[String: Any]]) ?? [] { if let e = t["expr"] as? String { exprs.append(e) } }
                walk((p["panels"] as? [[String: Any]]) ?? [])
            }
        }
        walk(try #require(dashboard["panels"] as? [[String: Any]]))
        #expect(exprs.count >= 12)
        var rules = "groups:\n  - name: dashboard\n    rules:\n"
        for (i, e) in exprs.enumerated() {
            let filled = e.replacingOccurrences(of: "$__rate_interval", with: "5m").replacingOccurrences(of: "$tenant", with: ".*")
            #expect(!filled.contains("$"), "an unknown Grafana variable in \(e)")
            let quoted = String(decoding: try JSONSerialization.data(withJSONObject: [filled], options: [.withoutEscapingSlashes]), as: UTF8.self).dropFirst().dropLast()
            rules += "      - record: dashboard_panel_\(i)\n        expr: \(quoted)\n"
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("af-dashboard-\(UUID().uuidString).yaml")
        try rules.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let check = try Self.run(["check", "rules", file.path])
        #expect(check.code == 0 && check.output.contains("SUCCESS: \(exprs.count) rules found"), "\(check.output)\n\(rules)")
    }
}
