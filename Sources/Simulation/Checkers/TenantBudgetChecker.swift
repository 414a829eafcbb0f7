import AgentFlowCore
import Coordinator
import Store

/// Tenants' period budgets are promises like jobs' (issue 18): for every tenant the core holds,
/// `spent + reserved ≤ limit` in its current period; every charge is counted in exactly one
/// period (the periods on record add up to the ledger of the tenant's jobs, to the nano-dollar);
/// and the period in memory is the one on record.
struct TenantBudgetChecker {
    func check(_ store: Store, memory tenants: [TenantSnapshot]) throws -> String? {
        for t in tenants where !t.consistent {
            return "tenant \(t.name): period ledger inconsistent (spent \(t.spent), reserved \(t.reserved), limits "
                + "\(String(describing: t.limitTokens)) tokens / \(String(describing: t.limitUSD)))"
        }
        var charged: [String: (tokens: Int, usd: Int)] = [:]
        for r in try store.connection.query("""
            SELECT j.tenant, COALESCE(SUM(l.tokens_in + l.tokens_out), 0), COALESCE(SUM(l.usd_nano), 0)
            FROM ledger l JOIN jobs j ON j.id = l.job GROUP BY j.tenant
            """) {
            charged[r.string(0)] = (r.int(1), r.int(2))
        }
        var periods: [String: (tokens: Int, usd: Int)] = [:]
        for r in try store.connection.query("SELECT tenant, SUM(tokens), SUM(usd_nano) FROM tenant_spend GROUP BY tenant") {
            periods[r.string(0)] = (r.int(1), r.int(2))
        }
        for name in Set(charged.keys).union(periods.keys).sorted() {
            let c = charged[name] ?? (0, 0), p = periods[name] ?? (0, 0)
            if c != p {
                return "tenant \(name): its periods on record add up to \(p.tokens) tokens / \(p.usd) n$ but its jobs' ledger to \(c.tokens) / \(c.usd)"
            }
        }
        for t in tenants {
            let row = try store.connection.query("SELECT tokens, usd_nano FROM tenant_spend WHERE tenant = ? AND period_start = ?", t.name, t.periodStart.secondsSince1970).first
            let stored = (row?.int(0) ?? 0, row?.int(1) ?? 0)
            if stored != (t.spent.tokens, Int(t.spent.usd.value)) {
                return "tenant \(t.name): spent \(t.spent.tokens) tokens / \(t.spent.usd.value) n$ in memory this period, \(stored.0) / \(stored.1) on record"
            }
        }
        return nil
    }
}
