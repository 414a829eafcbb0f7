import Foundation
import Yams

/// The calendar period a tenant's budget renews over, in UTC: a clock hour, a day from
/// midnight, an ISO week from Monday, a calendar month from its first.
public enum BudgetPeriod: String, Codable, Sendable, CaseIterable {
    case hour, day, week, month

    /// When the period holding `instant` began (a reading that is no number: 1970's start).
    public func start(containing instant: WallInstant) -> WallInstant {
        WallInstant(secondsSince1970: startSeconds(containing: instant.secondsSince1970))
    }

    /// When the period that began at `start` ends (the next one begins).
    public func end(afterStart start: WallInstant) -> WallInstant {
        WallInstant(secondsSince1970: endSeconds(afterStart: start.secondsSince1970))
    }

    private func startSeconds(containing t: Double) -> Double {
        guard t.isFinite else { return 0 }
        let day = (t / 86_400).rounded(.down)
        switch self {
        case .hour: return (t / 3600).rounded(.down) * 3600
        case .day: return day * 86_400
        case .week:
            // 1970-01-01 was a Thursday: Monday is three days on from it, mod 7.
            let sinceMonday = (day + 3).truncatingRemainder(dividingBy: 7)
            return (day - (sinceMonday < 0 ? sinceMonday + 7 : sinceMonday)) * 86_400
        case .month:
            let (y, m, _) = Self.civil(fromDays: Int(day))
            return Double(Self.days(year: y, month: m, day: 1)) * 86_400
        }
    }

    private func endSeconds(afterStart start: Double) -> Double {
        switch self {
        case .hour: return start + 3600
        case .day: return start + 86_400
        case .week: return start + 7 * 86_400
        case .month:
            let (y, m, _) = Self.civil(fromDays: Int((start / 86_400).rounded(.down)))
            return Double(m == 12 ? Self.days(year: y + 1, month: 1, day: 1) : Self.days(year: y, month: m + 1, day: 1)) * 86_400
        }
    }

    /// "per day" as people write it: daily, hourly, weekly, monthly.
    public var adjective: String {
        switch self {
        case .hour: "hourly"
        case .day: "daily"
        case .week: "weekly"
        case .month: "monthly"
        }
    }

    // Days since 1970-01-01 ↔ proleptic Gregorian dates (H. Hinnant's civil algorithms).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// A tenant's budget per period (`budget: {usd: 200, tokens: 5000000, per: day}`): what all
/// of its jobs together may spend in one period. Enforced like a job's budget, by reservation
/// before dispatch.
public struct TenantBudget: Codable, Sendable, Equatable {
    public var tokens: Int?
    public var usd: Double?
    public var per: BudgetPeriod

    public init(tokens: Int? = nil, usd: Double? = nil, per: BudgetPeriod = .day) {
        self.tokens = tokens
        self.usd = usd
        self.per = per
    }
}

/// A team sharing the fleet (`tenants:` in cluster.yaml): its fair-share weight and, optionally,
/// a budget per period.
public struct TenantSpec: Codable, Sendable, Equatable {
    public var name: String
    public var weight: Double
    public var budget: TenantBudget?

    public init(name: String, weight: Double = 1, budget: TenantBudget? = nil) {
        self.name = name
        self.weight = weight
        self.budget = budget
    }
}

/// How fair-share usage is measured and forgotten (`scheduling.fairShare`): each finished
/// attempt adds what it cost — its charge at the model's price, plus its slot's share of the
/// worker's GPUs × its seconds × `gpuHour` / 3600 — and the total halves every `halfLife`
/// (Slurm's `PriorityDecayHalfLife`), so a team that used the fleet heavily last week is not
/// held back for ever.
public struct FairShareSpec: Codable, Sendable, Equatable {
    public var halfLife: Duration = .seconds(7 * 86_400)
    /// USD one GPU-hour counts as (a worker without GPUs counts as one device).
    public var gpuHour: Double = 2

    public init(halfLife: Duration = .seconds(7 * 86_400), gpuHour: Double = 2) {
        self.halfLife = halfLife
        self.gpuHour = gpuHour
    }

    /// `usage` recorded at `at`, as it stands at `now` (no decay backwards if the clock stepped back).
    public func decayed(_ usage: Double, from at: WallInstant, to now: WallInstant) -> Double {
        let dt = now.seconds(since: at)
        guard dt > 0, dt.isFinite, usage.isFinite else { return usage.isFinite ? usage : 0 }
        return usage * exp2(-dt / halfLife.seconds)
    }
}

extension Cluster {
    /// The tenant named `name` in `tenants:`, if any.
    public func tenant(_ name: String) -> TenantSpec? { tenants.first { $0.name == name } }

    /// Tenant → fair-share weight, from `tenants:` and the older `scheduling.tenants` map.
    public var tenantWeights: [String: Double] {
        var w = scheduling?.tenants ?? [:]
        for t in tenants { w[t.name] = t.weight }
        return w
    }

    /// `tenants: [{name: team-a, weight: 2, budget: {usd: 200, per: day}}, ...]`.
    static func parseTenants(_ node: Node, _ r: YAMLReader, scheduling: SchedulingSpec?) throws -> [TenantSpec] {
        var out: [TenantSpec] = []
        for item in try r.sequence(node, "tenants") {
            let m = try r.mapping(item, "a tenant")
            try r.checkKeys(m, allowed: ["name", "weight", "budget"], in: "a tenant")
            guard let nameNode = m["name"] else { throw r.error(item, "a tenant is missing 'name'") }
            let name = try r.string(nameNode, "a tenant's name")
            if let problem = Limits.name(name, "a tenant's name") { throw r.error(nameNode, problem) }
            if out.contains(where: { $0.name == name }) { throw r.error(nameNode, "tenant '\(name)' is listed twice") }
            if scheduling?.tenants[name] != nil {
                throw r.error(nameNode, "tenant '\(name)' also has a weight in scheduling.tenants; give it in one place (tenants:)")
            }
            var spec = TenantSpec(name: name)
            if let n = m["weight"] {
                spec.weight = try r.double(n, "the weight of tenant '\(name)'")
                if let problem = Limits.tenantWeight(spec.weight, "the weight of tenant '\(name)'") { throw r.error(n, problem) }
            }
            if let b = m["budget"] { spec.budget = try parseTenantBudget(b, r, tenant: name) }
            out.append(spec)
        }
        return out
    }

    static func parseTenantBudget(_ node: Node, _ r: YAMLReader, tenant name: String) throws -> TenantBudget {
        let what = "the budget of tenant '\(name)'"
        let m = try r.mapping(node, what)
        try r.checkKeys(m, allowed: ["usd", "tokens", "per"], in: what)
        var budget = TenantBudget()
        if let n = m["usd"] {
            let usd = try r.double(n, "\(what): usd")
            if let problem = Limits.budgetUSD(usd) { throw r.error(n, "\(what): \(problem)") }
            budget.usd = usd
        }
        if let n = m["tokens"] {
            let tokens = try r.int(n, "\(what): tokens")
            if let problem = Limits.budgetTokens(tokens) { throw r.error(n, "\(what): \(problem)") }
            budget.tokens = tokens
        }
        if budget.usd == nil && budget.tokens == nil { throw r.error(node, "\(what) needs 'usd', 'tokens' or both") }
        if let n = m["per"] {
            let text = try r.string(n, "\(what): per")
            guard let per = BudgetPeriod(rawValue: text) else {
                throw r.error(n, "\(what): per must be one of \(BudgetPeriod.allCases.map(\.rawValue).joined(separator: ", ")), got \(Limits.printable(text))")
            }
            budget.per = per
        }
        return budget
    }

    /// `scheduling.fairShare: {halfLife: 7d, gpuHour: 2.0}`.
    static func parseFairShare(_ node: Node, _ r: YAMLReader) throws -> FairShareSpec {
        let m = try r.mapping(node, "scheduling.fairShare")
        try r.checkKeys(m, allowed: ["halfLife", "gpuHour"], in: "scheduling.fairShare")
        var spec = FairShareSpec()
        if let n = m["halfLife"] {
            // A year at most: a longer half-life never forgets, which is what the old totals did.
            spec.halfLife = try r.duration(n, "scheduling.fairShare.halfLife", in: .seconds(1) ... .seconds(366 * 86_400))
        }
        if let n = m["gpuHour"] {
            spec.gpuHour = try r.double(n, "scheduling.fairShare.gpuHour")
            if let problem = Limits.number(spec.gpuHour, 0...10_000, "scheduling.fairShare.gpuHour (USD)") { throw r.error(n, problem) }
        }
        return spec
    }
}
