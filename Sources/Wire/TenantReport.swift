/// One tenant as `agentflow tenants` and `GET /api/v1/tenants` show it: its fair share (weight,
/// share of the weights, decayed usage and the part of all usage that is its), its spend in the
/// current budget period against its limits, and its jobs.
public struct TenantReport: Codable, Sendable, Equatable {
    public var name: String
    public var weight: Double
    /// Its weight over the weights of every tenant shown: the part of the fleet it is entitled to.
    public var share: Double
    /// Fair-share usage in USD-equivalent (charges at model prices plus GPU time), decayed to now.
    public var usage: Double
    /// Its usage over every tenant's: the part of the fleet it has had lately.
    public var usageShare: Double
    public var period: TenantPeriodReport
    public var jobs: TenantJobCounts

    public init(name: String, weight: Double, share: Double, usage: Double, usageShare: Double, period: TenantPeriodReport, jobs: TenantJobCounts) {
        self.name = name
        self.weight = weight
        self.share = share
        self.usage = usage
        self.usageShare = usageShare
        self.period = period
        self.jobs = jobs
    }
}

/// A tenant's spend in its current budget period. Limits that are not set encode as `null`.
public struct TenantPeriodReport: Codable, Sendable, Equatable {
    /// `hour`, `day`, `week` or `month` (UTC); `day` for a tenant without a budget.
    public var per: String
    /// ISO 8601 times the period began and ends (its budget renews then).
    public var start: String
    public var end: String
    @ExplicitNull public var limitUSD: Double?
    @ExplicitNull public var limitTokens: Int?
    public var spentUSD: Double
    public var spentTokens: Int
    /// Held for attempts queued or running now (spent + reserved ≤ limit).
    public var reservedUSD: Double
    public var reservedTokens: Int

    public init(per: String, start: String, end: String, limitUSD: Double?, limitTokens: Int?, spentUSD: Double, spentTokens: Int,
                reservedUSD: Double, reservedTokens: Int) {
        self.per = per
        self.start = start
        self.end = end
        self.limitUSD = limitUSD
        self.limitTokens = limitTokens
        self.spentUSD = spentUSD
        self.spentTokens = spentTokens
        self.reservedUSD = reservedUSD
        self.reservedTokens = reservedTokens
    }
}

/// A tenant's unfinished jobs: not yet admitted, admitted, and — of either — waiting for its
/// period budget.
public struct TenantJobCounts: Codable, Sendable, Equatable {
    public var queued: Int
    public var running: Int
    public var waitingForBudget: Int

    public init(queued: Int, running: Int, waitingForBudget: Int) {
        self.queued = queued
        self.running = running
        self.waitingForBudget = waitingForBudget
    }
}
