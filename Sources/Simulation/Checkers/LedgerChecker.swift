import AgentFlowCore
import Coordinator
import Store

/// The append-only ledger is the truth about spend: it sums to each job's stored spend and to
/// the spend the core holds in memory; no attempt is settled twice (a role charged twice, or
/// two kinds of settlement); no attempt has ledger rows while it is still live.
struct LedgerChecker {
    func check(_ store: Store, memory jobs: [JobSnapshot]) throws -> String? {
        let sums = try store.connection.query("""
            SELECT j.id, j.spent_tokens, j.spent_usd_nano, COALESCE(SUM(l.tokens_in + l.tokens_out), 0), COALESCE(SUM(l.usd_nano), 0)
            FROM jobs j LEFT JOIN ledger l ON l.job = j.id GROUP BY j.id ORDER BY j.id
            """)
        let memory = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0.spent) })
        for r in sums {
            let id = r.string(0)
            if r.int(1) != r.int(3) || r.int(2) != r.int(4) {
                return "job \(id): stored spend \(r.int(1)) tokens / \(r.int(2)) n$ but the ledger sums to \(r.int(3)) / \(r.int(4))"
            }
            if let m = memory[id], m.tokens != r.int(1) || Int(m.usd.value) != r.int(2) {
                return "job \(id): spend in memory \(m.tokens) differs from the store's \(r.int(1))"
            }
        }
        let twice = try store.connection.query("""
            SELECT job, subtask, n FROM ledger GROUP BY job, subtask, n
            HAVING COUNT(DISTINCT kind) > 1 OR COUNT(*) > COUNT(DISTINCT role) LIMIT 1
            """)
        if let t = twice.first { return "attempt \(t.string(0))/\(t.string(1))#\(t.int(2)) settled twice" }
        let loose = try store.connection.query("""
            SELECT l.job, l.subtask, l.n FROM ledger l JOIN attempts a ON a.job = l.job AND a.subtask = l.subtask AND a.n = l.n
            WHERE a.state IN ('queued', 'dispatched') LIMIT 1
            """)
        if let t = loose.first { return "attempt \(t.string(0))/\(t.string(1))#\(t.int(2)) has ledger rows but is still live" }
        return nil
    }
}
