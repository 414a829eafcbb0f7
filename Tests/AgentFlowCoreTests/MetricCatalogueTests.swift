import AgentFlowCore
import Foundation
import Observability
import Testing

/// The metric catalogue and the series the coordinator writes from it: Prometheus naming rules,
/// `# HELP`/`# TYPE` on every family, bounded label sets, hostile values, and the dashboards and
/// alert rules naming only metrics that exist.
@Suite struct MetricCatalogueTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func catalogueFollowsPrometheusNamingRules() {
        let names = MetricCatalogue.all.map(\.name)
        #expect(Set(names).count == names.count, "duplicate names")
        for f in MetricCatalogue.all {
            #expect(f.name.range(of: #"^agentflow_[a-z][a-z0-9_]*[a-z0-9]$"#, options: .regularExpression) != nil, "\(f.name)")
            #expect(f.kind == .counter ? f.name.hasSuffix("_total") : !f.name.hasSuffix("_total"), "\(f.name): only counters end in _total")
            #expect(!["_bucket", "_sum", "_count"].contains { f.name.hasSuffix($0) }, "\(f.name) uses a histogram suffix")
            #expect(!f.help.isEmpty && !f.help.contains("\n"), "\(f.name) needs one line of help")
            #expect(MetricCatalogue.reservedLabels.isDisjoint(with: f.labels), "\(f.name) uses a label Prometheus sets itself: \(f.labels)")
            #expect(!f.labels.contains("le") && !f.labels.contains("quantile"), "\(f.name)")
            #expect(Set(f.labels).count == f.labels.count, "\(f.name) repeats a label")
        }
    }

    /// Every family the coordinator can emit, each with its help and type.
    @Test func everyFamilyRendersHelpAndType() {
        let registry = MetricsRegistry()
        let m = CoordinatorMetrics(registry: registry)
        m.attemptEnded(model: "small", outcome: "succeeded", tenant: "team-a", usd: 0.25, roleTokens: [("agent", 100), ("corrector", 20)])
        m.jobEnded(state: "succeeded", tenant: "team-a")
        m.malformedMessage(socket: "clients")
        m.preempted(model: "small")
        m.dispatched(queueWait: .milliseconds(20))
        m.plannerDecided(.milliseconds(1))
        m.jobCounts(["running": 1], states: ["queued", "running", "succeeded"])
        m.runningJobs([.init(id: "j-1", tenant: "team-a", remainingUSD: 1.5, remainingTokens: 900, budgetUsedRatio: 0.25,
                             deadlineRemainingSeconds: 100, deadlineTotalSeconds: 600, successEstimate: 0.7)])
        m.workers([.init(name: "gpu0", model: "small", busy: 1, free: 1, unavailable: 0, up: true, breakerOpen: .refusedKey)])
        m.jobQuarantined()
        let http = HTTPMetrics(registry: registry)
        http.refused(.streamsPerSource)
        http.timedOut(.header)
        m.tenants([.init(name: "team-a", spentUSD: 12.5, spentTokens: 4000, reservedUSD: 0.5, limitUSD: 200, limitTokens: 1_000_000, usage: 3.25,
                         share: 0.5, queued: 1, running: 2, waitingForBudget: 1)])
        RefusalMetrics(registry: registry).refused(.tenant)
        let text = registry.render()
        for f in MetricCatalogue.all {
            #expect(text.contains("# HELP \(f.name) \(f.help)\n"), "no help for \(f.name)")
            #expect(text.contains("# TYPE \(f.name) \(f.kind.rawValue)\n"), "no type for \(f.name)")
        }
        #expect(!text.contains("job=\""), "a job label clashes with Prometheus' own")
        #expect(text.contains(#"agentflow_spent_tokens_total{model="small",role="agent",tenant="team-a"} 100"#), "\(text)")
        #expect(text.contains(#"agentflow_budget_remaining_tokens{job_id="j-1",tenant="team-a"} 900.0"#), "\(text)")
        #expect(text.contains(#"agentflow_worker_breaker_open{worker="gpu0",model="small",cause="refused_key"} 1.0"#), "\(text)")
        #expect(text.contains(#"agentflow_worker_breaker_open{worker="gpu0",model="small",cause="unreachable"} 0.0"#), "\(text)")
        #expect(text.contains(#"agentflow_jobs{state="queued"} 0.0"#), "\(text)")
        #expect(text.contains(#"agentflow_tenant_period_limit_usd{tenant="team-a"} 200.0"#), "\(text)")
        #expect(text.contains(#"agentflow_tenant_jobs{tenant="team-a",state="waiting_for_budget"} 1.0"#), "\(text)")
        #expect(text.contains(#"agentflow_refused_requests_total{right="tenant"} 1"#), "\(text)")
    }

    /// Past ``CoordinatorMetrics/tenantLimit`` tenants, the rest are summed under `other`; a
    /// tenant whose budget was removed loses its limit series.
    @Test func tenantSeriesStayBounded() {
        let registry = MetricsRegistry()
        let m = CoordinatorMetrics(registry: registry)
        let many = (0..<150).map { i in
            CoordinatorMetrics.TenantState(name: "t\(i)", spentUSD: 1, spentTokens: 10, reservedUSD: 0, limitUSD: 5, limitTokens: nil, usage: 1,
                                           share: 1.0 / 150, queued: 1, running: 0, waitingForBudget: 0)
        }
        m.tenants(many)
        let text = registry.render()
        #expect(text.contains(#"agentflow_tenant_period_spent_usd{tenant="other"} 50.0"#), "\(text.prefix(2000))")
        #expect(!text.contains(#"agentflow_tenant_period_limit_usd{tenant="other"}"#))
        #expect(text.components(separatedBy: "agentflow_tenant_usage{").count - 1 == CoordinatorMetrics.tenantLimit + 1)
        var first = many[0]
        first.limitUSD = nil
        m.tenants([first])
        #expect(!registry.render().contains(#"agentflow_tenant_period_limit_usd{tenant="t0"}"#))
    }

    @Test func seriesOfAJobGoWhenItStopsRunning() {
        let registry = MetricsRegistry()
        let m = CoordinatorMetrics(registry: registry)
        func job(_ id: String, estimate: Double?) -> CoordinatorMetrics.RunningJob {
            .init(id: id, tenant: "t", remainingUSD: 1, remainingTokens: 10, budgetUsedRatio: 0.5, deadlineRemainingSeconds: 10,
                  deadlineTotalSeconds: 20, successEstimate: estimate)
        }
        m.runningJobs([job("j-a", estimate: 0.5), job("j-b", estimate: 0.5)])
        #expect(registry.render().contains(#"job_id="j-a""#))
        // An estimate that is no longer computed goes; the job's other series stay.
        m.runningJobs([job("j-a", estimate: nil), job("j-b", estimate: 0.5)])
        var text = registry.render()
        #expect(!text.contains(#"agentflow_job_success_estimate{job_id="j-a""#), "\(text)")
        #expect(text.contains(#"agentflow_job_deadline_remaining_seconds{job_id="j-a""#), "\(text)")
        m.runningJobs([job("j-b", estimate: 0.5)])
        text = registry.render()
        #expect(!text.contains(#"job_id="j-a""#), "\(text)")
        #expect(text.contains(#"job_id="j-b""#))
        m.runningJobs([])
        #expect(!registry.render().contains("job_id="))
    }

    @Test func tenantsBeyondTheLimitAreCountedAsOther() throws {
        let registry = MetricsRegistry()
        let m = CoordinatorMetrics(registry: registry)
        let extra = 50
        for i in 0..<(CoordinatorMetrics.tenantLimit + extra) {
            m.attemptEnded(model: "small", outcome: "succeeded", tenant: "tenant-\(i)", usd: 1, roleTokens: [("agent", 1)])
        }
        let lines = registry.render().split(separator: "\n").filter { $0.hasPrefix("agentflow_spent_usd_total{") }
        #expect(lines.count == CoordinatorMetrics.tenantLimit + 1)
        let other = try #require(lines.first { $0.contains(#"tenant="other""#) })
        #expect(other.hasSuffix(" \(extra).0") || other.hasSuffix(" \(extra)"), "\(other)")
        #expect(m.tenantLabel("tenant-0") == "tenant-0", "tenants seen first keep their name")
    }

    /// NaN, infinities, negative spans and label values with quotes, backslashes and line feeds
    /// neither crash nor break the exposition format.
    @Test func hostileValuesStayWellFormed() {
        let registry = MetricsRegistry()
        let m = CoordinatorMetrics(registry: registry)
        let evil = "a\"b\\c\nd}{"
        m.attemptEnded(model: evil, outcome: "error", tenant: evil, usd: .nan, roleTokens: [("agent", Int.max), ("corrector", -5)])
        m.attemptEnded(model: "m", outcome: "error", tenant: "t", usd: .infinity, roleTokens: [])
        m.dispatched(queueWait: .clampedSeconds(.nan))
        m.dispatched(queueWait: .clampedSeconds(-.infinity))
        m.dispatched(queueWait: .clampedSeconds(.infinity))
        m.plannerDecided(.clampedSeconds(-1))
        m.runningJobs([.init(id: evil, tenant: evil, remainingUSD: .infinity, remainingTokens: Int.min, budgetUsedRatio: .nan,
                             deadlineRemainingSeconds: -.infinity, deadlineTotalSeconds: .nan, successEstimate: 7)])
        let text = registry.render()
        #expect(!text.contains("NaN"), "\(text)")
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty && !line.hasPrefix("#") {
            #expect(line.range(of: #"^[a-z_]+(\{.*\})? [-+0-9.eE]+$"#, options: .regularExpression) != nil || line.contains("+Inf"), "\(line)")
        }
        #expect(text.contains(#"model="a\"b\\c\nd}{""#), "label values are escaped")
        #expect(text.contains(#"agentflow_job_success_estimate{job_id="a\"b\\c\nd}{",tenant="a\"b\\c\nd}{"} 1.0"#), "estimates are clamped to 1")
        #expect(!text.contains("agentflow_budget_remaining_usd{"), "an infinite amount is not a value")
    }

    /// The Grafana dashboard and the alert rules use only names the catalogue has (histograms
    /// with their `_bucket`/`_sum`/`_count` series), and every alert has a unit test.
    @Test func dashboardsAndAlertsNameOnlyCatalogueMetrics() throws {
        let files = ["tools/grafana/agentflow.json", "tools/prometheus/alerts.yaml", "tools/prometheus/alerts.test.yaml"]
        var used: Set<String> = []
        for file in files {
            let text = try String(contentsOf: Self.root.appendingPathComponent(file), encoding: .utf8)
            let regex = try NSRegularExpression(pattern: #"agentflow_[a-z0-9_]+"#)
            for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                used.insert(String(text[Range(match.range, in: text)!]))
            }
        }
        #expect(used.count >= 10, "\(used)")
        for name in used {
            let base = ["_bucket", "_sum", "_count"].first { name.hasSuffix($0) }.map { String(name.dropLast($0.count)) }
            let family = MetricCatalogue.family(named: name) ?? base.flatMap { MetricCatalogue.family(named: $0) }.flatMap { $0.kind == .histogram ? $0 : nil }
            #expect(family != nil, "\(name) is not in MetricCatalogue")
        }
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent(files[0]))) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "panel ids are unique")
        let rules = try String(contentsOf: Self.root.appendingPathComponent(files[1]), encoding: .utf8)
        let tests = try String(contentsOf: Self.root.appendingPathComponent(files[2]), encoding: .utf8)
        let alerts = rules.split(separator: "\n").compactMap { line -> String? in
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("- alert: ") ? String(t.dropFirst("- alert: ".count)) : nil
        }
        #expect(alerts.count >= 5)
        for alert in alerts {
            #expect(tests.contains("alertname: \(alert)\n        exp_alerts:\n          - exp_labels"), "alert \(alert) has no test that fires it")
        }
    }

    /// The PromQL of the dashboard's panels and of each alert rule (with the labels its
    /// annotations name through `$labels.X`).
    static func queries() throws -> (panels: [String], alerts: [(name: String, expr: String, labels: Set<String>)]) {
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("tools/grafana/agentflow.json"))) as? [String: Any])
        var panels: [String] = []
        func walk(_ list: [[String: Any]]) {
            for p in list {
                panels += ((p["targets"] as? [[String: Any]]) ?? []).compactMap { $0["expr"] as? String }
                walk((p["panels"] as? [[String: Any]]) ?? [])
            }
        }
        walk(try #require(dashboard["panels"] as? [[String: Any]]))
        if let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] {
            panels += variables.compactMap { $0["definition"] as? String }.filter { $0.contains("agentflow_") }
        }
        var alerts: [(name: String, expr: String, labels: Set<String>)] = []
        let lines = try String(contentsOf: root.appendingPathComponent("tools/prometheus/alerts.yaml"), encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        let labelRef = try NSRegularExpression(pattern: #"\$labels\.([a-zA-Z_]+)"#)
        var i = 0
        while i < lines.count {
            let t = lines[i].trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("- alert: ") {
                alerts.append((String(t.dropFirst("- alert: ".count)), "", []))
            } else if t.hasPrefix("expr:"), !alerts.isEmpty {
                var expr = String(t.dropFirst("expr:".count)).trimmingCharacters(in: .whitespaces)
                if expr == "|" {
                    let indent = lines[i].prefix { $0 == " " }.count
                    expr = ""
                    while i + 1 < lines.count, lines[i + 1].prefix(while: { $0 == " " }).count > indent || lines[i + 1].trimmingCharacters(in: .whitespaces).isEmpty {
                        i += 1
                        expr += lines[i].trimmingCharacters(in: .whitespaces) + " "
                    }
                }
                alerts[alerts.count - 1].expr = expr
            } else if !alerts.isEmpty {
                let line = String(lines[i])
                for m in labelRef.matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                    alerts[alerts.count - 1].labels.insert(String(line[Range(m.range(at: 1), in: line)!]))
                }
            }
            i += 1
        }
        return (panels, alerts)
    }

    /// The labels an expression can rely on: each selector's matchers must be labels of the
    /// family it selects, and each `by (…)` label one of the expression's families has.
    /// Returns the problems found and the labels the expression's families carry.
    static func labelProblems(_ expr: String) throws -> (problems: [String], labels: Set<String>) {
        let metric = try NSRegularExpression(pattern: #"(agentflow_[a-z0-9_]+)(\{([^}]*)\})?"#)
        let matcher = try NSRegularExpression(pattern: #"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)"#)
        let grouping = try NSRegularExpression(pattern: #"\b(?:by|without)\s*\(([^)]*)\)"#)
        var problems: [String] = []
        var available: Set<String> = []
        for m in metric.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
            let name = String(expr[Range(m.range(at: 1), in: expr)!])
            let histogramSeries = ["_bucket", "_sum", "_count"].first { name.hasSuffix($0) }
            guard let family = MetricCatalogue.family(named: name) ?? histogramSeries.flatMap({ MetricCatalogue.family(named: String(name.dropLast($0.count))) }) else {
                problems.append("\(name) is not in MetricCatalogue")
                continue
            }
            var labels = Set(family.labels)
            if histogramSeries == "_bucket" { labels.insert("le") }
            available.formUnion(labels)
            if let r = Range(m.range(at: 3), in: expr) {
                let selector = String(expr[r])
                for l in matcher.matches(in: selector, range: NSRange(selector.startIndex..., in: selector)) {
                    let label = String(selector[Range(l.range(at: 1), in: selector)!])
                    if !labels.contains(label) { problems.append("\(name) has no label \(label) (it has \(family.labels))") }
                }
            }
        }
        for g in grouping.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
            for label in expr[Range(g.range(at: 1), in: expr)!].split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !label.isEmpty {
                if !available.contains(label) { problems.append("grouping by \(label), which none of its metrics has") }
            }
        }
        if expr.hasPrefix("label_values("), let label = expr.dropLast().split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !available.contains(label) {
            problems.append("label_values of \(label), which its metric does not have")
        }
        return (problems, available)
    }

    /// Other scopes add labels and families (tenants, transcripts): the dashboard and the alerts
    /// must keep selecting and grouping by labels the catalogue's families still carry, and an
    /// alert's annotations may only name labels its expression keeps.
    @Test func dashboardsAndAlertsUseOnlyLabelsTheirMetricsHave() throws {
        let (panels, alerts) = try Self.queries()
        #expect(panels.count >= 12 && alerts.count >= 5, "\(panels.count) panels, \(alerts.count) alerts")
        for expr in panels {
            let r = try Self.labelProblems(expr)
            #expect(r.problems.isEmpty, "dashboard: \(expr): \(r.problems)")
        }
        for alert in alerts {
            #expect(!alert.expr.isEmpty, "\(alert.name) has no expression")
            guard alert.expr.contains("agentflow_") else { continue }
            let r = try Self.labelProblems(alert.expr)
            #expect(r.problems.isEmpty, "\(alert.name): \(r.problems)")
            // Aggregated alerts keep only their grouping labels.
            let grouping = try NSRegularExpression(pattern: #"\bby\s*\(([^)]*)\)"#)
            let kept = grouping.firstMatch(in: alert.expr, range: NSRange(alert.expr.startIndex..., in: alert.expr)).map {
                Set(alert.expr[Range($0.range(at: 1), in: alert.expr)!].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            } ?? r.labels
            #expect(alert.labels.isSubset(of: kept), "\(alert.name) names labels its series do not carry: \(alert.labels.subtracting(kept))")
        }
        // The check itself catches what it is for.
        #expect(!(try Self.labelProblems(#"agentflow_spent_usd_total{job_id="x"}"#)).problems.isEmpty)
        #expect(!(try Self.labelProblems("sum by (worker) (rate(agentflow_spent_usd_total[5m]))")).problems.isEmpty)
        #expect(!(try Self.labelProblems("agentflow_no_such_metric")).problems.isEmpty)
        #expect((try Self.labelProblems("histogram_quantile(0.5, sum by (le) (rate(agentflow_dispatch_latency_seconds_bucket[5m])))")).problems.isEmpty)
    }
}
