import Foundation
import Store
import Testing

/// Tenants on real processes (issue 18 item 4): a coordinator and sim workers over ZeroMQ, the
/// SQLite file read back directly.
@Suite(.serialized) struct TenantTests {
    /// Six independent subtasks of at most 1,000 tokens (a worst case of $0.00005 on smollm2-135m),
    /// half of whose attempts fail, so jobs keep asking for more.
    static let sixTasks: String = {
        var yaml = "name: six\nmodels: [smollm2-135m]\nbudget: {usd: 1}\ndeadline: 10m\nsubtasks:\n"
        for i in 0..<6 {
            yaml += "  - {id: t\(i), prompt: x, maxTokens: 1000, estimates: {smollm2-135m: {success: 0.5, tokens: 700, seconds: 2}}}\n"
        }
        return yaml
    }()

    static func appendToCluster(_ cluster: TestCluster, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cluster.clusterFile))
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
        try handle.close()
    }

    static func tenants(_ cluster: TestCluster) throws -> [String: [String: Any]] {
        let r = try cluster.cli(["tenants", "--json"], timeout: 10)
        guard r.code == 0, let list = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]] else { return [:] }
        return Dictionary(uniqueKeysWithValues: list.compactMap { t in (t["name"] as? String).map { ($0, t) } })
    }

    /// `count` jobs of `six.yaml` submitted for `tenant` at the same moment; their ids.
    static func submitTogether(_ cluster: TestCluster, _ count: Int, tenant: String, planner: String) throws -> [String] {
        let file = cluster.dir.appendingPathComponent("six.yaml").path
        try Self.sixTasks.write(toFile: file, atomically: true, encoding: .utf8)
        let ids = LockedList()
        let group = DispatchGroup()
        for seed in 1...count {
            DispatchQueue.global().async(group: group) {
                if let r = try? cluster.cli(["submit", file, "--tenant", tenant, "--planner", planner, "--seed", "\(seed)"]), r.code == 0 {
                    ids.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
        group.wait()
        return ids.values
    }

    /// Polls `tenant`'s period until nothing is reserved and its spend stays put for eight
    /// readings, expecting spent + reserved within `limitUSD` at every reading; the last spend.
    static func waitUntilSettled(_ cluster: TestCluster, _ tenant: String, limitUSD: Double) throws -> Double {
        var lastSpent = -1.0, quietReadings = 0
        for _ in 0..<200 where quietReadings < 8 {
            Thread.sleep(forTimeInterval: 0.2)
            guard let t = try Self.tenants(cluster)[tenant], let period = t["period"] as? [String: Any] else { continue }
            let spent = period["spentUSD"] as? Double ?? 0, reserved = period["reservedUSD"] as? Double ?? 0
            #expect(spent + reserved <= limitUSD + 1e-12, "spent \(spent) + reserved \(reserved)")
            quietReadings = spent == lastSpent && reserved == 0 ? quietReadings + 1 : 0
            lastSpent = spent
        }
        let last = try Self.tenants(cluster)[tenant] ?? [:]
        #expect(quietReadings >= 8, "\(tenant)'s spend never settled: \(last)")
        return lastSpent
    }

    /// Two jobs of one tenant started at the same moment, each with a budget far above the
    /// tenant's: together they never spend (nor hold) more than the tenant's day allows; both
    /// keep their state and say they wait for the tenant's budget. About 15 s.
    @Test func twoJobsOfOneTenantStartedTogetherCannotSpendPastTheDailyBudget() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 4), ("w1", "smollm2-135m", 4)], timeScale: 0.05)
        // Five worst cases: a limit the two jobs' twelve subtasks (and their retries) run into.
        try Self.appendToCluster(cluster, "tenants:\n  - {name: team-a, weight: 2, budget: {usd: 0.00025, per: day}}\n  - {name: team-b}\n")
        try cluster.startAll()
        defer { cluster.stop() }
        let file = cluster.dir.appendingPathComponent("six.yaml").path
        let jobs = try Self.submitTogether(cluster, 2, tenant: "team-a", planner: "seq:2")
        #expect(jobs.count == 2, "\(cluster.logs)")
        let limitNano = 250_000
        // Poll while they run: at no reading do spent + reserved pass the limit.
        _ = try Self.waitUntilSettled(cluster, "team-a", limitUSD: 0.00025)
        // The ledger, read from the file: both jobs together stayed within the day's budget.
        let db = try SQLiteConnection(path: cluster.database)
        let charged = try db.query("SELECT COALESCE(SUM(usd_nano), 0) FROM ledger WHERE job IN (?, ?)", jobs[0], jobs[1])[0].int(0)
        #expect(charged > 0 && charged <= limitNano, "charged \(charged) nano-dollars")
        let shown = try #require(try Self.tenants(cluster)["team-a"])
        let period = try #require(shown["period"] as? [String: Any])
        #expect(abs((period["spentUSD"] as? Double ?? 0) * 1e9 - Double(charged)) < 1, "\(period)")
        #expect(period["limitUSD"] as? Double == 0.00025 && period["per"] as? String == "day")
        #expect(shown["weight"] as? Double == 2)
        // Neither job ended for it; the unfinished ones say what they wait for.
        var waiting = 0
        for j in jobs {
            let s = try #require(try cluster.status(j))
            let state = s["state"] as? String ?? ""
            #expect(["queued", "running", "succeeded"].contains(state), "\(j): \(state) \(s["reason"] ?? "")")
            if state != "succeeded" {
                #expect((s["waiting"] as? String ?? "").contains("tenant team-a's daily budget"), "\(s["waiting"] ?? "")")
                waiting += 1
            }
        }
        #expect(waiting > 0)
        #expect((shown["jobs"] as? [String: Any])?["waitingForBudget"] as? Int == waiting)
        // Another tenant is not held back by team-a's budget.
        let other = try cluster.cli(["submit", file, "--tenant", "team-b", "--planner", "seq:2", "--wait", "--json"], timeout: 120)
        #expect(other.code == 0, "\(other.out)\(other.err)")
        // The table names each tenant.
        let table = try cluster.cli(["tenants"])
        #expect(table.code == 0 && table.out.contains("team-a") && table.out.contains("team-b") && table.out.contains("renews"), "\(table.out)")
    }

    /// Twelve jobs of one tenant at once and the coordinator killed with SIGKILL twice while they
    /// run: a restart neither reopens the tenant's day budget (the ledger in the file stays within
    /// it, the period's spend on record equals the ledger) nor resets the fair-share decay (usage
    /// read before and after a restart follows the 6 s half-life). About 30 s.
    @Test func killingTheCoordinatorNeitherReopensTheBudgetNorResetsTheDecay() throws {
        // Attempts of about a second: the first kill finds some in flight.
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 4), ("w1", "smollm2-135m", 4)], timeScale: 0.5)
        try Self.appendToCluster(cluster, "tenants:\n  - {name: team-a, budget: {usd: 0.0003, per: day}}\nscheduling: {fairShare: {halfLife: 6s}}\n")
        try cluster.startAll()
        defer { cluster.stop() }
        let jobs = try Self.submitTogether(cluster, 12, tenant: "team-a", planner: "seq:3")
        try #require(jobs.count == 12, "\(cluster.logs)")
        func period() throws -> [String: Any]? { try Self.tenants(cluster)["team-a"]?["period"] as? [String: Any] }
        // Killed first with attempts in flight (something reserved), then again just after it
        // came back (while it takes the running attempts' reservations back from the store).
        try waitUntil(timeout: 30, "team-a has attempts out") { ((try period())?["reservedUSD"] as? Double ?? 0) > 0 }
        for _ in 1...2 {
            cluster.coordinator?.kill9()
            try cluster.startCoordinator()
            try waitUntil(timeout: 20, "the coordinator answers again") { (try? period()) != nil }
            Thread.sleep(forTimeInterval: 0.3)
        }
        let lastSpent = try Self.waitUntilSettled(cluster, "team-a", limitUSD: 0.0003)
        let db = try SQLiteConnection(path: cluster.database)
        let charged = try db.query("SELECT COALESCE(SUM(l.usd_nano), 0) FROM ledger l JOIN jobs j ON j.id = l.job WHERE j.tenant = 'team-a'")[0].int(0)
        #expect(try db.query("SELECT COUNT(*) FROM jobs WHERE tenant = 'team-a'")[0].int(0) == 12)
        let recorded = try db.query("SELECT COALESCE(SUM(usd_nano), 0) FROM tenant_spend WHERE tenant = 'team-a'")[0].int(0)
        #expect(charged > 0 && charged <= 300_000, "charged \(charged) nano-dollars, limit 300000")
        #expect(recorded == charged, "tenant_spend \(recorded) vs ledger \(charged)")
        #expect(abs(lastSpent * 1e9 - Double(charged)) < 1)
        // Nothing runs now (the budget holds every job back): usage only decays, restart or not.
        let before = try #require(try Self.tenants(cluster)["team-a"]?["usage"] as? Double)
        let t0 = Date()
        #expect(before > 0)
        Thread.sleep(forTimeInterval: 3)
        cluster.coordinator?.kill9()
        try cluster.startCoordinator()
        try waitUntil(timeout: 20, "the coordinator answers again") { (try? period()) != nil }
        let after = try #require(try Self.tenants(cluster)["team-a"]?["usage"] as? Double)
        let elapsed = Date().timeIntervalSince(t0)
        // Within the readings' own timing (each CLI call takes up to a second under load).
        let low = before * pow(2, -(elapsed + 1.5) / 6), high = before * pow(2, -max(elapsed - 1.5, 0) / 6)
        #expect(after >= low && after <= high, "usage \(before) → \(after) after \(elapsed) s; expected \(low)…\(high)")
        print("team-a: 12 jobs, charged \(charged) of 300000 nano-USD across two SIGKILLs; usage \(before) → \(after) over \(String(format: "%.1f", elapsed)) s and a SIGKILL (half-life 6 s)")
    }

    /// Hostile tenant names are refused with the problem named, nothing submitted.
    @Test func hostileTenantNamesAreRefused() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 1)], timeScale: 0.05)
        try cluster.startAll()
        defer { cluster.stop() }
        let file = cluster.dir.appendingPathComponent("six.yaml").path
        try Self.sixTasks.write(toFile: file, atomically: true, encoding: .utf8)
        for name in ["a\u{7}b", "", String(repeating: "x", count: 65), "team a", "../etc", "t\u{202e}"] {
            let r = try cluster.cli(["submit", file, "--tenant", name])
            #expect(r.code == 2, "\(Array(name.unicodeScalars)): \(r.out)\(r.err)")
            #expect(r.err.contains("--tenant"), "\(r.err)")
        }
        let db = try SQLiteConnection(path: cluster.database)
        #expect(try db.query("SELECT COUNT(*) FROM jobs")[0].int(0) == 0)
    }

    /// Fair-share usage and the period's spend are persisted: a coordinator killed with SIGKILL
    /// and started again reads them back. About 10 s.
    @Test func fairShareUsageSurvivesACoordinatorRestart() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.05)
        try Self.appendToCluster(cluster, "tenants:\n  - {name: t, budget: {tokens: 1000000, per: week}}\nscheduling: {fairShare: {halfLife: 30d}}\n")
        try cluster.startAll()
        defer { cluster.stop() }
        let file = cluster.dir.appendingPathComponent("six.yaml").path
        try Self.sixTasks.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try cluster.cli(["submit", file, "--tenant", "t", "--planner", "seq:1", "--wait", "--json"], timeout: 120)
        #expect(r.code == 0 || r.code == 1, "\(r.out)\(r.err)")
        Thread.sleep(forTimeInterval: 1.5)   // the batch that wrote the last usage has committed
        let before = try #require(try Self.tenants(cluster)["t"])
        let usage = before["usage"] as? Double ?? 0
        let spent = (before["period"] as? [String: Any])?["spentTokens"] as? Int ?? 0
        #expect(usage > 0 && spent > 0, "\(before)")
        cluster.coordinator?.kill9()
        try cluster.startCoordinator()
        try waitUntil(timeout: 20, "the coordinator answers again") { (try? Self.tenants(cluster)["t"]) != nil }
        let after = try #require(try Self.tenants(cluster)["t"])
        let usageAfter = after["usage"] as? Double ?? 0
        // A 30-day half-life: the seconds of the restart move it by a few parts per million.
        #expect(usageAfter > 0 && abs(usageAfter - usage) <= usage * 1e-4, "usage \(usage) → \(usageAfter)")
        #expect((after["period"] as? [String: Any])?["spentTokens"] as? Int == spent)
        #expect((after["period"] as? [String: Any])?["per"] as? String == "week")
    }
}
