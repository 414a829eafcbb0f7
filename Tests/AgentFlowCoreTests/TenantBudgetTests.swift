import AgentFlowCore
import Coordinator
import Foundation
import Store
import Testing
import Wire

/// Tenants' period budgets and fair-share usage in the core (issue 18 item 4), driven through
/// the real shell on an in-memory store.
@Suite struct TenantBudgetTests {
    /// Four independent subtasks of at most 1,000 tokens each (a worst case of $0.00005 on m-small).
    static let fourTasks = """
        name: four
        models: [m-small]
        budget: {tokens: 1000000}
        deadline: 1h
        subtasks:
          - {id: a, prompt: x, maxTokens: 1000}
          - {id: b, prompt: x, maxTokens: 1000}
          - {id: c, prompt: x, maxTokens: 1000}
          - {id: d, prompt: x, maxTokens: 1000}
        """

    static func submit(_ h: CoreHarness, tenant: String, yaml: String = fourTasks, seed: UInt64 = 1) -> CoreEvent {
        var r = SubmitRequest(yaml: yaml, file: "four.yaml", planner: "seq:1", seed: seed)
        r.tenant = tenant
        return CoreHarness.submission(r, cluster: h.cluster, at: h.clock.wallInstant)
    }

    static func tenants(_ h: CoreHarness) throws -> [String: TenantReport] {
        let out = try h.iterate([.client(.tenants, route: [Data("c".utf8)])])
        for o in out { if case .toClient(_, .tenants(let list)) = o { return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) }) } }
        Issue.record("no tenants reply in \(out)")
        return [:]
    }

    static func jobIDs(_ out: [Outgoing]) -> [String] {
        out.compactMap { if case .toClient(_, .submitted(let j)) = $0 { return j } else { return nil } }
    }

    /// The ledger's invariant for every tenant the core holds: spent + reserved ≤ limit.
    static func checkTenants(_ h: CoreHarness, _ context: String) {
        for t in h.shell.core.tenantSnapshots {
            #expect(t.consistent, "\(context): tenant \(t.name) spent \(t.spent) reserved \(t.reserved) limit \(String(describing: t.limitTokens))/\(String(describing: t.limitUSD))")
        }
    }

    /// Lets `seconds` pass a second at a time with `worker` heartbeating (a longer silence would
    /// declare it dead); returns what was dispatched meanwhile.
    static func pass(_ h: CoreHarness, _ seconds: Int, worker: String = "w0#1") throws -> [(to: String, spec: AttemptSpec)] {
        var out: [(to: String, spec: AttemptSpec)] = []
        for _ in 0..<seconds {
            h.clock.advance(1)
            out += CoreHarness.dispatches(try h.iterate([.worker(.heartbeat, from: Data(worker.utf8))]))
        }
        return out
    }

    /// Answers every dispatched attempt not yet answered with `usage` tokens (hostile values too).
    static func answer(_ h: CoreHarness, _ dispatches: inout [(to: String, spec: AttemptSpec)], tokens: Int, pass: Bool = true) throws {
        let batch = dispatches
        dispatches = []
        for d in batch {
            let report = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(
                end: pass ? .succeeded : .failed, usage: [TokenUsage(role: .agent, input: tokens / 2, output: tokens - tokens / 2)], output: "ok"))
            dispatches += CoreHarness.dispatches(try h.iterate([.worker(.result(report), from: Data(d.to.utf8))]))
            checkTenants(h, "after a result of \(tokens) tokens")
        }
    }

    @Test(arguments: [600, Int.max, -5, 1000])
    func twoJobsOfOneTenantStartedTogetherNeverSpendPastItsDailyBudget(tokens: Int) throws {
        let h = try CoreHarness(tenants: [TenantSpec(name: "team-a", budget: TenantBudget(tokens: 3000, per: .day))])
        try h.register("w0#1", slots: 8)
        let out = try h.iterate([Self.submit(h, tenant: "team-a", seed: 1), Self.submit(h, tenant: "team-a", seed: 2)])
        let jobs = Self.jobIDs(h.sent)
        #expect(jobs.count == 2)
        var dispatches = CoreHarness.dispatches(out)
        // Eight attempts planned at once, 8 free slots: only three worst cases fit the tenant's 3,000 tokens.
        #expect(dispatches.count == 3, "\(dispatches.map(\.spec.id))")
        Self.checkTenants(h, "after the submissions")
        let waiting = jobs.compactMap { h.shell.board.view($0)?.waiting }.filter { $0.contains("tenant team-a's daily budget") }
        #expect(!waiting.isEmpty, "\(jobs.map { h.shell.board.view($0)?.waiting ?? "-" })")
        for _ in 0..<20 where !dispatches.isEmpty { try Self.answer(h, &dispatches, tokens: tokens) }
        let report = try #require(try Self.tenants(h)["team-a"])
        #expect(report.period.spentTokens <= 3000 && report.period.spentTokens + report.period.reservedTokens <= 3000, "\(report.period)")
        #expect(report.period.limitTokens == 3000 && report.period.per == "day")
        // The ledger agrees: what both jobs were charged together stays within the tenant's day.
        let charged = try jobs.reduce(0) { sum, j in sum + (try h.store.ledger(of: j).reduce(0) { $0 + $1.tokensIn + $1.tokensOut }) }
        #expect(charged == report.period.spentTokens && charged <= 3000)
        // Neither job ended for it: they wait, and say for what.
        for j in jobs {
            let state = try h.store.job(j)?.state
            #expect(state == .running || state == .queued || state == .succeeded, "\(j): \(String(describing: state))")
        }
        let unfinished = try jobs.filter { try h.store.job($0)?.state != .succeeded }
        // Charged anything at all, eight attempts do not fit 3,000 tokens (a hostile negative count is charged nothing).
        if tokens > 0 { #expect(!unfinished.isEmpty) }
        for j in unfinished { #expect(h.shell.board.view(j)?.waiting.contains("tenant team-a's daily budget") == true, "\(h.shell.board.view(j)?.waiting ?? "")") }
        #expect(report.jobs.waitingForBudget == unfinished.count)

        // Waiting is not an end, but a deadline is (the renewal is aNewPeriodRenewsTheBudgetAndWaitingJobsGoOn).
        h.clock.advance(3601)
        try h.iterate()
        for j in unfinished { #expect(try h.store.job(j)?.state == .deadlineExceeded) }
        Self.checkTenants(h, "after the deadline")
    }

    @Test func aNewPeriodRenewsTheBudgetAndWaitingJobsGoOn() throws {
        let h = try CoreHarness(tenants: [TenantSpec(name: "t", budget: TenantBudget(usd: 0.0001, per: .hour))])
        // Start five minutes before the hour ends, so a 30-minute deadline outlives it.
        let hour = BudgetPeriod.hour
        h.clock.advance(hour.end(afterStart: hour.start(containing: h.clock.wallInstant)).seconds(since: h.clock.wallInstant) - 300)
        try h.register("w0#1", slots: 8)
        let yaml = Self.fourTasks.replacingOccurrences(of: "deadline: 1h", with: "deadline: 30m")
        var dispatches = CoreHarness.dispatches(try h.iterate([Self.submit(h, tenant: "t", yaml: yaml)]))
        let job = try #require(Self.jobIDs(h.sent).first)
        #expect(dispatches.count == 2, "$0.0001 covers two worst cases of $0.00005")
        try Self.answer(h, &dispatches, tokens: 1000)
        #expect(dispatches.isEmpty)
        #expect(h.shell.board.view(job)?.waiting.contains("tenant t's hourly budget") == true)
        // Two attempts of 500 + 500 tokens at $0.02/$0.05 per million: $0.000035 each.
        #expect(abs((try Self.tenants(h)["t"]?.period.spentUSD ?? 0) - 0.00007) < 1e-12)
        dispatches = try Self.pass(h, 301)
        #expect(dispatches.count == 2, "the hour renewed")
        try Self.answer(h, &dispatches, tokens: 1000)
        #expect(try h.store.job(job)?.state == .succeeded)
        #expect(abs((try Self.tenants(h)["t"]?.period.spentUSD ?? 0) - 0.00007) < 1e-12, "the new hour counts from zero")
    }

    @Test func aTenantWithoutABudgetIsNotHeldBackButItsSpendIsShown() throws {
        let h = try CoreHarness(tenants: [TenantSpec(name: "capped", budget: TenantBudget(tokens: 1000))])
        try h.register("w0#1", slots: 8)
        var dispatches = CoreHarness.dispatches(try h.iterate([Self.submit(h, tenant: "free")]))
        #expect(dispatches.count == 4)
        try Self.answer(h, &dispatches, tokens: 500)
        let t = try Self.tenants(h)
        #expect(t["free"]?.period.spentTokens == 2000 && t["free"]?.period.limitTokens == nil)
        #expect(t["capped"]?.period.spentTokens == 0 && t["capped"]?.period.limitTokens == 1000)
        #expect(t["free"]?.usage ?? 0 > 0)
    }

    @Test func spendAndUsageSurviveARestart() throws {
        let h = try CoreHarness(scheduling: SchedulingSpec(), tenants: [TenantSpec(name: "a", weight: 2, budget: TenantBudget(tokens: 2500))])
        try h.register("w0#1", slots: 8)
        var dispatches = CoreHarness.dispatches(try h.iterate([Self.submit(h, tenant: "a")]))
        #expect(dispatches.count == 2)
        h.clock.advance(30)
        try Self.answer(h, &dispatches, tokens: 700)
        let before = try #require(try Self.tenants(h)["a"])
        #expect(before.period.spentTokens == 1400 && before.period.reservedTokens == 1000)
        #expect(before.usage > 0)
        try h.restart()
        let after = try #require(try Self.tenants(h)["a"])
        #expect(after.period.spentTokens == 1400, "spend in the period is read back from the ledger")
        #expect(after.period.reservedTokens == 1000, "the queued or dispatched attempt's reservation is held again")
        #expect(abs(after.usage - before.usage) <= before.usage * 1e-6, "\(before.usage) → \(after.usage)")
        #expect(after.weight == 2)
        Self.checkTenants(h, "after the restart")
    }

    /// A period never goes back: the wall clock stepping back across midnight, then a restart,
    /// leaves the tenant in the day it had reached with what it spent there.
    @Test func aWallClockStepBackAndARestartDoNotReopenAnEarlierPeriod() throws {
        let h = try CoreHarness(tenants: [TenantSpec(name: "t", budget: TenantBudget(tokens: 2000))])
        let day = BudgetPeriod.day
        h.clock.advance(day.end(afterStart: day.start(containing: h.clock.wallInstant)).seconds(since: h.clock.wallInstant) - 60)
        try h.register("w0#1", slots: 8)
        let yaml = Self.fourTasks.replacingOccurrences(of: "deadline: 1h", with: "deadline: 20m")
        var d = CoreHarness.dispatches(try h.iterate([Self.submit(h, tenant: "t", yaml: yaml)]))
        #expect(d.count == 2)
        try Self.answer(h, &d, tokens: 500)
        let firstDay = try #require(try Self.tenants(h)["t"]?.period)
        d += try Self.pass(h, 120)   // past midnight: a new day; the attempt reserved in the old one carries over
        #expect(d.count == 2)
        try Self.answer(h, &d, tokens: 500)
        let secondDay = try #require(try Self.tenants(h)["t"]?.period)
        #expect(firstDay.spentTokens == 1000 && secondDay.start == firstDay.end && secondDay.spentTokens == 1000, "\(firstDay) \(secondDay)")
        h.clock.wall -= 600    // the wall clock steps back into the first day
        try h.restart()
        let after = try #require(try Self.tenants(h)["t"]?.period)
        #expect(after.start == secondDay.start && after.spentTokens == secondDay.spentTokens, "\(after) vs \(secondDay)")
        // Every charge is in exactly one period: the periods on record add up to the ledger.
        let periods = try h.store.tenantPeriods("t")
        let job = try #require(Self.jobIDs(h.sent).first)
        let ledger = try h.store.ledger(of: job).reduce(0) { $0 + $1.tokensIn + $1.tokensOut }
        #expect(periods.count == 2 && periods.reduce(0) { $0 + $1.spent.tokens } == ledger, "\(periods) vs \(ledger)")
        Self.checkTenants(h, "after the step back")
    }

    @Test func usageHalvesEveryHalfLifeAndCountsGPUsAndPrices() throws {
        var scheduling = SchedulingSpec()
        scheduling.fairShare = FairShareSpec(halfLife: .seconds(3600), gpuHour: 3.6)
        let h = try CoreHarness(scheduling: scheduling)
        // Two workers: one GPU for 1 slot (0.001 USD/s) and a 2-GPU, 1-slot one (0.002 USD/s).
        try h.iterate([.worker(.register(info: WorkerInfo(WorkerRecord(name: "one", host: "h", gpus: [0], model: "m-small", slots: 1, freeMemory: 0)), running: [], finished: []),
                               from: Data("one#1".utf8))])
        let single = "name: s\nmodels: [m-small]\nbudget: {tokens: 100000}\ndeadline: 1h\nsubtasks:\n  - {id: a, prompt: x, maxTokens: 1000}\n"
        var d = CoreHarness.dispatches(try h.iterate([Self.submit(h, tenant: "x", yaml: single)]))
        h.clock.advance(100)
        try Self.answer(h, &d, tokens: 0, pass: true)
        let x = try #require(try Self.tenants(h)["x"])
        #expect(abs(x.usage - 0.1) < 1e-9, "100 s of one GPU at $3.60/h: \(x.usage)")
        try h.iterate([.worker(.register(info: WorkerInfo(WorkerRecord(name: "two", host: "h", gpus: [0, 1], model: "m-big", slots: 1, freeMemory: 0)), running: [], finished: []),
                               from: Data("two#1".utf8))])
        let big = single.replacingOccurrences(of: "m-small", with: "m-big")
        d = CoreHarness.dispatches(try h.iterate([Self.submit(h, tenant: "y", yaml: big)]))
        h.clock.advance(100)
        try Self.answer(h, &d, tokens: 1000)
        let y = try #require(try Self.tenants(h)["y"])
        // 100 s of two GPUs ($0.2) plus 1,000 tokens at m-big's prices (500 in at $0.04/M, 500 out at $0.10/M).
        #expect(abs(y.usage - (0.2 + 0.00007)) < 1e-9, "\(y.usage)")
        h.clock.advance(3600)
        let later = try Self.tenants(h)
        #expect(abs((later["y"]?.usage ?? 0) - y.usage / 2) < 1e-9, "one half-life")
        let x2 = 0.1 * exp2(-3700.0 / 3600)
        #expect(abs((later["x"]?.usage ?? 0) - x2) < 1e-9, "x's usage was recorded 3,700 s ago")
        #expect(abs((later["x"]?.usageShare ?? 0) - x2 / (x2 + y.usage / 2)) < 1e-9)
    }

    @Test func aJobWaitingForItsTenantsBudgetEndsAtItsDeadline() throws {
        let h = try CoreHarness(tenants: [TenantSpec(name: "t", budget: TenantBudget(tokens: 500))])
        try h.register("w0#1", slots: 8)
        let out = try h.iterate([Self.submit(h, tenant: "t")])
        let job = try #require(Self.jobIDs(out).first)
        #expect(CoreHarness.dispatches(out).isEmpty, "one worst case (1,000 tokens) is more than the tenant's 500")
        #expect(try h.store.job(job)?.state == .queued)
        #expect(h.shell.board.view(job)?.waiting.contains("tenant t's daily budget") == true)
        h.clock.advance(1800)
        try h.iterate()
        #expect(try h.store.job(job)?.state == .queued, "waiting is not an end")
        h.clock.advance(1801)
        try h.iterate()
        #expect(try h.store.job(job)?.state == .deadlineExceeded)
        #expect(try h.ledgerRows(job) == 0)
    }
}

/// `tenants:` in the cluster file, and the calendar of budget periods.
@Suite struct TenantConfigTests {
    static let base = "models:\n  - {name: m, price: {input: 1, output: 2}}\n"

    @Test func tenantsParseWithWeightsAndBudgets() throws {
        let c = try Cluster.parse(yaml: Self.base + """
            tenants:
              - {name: team-a, weight: 2, budget: {usd: 200, per: day}}
              - {name: team-b, budget: {tokens: 5000000, usd: 10.5, per: month}}
              - {name: team-c}
            scheduling: {fairShare: {halfLife: 1d, gpuHour: 2.5}}
            """, file: "c.yaml")
        #expect(c.tenants.map(\.name) == ["team-a", "team-b", "team-c"])
        #expect(c.tenant("team-a")?.budget == TenantBudget(usd: 200, per: .day))
        #expect(c.tenant("team-b")?.budget == TenantBudget(tokens: 5_000_000, usd: 10.5, per: .month))
        #expect(c.tenantWeights == ["team-a": 2, "team-b": 1, "team-c": 1])
        #expect(c.scheduling?.fairShare == FairShareSpec(halfLife: .seconds(86_400), gpuHour: 2.5))
    }

    @Test(arguments: [
        ("- {name: a, budget: {usd: .nan}}", "usd"),
        ("- {name: a, budget: {usd: .inf}}", "usd"),
        ("- {name: a, budget: {usd: -1}}", "USD budget"),
        ("- {name: a, budget: {usd: 0}}", "USD budget"),
        ("- {name: a, budget: {usd: 1e300}}", "USD budget"),
        ("- {name: a, budget: {tokens: -5}}", "token budget"),
        ("- {name: a, budget: {tokens: 99999999999999999999}}", "whole number"),
        ("- {name: a, budget: {per: day}}", "needs 'usd', 'tokens' or both"),
        ("- {name: a, budget: {usd: 1, per: fortnight}}", "per must be one of hour, day, week, month"),
        ("- {name: a, budget: {usd: 1, every: day}}", "every"),
        ("- {name: a, weight: 0}", "weight"),
        ("- {name: a, weight: 1e-300}", "weight"),
        ("- {name: \"a\\u0007b\"}", "\\x07"),
        ("- {name: \"\"}", "name"),
        ("- {name: a}\n  - {name: a}", "listed twice"),
        ("- {weight: 2}", "missing 'name'"),
        ("{name: a}", "must be a list"),
    ])
    func hostileTenantsAreRefusedWithTheProblemNamed(entry: String, problem: String) throws {
        do {
            _ = try Cluster.parse(yaml: Self.base + "tenants:\n  " + entry + "\n", file: "c.yaml")
            Issue.record("accepted: \(entry)")
        } catch let e as ConfigError {
            #expect(e.description.contains(problem), "\(e.description)")
            #expect(e.description.hasPrefix("c.yaml"))
        }
    }

    /// A client key bound to a tenant the list does not hold (a typo) is refused, naming it.
    @Test func aClientKeyForAnUnlistedTenantIsRefused() throws {
        let key = String(repeating: "k", count: 40)
        let curve = "coordinator:\n  curve:\n    serverKey: \"\(String(repeating: "s", count: 40))\"\n    clientKeys:\n      \"\(key)\": {role: submit, tenant: team_a}\n"
        do {
            _ = try Cluster.parse(yaml: curve + Self.base + "tenants:\n  - {name: team-a}\n", file: "c.yaml")
            Issue.record("a client key for the unlisted tenant team_a was accepted")
        } catch let e as ConfigError {
            #expect(e.description.hasPrefix("c.yaml:") && e.description.contains("'team_a'") && e.description.contains("(team-a)"), "\(e.description)")
        }
        let listed = try Cluster.parse(yaml: curve + Self.base + "tenants:\n  - {name: team_a}\n", file: "c.yaml")
        #expect(listed.coordinator.curve?.clientKeys[key]?.tenant == "team_a")
        let none = try Cluster.parse(yaml: curve + Self.base, file: "c.yaml")
        #expect(none.coordinator.curve?.clientKeys[key]?.tenant == "team_a")
    }

    @Test func aTenantWeightedInTwoPlacesIsRefused() throws {
        #expect(throws: ConfigError.self) {
            _ = try Cluster.parse(yaml: Self.base + "scheduling: {tenants: {a: 2}}\ntenants:\n  - {name: a, weight: 3}\n", file: "c.yaml")
        }
        #expect(throws: ConfigError.self) {
            _ = try Cluster.parse(yaml: Self.base + "scheduling: {fairShare: {halfLife: 0s}}\n", file: "c.yaml")
        }
    }

    @Test func periodsFollowTheUTCCalendar() {
        func t(_ s: String) -> WallInstant { WallInstant(secondsSince1970: ISO8601DateFormatter().date(from: s)!.timeIntervalSince1970) }
        let at = t("2028-02-29T13:45:10Z")   // a Tuesday in a leap year
        #expect(BudgetPeriod.hour.start(containing: at) == t("2028-02-29T13:00:00Z"))
        #expect(BudgetPeriod.day.start(containing: at) == t("2028-02-29T00:00:00Z"))
        #expect(BudgetPeriod.day.end(afterStart: t("2028-02-29T00:00:00Z")) == t("2028-03-01T00:00:00Z"))
        #expect(BudgetPeriod.week.start(containing: at) == t("2028-02-28T00:00:00Z"), "ISO weeks start on Monday")
        #expect(BudgetPeriod.week.start(containing: t("2028-03-05T23:59:59Z")) == t("2028-02-28T00:00:00Z"), "Sunday is the week's last day")
        #expect(BudgetPeriod.month.start(containing: at) == t("2028-02-01T00:00:00Z"))
        #expect(BudgetPeriod.month.end(afterStart: t("2028-02-01T00:00:00Z")) == t("2028-03-01T00:00:00Z"))
        #expect(BudgetPeriod.month.end(afterStart: t("2027-12-01T00:00:00Z")) == t("2028-01-01T00:00:00Z"))
        #expect(BudgetPeriod.week.start(containing: 0) == t("1969-12-29T00:00:00Z"))
        #expect(BudgetPeriod.day.start(containing: WallInstant(secondsSince1970: .nan)) == 0)
        for p in BudgetPeriod.allCases {
            // Every instant lies in [start, end) of its period, over ten years at odd steps.
            var x = t("2024-01-01T00:00:00Z")
            while x < t("2034-01-01T00:00:00Z") {
                let s = p.start(containing: x)
                #expect(s <= x && x < p.end(afterStart: s), "\(p) at \(x)")
                x = x.adding(seconds: 86_400 * 3.7 + 1234.5)
            }
        }
    }
}
