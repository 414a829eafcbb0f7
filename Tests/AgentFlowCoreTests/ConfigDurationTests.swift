import AgentFlowCore
import Testing

/// Durations in cluster.yaml and workflows are read as `Duration` (`parseDuration`): units give
/// exact spans, and every hostile value is refused on its line, naming the key and the text.
@Suite struct ConfigDurationTests {
    let models = "models:\n  - {name: m}\n"

    func cluster(_ yaml: String) throws -> Cluster { try Cluster.parse(yaml: yaml, file: "c.yaml") }

    func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try cluster(yaml)
            return nil
        } catch {
            return error as? ConfigError
        }
    }

    @Test func unitsReadAsExactSpans() throws {
        let c = try cluster("""
            coordinator: {heartbeat: 0.25s, lease: 1m, httpLimits: {headerTimeout: 1.5s}}
            models:
              - {name: m}
            workers:
              - {name: w, model: m, backend: {kind: openai, url: 'http://h/v1', timeout: 1h30m}}
            scheduling: {aging: 90, fairShare: {halfLife: 2d}}
            sandbox: {wall: 0.1s, cpuTime: 20s}
            """)
        #expect(c.coordinator.heartbeat == .milliseconds(250))
        #expect(c.coordinator.deadAfter == .milliseconds(750))
        #expect(c.coordinator.lease == .seconds(60))
        #expect(c.coordinator.httpLimits.headerTimeout == .milliseconds(1_500))
        #expect(c.scheduling?.aging == .seconds(90))
        #expect(c.scheduling?.fairShare.halfLife == .seconds(2 * 86_400))
        guard case .openai(let e) = c.workers[0].backend else { Issue.record("not an openai backend"); return }
        #expect(e.timeout == .seconds(5_400))
        #expect(c.sandbox?.wallSeconds == 0.1 && c.sandbox?.cpuSeconds == 20)
        // Defaults.
        let d = try cluster(models)
        #expect(d.coordinator.heartbeat == .seconds(1) && (d.scheduling ?? SchedulingSpec()).aging == .seconds(300))
        #expect(FairShareSpec().halfLife == .seconds(7 * 86_400))
    }

    static let hostile = ["nan", ".nan", "inf", "-inf", "-5s", "0", "0s", "1e-12", "1e300", "1e300s", "99999999999999999999h",
                          "5 minutes", "soon", "1s;", "１s", ""]

    /// Each duration key, as a cluster file with `VALUE` in it on line 2.
    static let keys: [(key: String, yaml: String)] = [
        ("coordinator.heartbeat", "coordinator:\n  heartbeat: 'VALUE'\nmodels:\n  - {name: m}\n"),
        ("coordinator.lease", "coordinator:\n  lease: 'VALUE'\nmodels:\n  - {name: m}\n"),
        ("coordinator.httpLimits.idleTimeout", "coordinator:\n  httpLimits: {idleTimeout: 'VALUE'}\nmodels:\n  - {name: m}\n"),
        ("scheduling.aging", "models: [{name: m}]\nscheduling: {aging: 'VALUE'}\n"),
        ("scheduling.fairShare.halfLife", "models: [{name: m}]\nscheduling: {fairShare: {halfLife: 'VALUE'}}\n"),
        ("backend.timeout", "models: [{name: m}]\nworkers: [{name: w, model: m, backend: {kind: openai, url: 'http://h/v1', timeout: 'VALUE'}}]\n"),
        ("sandbox.wall", "models: [{name: m}]\nsandbox: {wall: 'VALUE'}\n"),
    ]

    @Test(arguments: hostile)
    func hostileValuesAreRefusedOnTheirLineNamingTheKey(_ value: String) {
        for (key, yaml) in Self.keys {
            let e = error(yaml.replacingOccurrences(of: "VALUE", with: value))
            #expect(e?.line == 2, "\(key) = \(value): \(String(describing: e))")
            #expect(e.map { "\($0)".contains(key) } == true, "\(key) = \(value): \(String(describing: e))")
        }
    }

    /// A number too large for any range is a range error quoting the text as written, not a trap.
    @Test func anAbsurdSpanIsARangeErrorQuotingTheText() {
        for (key, yaml) in Self.keys {
            let text = error(yaml.replacingOccurrences(of: "VALUE", with: "1e300")).map { "\($0)" } ?? ""
            #expect(text.contains("\(key) must be") && text.contains("got '1e300'"), "\(text)")
        }
        let lease = error(Self.keys[1].yaml.replacingOccurrences(of: "VALUE", with: "301s")).map { "\($0)" } ?? ""
        #expect(lease.contains("coordinator.lease must be between 1s and 300s, got '301s'"), "\(lease)")
        let heartbeat = error(Self.keys[0].yaml.replacingOccurrences(of: "VALUE", with: "0.001s")).map { "\($0)" } ?? ""
        #expect(heartbeat.contains("coordinator.heartbeat must be between 10ms and 1h, got '0.001s'"), "\(heartbeat)")
        let aging = error(Self.keys[3].yaml.replacingOccurrences(of: "VALUE", with: "31d")).map { "\($0)" } ?? ""
        #expect(aging.contains("scheduling.aging must be above 0s and at most 30d, got '31d'"), "\(aging)")
    }

    @Test func parseDurationEdges() {
        #expect(parseDuration("0.000000001") == .nanoseconds(1))
        #expect(parseDuration("1e-12") == nil, "under a nanosecond is no span")
        #expect(parseDuration("1e300") == longestParsedDuration)
        #expect(parseDuration("99999999999999999999h") == longestParsedDuration)
        for bad in ["nan", "inf", "-inf", "-1", "-1s", "1e300s", "1x", "s", "1s2", " "] { #expect(parseDuration(bad) == nil, "\(bad)") }
        #expect(parseDuration(" 2.5s ") == .milliseconds(2_500))
        #expect(parseDuration("1d1h1m1s") == .seconds(86_400 + 3_600 + 61))
    }

    @Test func spansPrintAsConfigWritesThem() {
        #expect(durationText(.milliseconds(10)) == "10ms")
        #expect(durationText(.seconds(300)) == "300s")
        #expect(durationText(.seconds(3_600)) == "1h")
        #expect(durationText(.seconds(30 * 86_400)) == "30d")
        #expect(durationText(.nanoseconds(1)) == "1ns")
        #expect(durationText(.milliseconds(1_500)) == "1500ms")
    }
}
