import Prometheus

/// Tenancy's families (issue 18): each tenant's spend in its budget period against its limit,
/// its fair-share usage and share, its jobs, and requests refused for want of a right.
extension MetricCatalogue {
    public static let tenantSpentUSD = MetricFamily(
        "agentflow_tenant_period_spent_usd", .gauge, labels: ["tenant"],
        help: "US dollars charged to a tenant's jobs in its current budget period (UTC hour, day, week or month; day without a budget).")
    public static let tenantSpentTokens = MetricFamily(
        "agentflow_tenant_period_spent_tokens", .gauge, labels: ["tenant"],
        help: "Tokens charged to a tenant's jobs in its current budget period.")
    public static let tenantReservedUSD = MetricFamily(
        "agentflow_tenant_period_reserved_usd", .gauge, labels: ["tenant"],
        help: "US dollars held for a tenant's queued and running attempts; spent plus reserved never exceeds the limit.")
    public static let tenantLimitUSD = MetricFamily(
        "agentflow_tenant_period_limit_usd", .gauge, labels: ["tenant"],
        help: "A tenant's budget per period in US dollars (tenants: budget.usd); absent without one.")
    public static let tenantLimitTokens = MetricFamily(
        "agentflow_tenant_period_limit_tokens", .gauge, labels: ["tenant"],
        help: "A tenant's budget per period in tokens (tenants: budget.tokens); absent without one.")
    public static let tenantUsage = MetricFamily(
        "agentflow_tenant_usage", .gauge, labels: ["tenant"],
        help: "A tenant's fair-share usage in USD-equivalent (charges at model prices plus GPU time at scheduling.fairShare.gpuHour), halving every fairShare.halfLife.")
    public static let tenantShare = MetricFamily(
        "agentflow_tenant_share", .gauge, labels: ["tenant"],
        help: "A tenant's weight over the weights of every tenant the coordinator knows (0 to 1).")
    public static let tenantJobs = MetricFamily(
        "agentflow_tenant_jobs", .gauge, labels: ["tenant", "state"],
        help: "A tenant's unfinished jobs by state: queued, running, and waiting_for_budget (of either, those whose next attempt the tenant's period budget cannot cover).")
    public static let refusedRequests = MetricFamily(
        "agentflow_refused_requests_total", .counter, labels: ["right"],
        help: "Client requests refused for want of a right, by the right missing: read, submit, admin, tenant (another tenant's job or tenant), client (a worker key used as a client), worker (a client key registering a worker).")

    static let tenancy: [MetricFamily] = [
        tenantSpentUSD, tenantSpentTokens, tenantReservedUSD, tenantLimitUSD, tenantLimitTokens, tenantUsage, tenantShare, tenantJobs,
        refusedRequests,
    ]
}

extension CoordinatorMetrics {
    /// A tenant's gauges, as the coordinator sees it now.
    public struct TenantState: Sendable, Equatable {
        public var name: String
        public var spentUSD: Double
        public var spentTokens: Int
        public var reservedUSD: Double
        public var limitUSD: Double?
        public var limitTokens: Int?
        public var usage: Double
        public var share: Double
        public var queued: Int
        public var running: Int
        public var waitingForBudget: Int

        public init(name: String, spentUSD: Double, spentTokens: Int, reservedUSD: Double, limitUSD: Double?, limitTokens: Int?, usage: Double,
                    share: Double, queued: Int, running: Int, waitingForBudget: Int) {
            self.name = name
            self.spentUSD = spentUSD
            self.spentTokens = spentTokens
            self.reservedUSD = reservedUSD
            self.limitUSD = limitUSD
            self.limitTokens = limitTokens
            self.usage = usage
            self.share = share
            self.queued = queued
            self.running = running
            self.waitingForBudget = waitingForBudget
        }
    }

    /// Every tenant now. Tenants past ``tenantLimit`` are summed under `tenant="other"`.
    public func tenants(_ tenants: [TenantState]) {
        var byLabel: [String: TenantState] = [:]
        for t in tenants {
            let label = tenantLabel(t.name)
            guard var sum = byLabel[label] else {
                byLabel[label] = t
                continue
            }
            sum.spentUSD += t.spentUSD
            sum.spentTokens = sum.spentTokens.addingReportingOverflow(t.spentTokens).overflow ? .max : sum.spentTokens + t.spentTokens
            sum.reservedUSD += t.reservedUSD
            sum.limitUSD = nil
            sum.limitTokens = nil
            sum.usage += t.usage
            sum.share += t.share
            sum.queued += t.queued
            sum.running += t.running
            sum.waitingForBudget += t.waitingForBudget
            byLabel[label] = sum
        }
        for (label, t) in byLabel {
            gauge(MetricCatalogue.tenantSpentUSD, [label]).set(to: t.spentUSD)
            gauge(MetricCatalogue.tenantSpentTokens, [label]).set(to: Double(t.spentTokens))
            gauge(MetricCatalogue.tenantReservedUSD, [label]).set(to: t.reservedUSD)
            if let l = t.limitUSD { gauge(MetricCatalogue.tenantLimitUSD, [label]).set(to: l) } else { removeGauge(Self.key(MetricCatalogue.tenantLimitUSD, [label])) }
            if let l = t.limitTokens { gauge(MetricCatalogue.tenantLimitTokens, [label]).set(to: Double(l)) } else {
                removeGauge(Self.key(MetricCatalogue.tenantLimitTokens, [label]))
            }
            gauge(MetricCatalogue.tenantUsage, [label]).set(to: t.usage.isFinite ? t.usage : 0)
            gauge(MetricCatalogue.tenantShare, [label]).set(to: t.share.isFinite ? t.share : 0)
            for (state, n) in [("queued", t.queued), ("running", t.running), ("waiting_for_budget", t.waitingForBudget)] {
                gauge(MetricCatalogue.tenantJobs, [label, state]).set(to: Double(n))
            }
        }
    }

}

/// Requests refused for want of a right (``MetricCatalogue/refusedRequests``), counted wherever
/// the refusal is decided: the coordinator's loop, its query thread, the HTTP server. The series
/// are made once, one per right, so counting is thread-safe (swift-prometheus counters are
/// atomic and a registry hands every maker the same series).
public final class RefusalMetrics: Sendable {
    /// The right a refused request lacked, as the `right` label says it.
    public enum Right: String, CaseIterable, Sendable {
        case read, submit, admin
        /// Another tenant's job or tenant, or a job for another tenant.
        case tenant
        /// A worker's key used for a client request.
        case client
        /// A client's key used to register a worker.
        case worker
    }

    let counters: [Right: Counter]

    public init(registry: MetricsRegistry = .shared) {
        counters = Dictionary(uniqueKeysWithValues: Right.allCases.map {
            ($0, registry.registry.makeCounter(descriptor: MetricCatalogue.refusedRequests.descriptor, labels: [("right", $0.rawValue)]))
        })
    }

    public func refused(_ right: Right) { counters[right]?.increment() }
}
