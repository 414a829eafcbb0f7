import AgentFlowCore

// The five writes every attempt makes, as ``HotRow``s: their SQL for n rows and their columns.
// Inserts are multi-row `INSERT … VALUES (…),(…) ON CONFLICT …`; updates are
// `UPDATE … FROM (VALUES …)`, each value cast to its column's type so PostgreSQL, which types a
// parameter in a VALUES list as text, compares like with like (SQLite reads the same casts as
// affinities). No statement holds two rows with one key (``WriteBatch`` sees to it): PostgreSQL
// refuses an upsert that touches a row twice.

/// The upsert of a whole attempt record. On conflict it writes every column a dispatch or an
/// end sets (a dispatch's deadline included), so either folds into a pending upsert of its row
/// (``WriteBatch/fold(_:into:)``); the columns fixed when the attempt is made (model, cap,
/// reservation, creation time) are kept.
extension AttemptRecord: HotRow {
    static var kind: HotStatements.Kind { .attempt }
    static var columns: Int { 17 }

    static func sql(rows: Int) -> String {
        """
        INSERT INTO attempts (job, subtask, n, model, worker, state, token_cap, reserved_tokens, reserved_usd_nano,
          tokens_in, tokens_out, usd_nano, deadline, created_at, dispatched_at, ended_at, detail)
        VALUES \(HotStatements.values(columns: columns, rows: rows))
        ON CONFLICT(job, subtask, n) DO UPDATE SET worker=excluded.worker, state=excluded.state,
          tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, usd_nano=excluded.usd_nano,
          deadline=excluded.deadline, dispatched_at=excluded.dispatched_at, ended_at=excluded.ended_at, detail=excluded.detail
        """
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try id.bind(into: &p)
        try p.add(model)
        try p.add(worker)
        try p.add(state.rawValue)
        try p.add(tokenCap)
        try p.add(reserved.tokens)
        try p.add(reserved.usd.value)
        try bindUsage(into: &p)
        try p.add(deadline)
        try p.add(createdAt)
        try p.add(dispatchedAt)
        try p.add(endedAt)
        try p.add(detail)
    }
}

extension AttemptRecord {
    /// What the attempt used: tokens in, tokens out, nano-dollars (the upsert's and the end's columns).
    func bindUsage<P: ParameterSink>(into p: inout P) throws {
        try p.add(tokensIn)
        try p.add(tokensOut)
        try p.add(usd.value)
    }
}

/// An attempt sent to a worker (``StoreWrite/dispatched(_:worker:at:deadline:)``).
struct DispatchedRow: HotRow {
    var id: AttemptID
    var worker: String
    var at: WallInstant
    var deadline: WallInstant

    static var kind: HotStatements.Kind { .dispatched }
    static var columns: Int { 6 }

    static func sql(rows: Int) -> String {
        HotStatements.update("attempts", set: ["worker", "dispatched_at", "deadline"], fixed: "state='dispatched'", key: ["job", "subtask", "n"],
                             types: ["TEXT", "DOUBLE PRECISION", "DOUBLE PRECISION", "TEXT", "TEXT", "BIGINT"], rows: rows)
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(worker)
        try p.add(at)
        try p.add(deadline)
        try id.bind(into: &p)
    }
}

/// A dispatched attempt's end (``StoreWrite/attemptEnded(_:)``): 9 parameters where the upsert
/// binds 17, and an UPDATE where the upsert first tries an INSERT.
struct EndedRow: HotRow {
    var attempt: AttemptRecord

    static var kind: HotStatements.Kind { .ended }
    static var columns: Int { 9 }
    static var updatesExistingRows: Bool { true }

    static func sql(rows: Int) -> String {
        HotStatements.update("attempts", set: ["state", "tokens_in", "tokens_out", "usd_nano", "ended_at", "detail"], key: ["job", "subtask", "n"],
                             types: ["TEXT", "BIGINT", "BIGINT", "BIGINT", "DOUBLE PRECISION", "TEXT", "TEXT", "TEXT", "BIGINT"], rows: rows)
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(attempt.state.rawValue)
        try attempt.bindUsage(into: &p)
        try p.add(attempt.endedAt)
        try p.add(attempt.detail)
        try attempt.id.bind(into: &p)
    }
}

extension SubtaskRecord: HotRow {
    static var kind: HotStatements.Kind { .subtask }
    static var columns: Int { 8 }

    static func sql(rows: Int) -> String {
        """
        INSERT INTO subtasks (job, id, state, model, attempts, tokens, usd_nano, output)
        VALUES \(HotStatements.values(columns: columns, rows: rows))
        ON CONFLICT(job, id) DO UPDATE SET state=excluded.state, model=excluded.model, attempts=excluded.attempts,
          tokens=excluded.tokens, usd_nano=excluded.usd_nano, output=excluded.output
        """
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(job)
        try p.add(id)
        try p.add(state.rawValue)
        try p.add(model)
        try p.add(attempts)
        try p.add(tokens)
        try p.add(usd.value)
        try p.add(output)
    }
}

/// What changes in a jobs row while the job runs (``StoreWrite/updateJob(_:)``).
struct JobUpdateRow: HotRow {
    var job: JobRecord

    static var kind: HotStatements.Kind { .job }
    static var columns: Int { 7 }

    static func sql(rows: Int) -> String {
        HotStatements.update("jobs", set: ["state", "reason", "spent_tokens", "spent_usd_nano", "started_at", "ended_at"], key: ["id"],
                             types: ["TEXT", "TEXT", "BIGINT", "BIGINT", "DOUBLE PRECISION", "DOUBLE PRECISION", "TEXT"], rows: rows)
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(job.state.rawValue)
        try p.add(job.reason)
        try p.add(job.spentTokens)
        try p.add(job.spentUSD.value)
        try p.add(job.startedAt)
        try p.add(job.endedAt)
        try p.add(job.id)
    }
}

extension LedgerEntry: HotRow {
    static var kind: HotStatements.Kind { .ledger }
    static var columns: Int { 10 }

    static func sql(rows: Int) -> String {
        "INSERT INTO ledger (job, subtask, n, role, model, tokens_in, tokens_out, usd_nano, kind, at) VALUES "
            + HotStatements.values(columns: columns, rows: rows)
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try attempt.bind(into: &p)
        try p.add(role)
        try p.add(model)
        try p.add(tokensIn)
        try p.add(tokensOut)
        try p.add(usd.value)
        try p.add(kind)
        try p.add(at)
    }
}

extension AttemptID {
    /// The attempt's key columns (job, subtask, n), in that order.
    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(job)
        try p.add(subtask)
        try p.add(n)
    }
}

extension HotStatements {
    /// An UPDATE of the `set` columns (in that order, then the `key` columns: the parameters'
    /// order) for `rows` rows: the plain one-row statement, or `UPDATE … FROM (VALUES …)` with
    /// each value cast to `types` (PostgreSQL types a VALUES parameter as text otherwise).
    /// `fixed` is an assignment every row gets (`state='dispatched'`).
    static func update(_ table: String, set: [String], fixed: String? = nil, key: [String], types: [String], rows: Int) -> String {
        let extra = fixed.map { [$0] } ?? []
        if rows == 1 {
            return "UPDATE \(table) SET " + (set.map { "\($0)=?" } + extra).joined(separator: ", ")
                + " WHERE " + key.map { "\($0)=?" }.joined(separator: " AND ")
        }
        let row = "(" + types.map { "CAST(? AS \($0))" }.joined(separator: ",") + ")"
        let assignments = set.enumerated().map { "\($1)=v.column\($0 + 1)" } + extra
        let match = key.enumerated().map { "\(table).\($1)=v.column\(set.count + $0 + 1)" }
        return "UPDATE \(table) SET \(assignments.joined(separator: ", ")) FROM (VALUES \(values(row, rows: rows))) AS v WHERE "
            + match.joined(separator: " AND ")
    }
}
