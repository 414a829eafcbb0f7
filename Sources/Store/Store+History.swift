import AgentFlowCore
import Foundation

/// Reads for the operator surface: job lists with filters, ledger lines with their order, counts.
extension Store {
    /// Jobs matching the filters (nil: any), newest first, one page; and how many match in all.
    public func jobs(state: String?, workflow: String?, tenant: String? = nil, limit: Int, offset: Int) throws -> (jobs: [JobRecord], total: Int) {
        let filters = [("state", state), ("workflow", workflow), ("tenant", tenant)].compactMap { column, value in value.map { (column, $0) } }
        let whereClause = filters.isEmpty ? "" : "WHERE " + filters.map { "\($0.0) = ?" }.joined(separator: " AND ")
        let values: [any SQLBindable] = filters.map(\.1)
        let total = try connection.query("SELECT COUNT(*) FROM jobs \(whereClause)", arguments: values).first?.int(0) ?? 0
        let rows = try connection.query("SELECT \(Self.jobColumns) FROM jobs \(whereClause) ORDER BY submitted_at DESC LIMIT ? OFFSET ?",
                                        arguments: values + [limit, offset]).map(job(from:))
        return (rows, total)
    }

    /// The ledger of a job in order, each line with its sequence number.
    public func ledgerLines(of job: String) throws -> [(seq: Int, entry: LedgerEntry)] {
        try connection.query("SELECT seq, job, subtask, n, role, model, tokens_in, tokens_out, usd_nano, kind, at FROM ledger WHERE job = ? ORDER BY seq", job).map { r in
            (r.int(0), LedgerEntry(attempt: AttemptID(job: r.string(1), subtask: r.string(2), n: r.int(3)), role: r.string(4), model: r.string(5),
                                   tokensIn: r.int(6), tokensOut: r.int(7), usd: NanoUSD(Int64(r.int(8))), kind: r.string(9), at: r.wallInstant(10)))
        }
    }

    /// Jobs per state.
    public func jobCountsByState() throws -> [String: Int] {
        var result: [String: Int] = [:]
        for r in try connection.query("SELECT state, COUNT(*) FROM jobs GROUP BY state") { result[r.string(0)] = r.int(1) }
        return result
    }
}
