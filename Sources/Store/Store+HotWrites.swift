import AgentFlowCore

/// Statements for the writes every attempt makes, prepared on first use and kept for the
/// connection's life (``Store/hot``).
final class HotStatements {
    /// Ledger rows per multi-row INSERT.
    static let ledgerBatch = 16
    static let ledgerColumns = "(job, subtask, n, role, model, tokens_in, tokens_out, usd_nano, kind, at)"
    static let ledgerRow = "(?,?,?,?,?,?,?,?,?,?)"

    let connection: SQLiteConnection
    private var attemptStatement, dispatchedStatement, subtaskStatement, jobStatement, ledgerOne, ledgerMany: SQLStatement?

    init(_ connection: SQLiteConnection) { self.connection = connection }

    private func cached(_ slot: inout SQLStatement?, _ sql: @autoclosure () -> String) throws -> SQLStatement {
        if let s = slot { return s }
        let s = try SQLStatement(connection, sql())
        slot = s
        return s
    }

    static let attemptSQL = """
        INSERT INTO attempts (job, subtask, n, model, worker, state, token_cap, reserved_tokens, reserved_usd_nano,
          tokens_in, tokens_out, usd_nano, deadline, created_at, dispatched_at, ended_at, detail)
        VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
        ON CONFLICT(job, subtask, n) DO UPDATE SET worker=excluded.worker, state=excluded.state,
          tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, usd_nano=excluded.usd_nano,
          dispatched_at=excluded.dispatched_at, ended_at=excluded.ended_at, detail=excluded.detail
        """
    static let dispatchedSQL = "UPDATE attempts SET worker=?, state='dispatched', dispatched_at=?, deadline=? WHERE job=? AND subtask=? AND n=?"
    static let subtaskSQL = """
        INSERT INTO subtasks (job, id, state, model, attempts, tokens, usd_nano, output) VALUES (?,?,?,?,?,?,?,?)
        ON CONFLICT(job, id) DO UPDATE SET state=excluded.state, model=excluded.model, attempts=excluded.attempts,
          tokens=excluded.tokens, usd_nano=excluded.usd_nano, output=excluded.output
        """
    static let jobSQL = "UPDATE jobs SET state=?, reason=?, spent_tokens=?, spent_usd_nano=?, started_at=?, ended_at=? WHERE id=?"
    static func ledgerSQL(rows: Int) -> String {
        "INSERT INTO ledger \(ledgerColumns) VALUES " + Array(repeating: ledgerRow, count: rows).joined(separator: ",")
    }
    static let ledgerManySQL = ledgerSQL(rows: ledgerBatch)
    static let ledgerOneSQL = ledgerSQL(rows: 1)

    func attempt() throws -> SQLStatement { try cached(&attemptStatement, Self.attemptSQL) }
    func dispatched() throws -> SQLStatement { try cached(&dispatchedStatement, Self.dispatchedSQL) }
    func subtask() throws -> SQLStatement { try cached(&subtaskStatement, Self.subtaskSQL) }
    func job() throws -> SQLStatement { try cached(&jobStatement, Self.jobSQL) }

    func ledger(rows: Int) throws -> SQLStatement {
        if rows == Self.ledgerBatch { return try cached(&ledgerMany, Self.ledgerManySQL) }
        precondition(rows == 1, "ledger statements hold 1 or \(Self.ledgerBatch) rows")
        return try cached(&ledgerOne, Self.ledgerOneSQL)
    }
}

/// The writes every attempt makes — queued, dispatched, ended, charged, its subtask's and its
/// job's row — through ``HotStatements``: bound by position with typed values (no SQL-text
/// lookup, no boxed arguments), the ledger's rows sixteen to a statement. On PostgreSQL the same
/// statements join the transaction's pipeline (prepared once per connection by
/// ``PostgresConnection``), so an iteration's writes still cost one round trip.
extension Store {
    /// Updates what changes while a job runs (state, reason, spend, times); cheaper than `save`,
    /// which re-binds the whole workflow text.
    public func update(_ j: JobRecord) throws {
        guard let hot else {
            return try connection.run(HotStatements.jobSQL, j.state.rawValue, j.reason, j.spentTokens, j.spentUSD.value, j.startedAt, j.endedAt, j.id)
        }
        let s = try hot.job()
        try s.bind(1, j.state.rawValue)
        try s.bind(2, j.reason)
        try s.bind(3, j.spentTokens)
        try s.bind(4, j.spentUSD.value)
        try s.bind(5, j.startedAt)
        try s.bind(6, j.endedAt)
        try s.bind(7, j.id)
        try s.run()
    }

    public func save(_ sub: SubtaskRecord) throws {
        guard let hot else {
            return try connection.run(HotStatements.subtaskSQL, sub.job, sub.id, sub.state.rawValue, sub.model, sub.attempts, sub.tokens,
                                      sub.usd.value, sub.output)
        }
        let s = try hot.subtask()
        try s.bind(1, sub.job)
        try s.bind(2, sub.id)
        try s.bind(3, sub.state.rawValue)
        try s.bind(4, sub.model)
        try s.bind(5, sub.attempts)
        try s.bind(6, sub.tokens)
        try s.bind(7, sub.usd.value)
        try s.bind(8, sub.output)
        try s.run()
    }

    public func save(_ a: AttemptRecord) throws {
        guard let hot else {
            return try connection.run(HotStatements.attemptSQL, a.id.job, a.id.subtask, a.id.n, a.model, a.worker, a.state.rawValue, a.tokenCap,
                                      a.reserved.tokens, a.reserved.usd.value, a.tokensIn, a.tokensOut, a.usd.value, a.deadline, a.createdAt,
                                      a.dispatchedAt, a.endedAt, a.detail)
        }
        let s = try hot.attempt()
        try s.bind(1, a.id.job)
        try s.bind(2, a.id.subtask)
        try s.bind(3, a.id.n)
        try s.bind(4, a.model)
        try s.bind(5, a.worker)
        try s.bind(6, a.state.rawValue)
        try s.bind(7, a.tokenCap)
        try s.bind(8, a.reserved.tokens)
        try s.bind(9, a.reserved.usd.value)
        try s.bind(10, a.tokensIn)
        try s.bind(11, a.tokensOut)
        try s.bind(12, a.usd.value)
        try s.bind(13, a.deadline)
        try s.bind(14, a.createdAt)
        try s.bind(15, a.dispatchedAt)
        try s.bind(16, a.endedAt)
        try s.bind(17, a.detail)
        try s.run()
    }

    /// Marks an attempt dispatched: cheaper than re-saving the whole record.
    public func markDispatched(_ id: AttemptID, worker: String, at: Double, deadline: Double) throws {
        guard let hot else {
            return try connection.run(HotStatements.dispatchedSQL, worker, at, deadline, id.job, id.subtask, id.n)
        }
        let s = try hot.dispatched()
        try s.bind(1, worker)
        try s.bind(2, at)
        try s.bind(3, deadline)
        try s.bind(4, id.job)
        try s.bind(5, id.subtask)
        try s.bind(6, id.n)
        try s.run()
    }

    public func append(_ e: LedgerEntry) throws {
        try append([e][...])
    }

    /// Appends ledger rows in order, sixteen to a statement while that many are left.
    func append(_ entries: ArraySlice<LedgerEntry>) throws {
        var rest = entries
        while !rest.isEmpty {
            let rows = rest.count >= HotStatements.ledgerBatch ? HotStatements.ledgerBatch : 1
            guard let hot else {
                let args: [any SQLBindable] = rest.prefix(rows).flatMap { e -> [any SQLBindable] in
                    [e.attempt.job, e.attempt.subtask, e.attempt.n, e.role, e.model, e.tokensIn, e.tokensOut, e.usd.value, e.kind, e.at]
                }
                try connection.run(rows == 1 ? HotStatements.ledgerOneSQL : HotStatements.ledgerManySQL, arguments: args)
                rest = rest.dropFirst(rows)
                continue
            }
            let s = try hot.ledger(rows: rows)
            for (r, e) in rest.prefix(rows).enumerated() {
                let base = Int32(r * 10)
                try s.bind(base + 1, e.attempt.job)
                try s.bind(base + 2, e.attempt.subtask)
                try s.bind(base + 3, e.attempt.n)
                try s.bind(base + 4, e.role)
                try s.bind(base + 5, e.model)
                try s.bind(base + 6, e.tokensIn)
                try s.bind(base + 7, e.tokensOut)
                try s.bind(base + 8, e.usd.value)
                try s.bind(base + 9, e.kind)
                try s.bind(base + 10, e.at)
            }
            try s.run()
            rest = rest.dropFirst(rows)
        }
    }
}
