import AgentFlowCore
import Foundation

/// What a restarting coordinator needs about tenants: each one's spend in its latest budget
/// period and its fair-share usage, as last committed.
public struct TenantRows: Sendable, Equatable {
    /// Tenant → its latest period with spend on record.
    public var spend: [String: TenantSpend]
    /// Tenant → fair-share usage (USD-equivalent) and the wall-clock time it stood at that value.
    public var usage: [String: TenantUsage]

    public init(spend: [String: TenantSpend] = [:], usage: [String: TenantUsage] = [:]) {
        self.spend = spend
        self.usage = usage
    }
}

/// What a tenant's jobs were charged in one budget period (the period that began at `periodStart`).
public struct TenantSpend: Sendable, Equatable {
    public var periodStart: WallInstant
    public var spent: Amount

    public init(periodStart: WallInstant, spent: Amount) {
        self.periodStart = periodStart
        self.spent = spent
    }
}

/// A tenant's decaying fair-share usage at one moment.
public struct TenantUsage: Sendable, Equatable {
    public var usage: Double
    public var at: WallInstant

    public init(usage: Double, at: WallInstant) {
        self.usage = usage
        self.at = at
    }
}

/// Tenants' rows: `tenant_spend` holds what each tenant was charged per budget period (written
/// in the same transaction as the ledger rows it sums, so a period's spend is never read back
/// smaller than what was charged in it, whatever the wall clock did), `tenant_usage` its
/// fair-share usage.
extension Store {
    /// Every tenant's latest period and its stored usage.
    public func tenantRows() throws -> TenantRows {
        var rows = TenantRows()
        for r in try connection.query("""
            SELECT tenant, period_start, tokens, usd_nano FROM tenant_spend s
            WHERE period_start = (SELECT MAX(period_start) FROM tenant_spend WHERE tenant = s.tenant)
            """) {
            // Saturating reads: a row an operator edited cannot trap the restart.
            let start = r.double(1)
            rows.spend[r.string(0)] = TenantSpend(periodStart: WallInstant(secondsSince1970: start.isFinite ? start : 0),
                                                  spent: Amount(tokens: max(0, r.int(2)), usd: NanoUSD(Int64(max(0, r.int(3))))))
        }
        for r in try connection.query("SELECT tenant, usage, at FROM tenant_usage") {
            let usage = r.double(1), at = r.double(2)
            // A row nobody could have written (negative, NaN, infinite) counts as no usage.
            rows.usage[r.string(0)] = TenantUsage(usage: usage.isFinite && usage >= 0 ? usage : 0, at: WallInstant(secondsSince1970: at.isFinite ? at : 0))
        }
        return rows
    }

    /// Every period on record for `tenant`, oldest first.
    public func tenantPeriods(_ tenant: String) throws -> [TenantSpend] {
        try connection.query("SELECT period_start, tokens, usd_nano FROM tenant_spend WHERE tenant = ? ORDER BY period_start", tenant).map {
            TenantSpend(periodStart: WallInstant(secondsSince1970: $0.double(0)), spent: Amount(tokens: $0.int(1), usd: NanoUSD(Int64($0.int(2)))))
        }
    }

    func saveTenantUsage(_ tenant: String, usage: Double, at: WallInstant) throws {
        try connection.run("""
            INSERT INTO tenant_usage (tenant, usage, at) VALUES (?, ?, ?)
            ON CONFLICT(tenant) DO UPDATE SET usage = excluded.usage, at = excluded.at
            """, tenant, usage, at.secondsSince1970)
    }

    func saveTenantSpend(_ tenant: String, _ spend: TenantSpend) throws {
        try connection.run("""
            INSERT INTO tenant_spend (tenant, period_start, tokens, usd_nano) VALUES (?, ?, ?, ?)
            ON CONFLICT(tenant, period_start) DO UPDATE SET tokens = excluded.tokens, usd_nano = excluded.usd_nano
            """, tenant, spend.periodStart.secondsSince1970, spend.spent.tokens, spend.spent.usd.value)
    }
}
