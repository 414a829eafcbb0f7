import AgentFlowCore

// The five writes every attempt makes, as ``HotRow``s: their SQL for n rows and their columns.
// Inserts are multi-row `INSERT … VALUES (…),(…) ON CONFLICT …`; updates are
// `UPDATE … FROM (VALUES …)`, each value cast to its column's type so PostgreSQL, which types a
// parameter in a VALUES list as text, compares like with like (SQLite reads the same casts as
// affinities). No statement holds two rows with one key (``WriteBatch`` sees to it): PostgreSQL
// refuses an upsert that touches a row twice.

extension AttemptRecord: HotRow {
    static var kind: HotStatements.Kind { .attempt }
    static var columns: Int { 17 }

    static func sql(rows: Int) -> String {
        """
        INSERT INTO attempts (job, subtask, n, model, worker, state, token_cap, reserved_tokens, reserved_usd_nano,
          tokens_in, tokens_out, usd_nano, deadline, created_at, dispatched_at, ended_at, detail)
        VALUES \(HotStatements.values("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows: rows))
        ON CONFLICT(job, subtask, n) DO UPDATE SET worker=excluded.worker, state=excluded.state,
          tokens_in=excluded.tokens_in, tokens_out=excluded.tokens_out, usd_nano=excluded.usd_nano,
          dispatched_at=excluded.dispatched_at, ended_at=excluded.ended_at, detail=excluded.detail
        """
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(id.job)
        try p.add(id.subtask)
        try p.add(id.n)
        try p.add(model)
        try p.add(worker)
        try p.add(state.rawValue)
        try p.add(tokenCap)
        try p.add(reserved.tokens)
        try p.add(reserved.usd.value)
        try p.add(tokensIn)
        try p.add(tokensOut)
        try p.add(usd.value)
        try p.add(deadline)
        try p.add(createdAt)
        try p.add(dispatchedAt)
        try p.add(endedAt)
        try p.add(detail)
    }
}

/// An attempt sent to a worker (``StoreWrite/dispatched(_:worker:at:deadline:)``).
struct DispatchedRow: HotRow {
    var id: AttemptID
    var worker: String
    var at: Double
    var deadline: Double

    static var kind: HotStatements.Kind { .dispatched }
    static var columns: Int { 6 }

    static func sql(rows: Int) -> String {
        if rows == 1 {
            return "UPDATE attempts SET worker=?, state='dispatched', dispatched_at=?, deadline=? WHERE job=? AND subtask=? AND n=?"
        }
        let row = "(CAST(? AS TEXT),CAST(? AS DOUBLE PRECISION),CAST(? AS DOUBLE PRECISION),CAST(? AS TEXT),CAST(? AS TEXT),CAST(? AS BIGINT))"
        return """
            UPDATE attempts SET worker=v.column1, state='dispatched', dispatched_at=v.column2, deadline=v.column3
            FROM (VALUES \(HotStatements.values(row, rows: rows))) AS v
            WHERE attempts.job=v.column4 AND attempts.subtask=v.column5 AND attempts.n=v.column6
            """
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(worker)
        try p.add(at)
        try p.add(deadline)
        try p.add(id.job)
        try p.add(id.subtask)
        try p.add(id.n)
    }
}

extension SubtaskRecord: HotRow {
    static var kind: HotStatements.Kind { .subtask }
    static var columns: Int { 8 }

    static func sql(rows: Int) -> String {
        """
        INSERT INTO subtasks (job, id, state, model, attempts, tokens, usd_nano, output)
        VALUES \(HotStatements.values("(?,?,?,?,?,?,?,?)", rows: rows))
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
        if rows == 1 {
            return "UPDATE jobs SET state=?, reason=?, spent_tokens=?, spent_usd_nano=?, started_at=?, ended_at=? WHERE id=?"
        }
        let row = "(CAST(? AS TEXT),CAST(? AS TEXT),CAST(? AS BIGINT),CAST(? AS BIGINT),CAST(? AS DOUBLE PRECISION),CAST(? AS DOUBLE PRECISION),CAST(? AS TEXT))"
        return """
            UPDATE jobs SET state=v.column1, reason=v.column2, spent_tokens=v.column3, spent_usd_nano=v.column4,
              started_at=v.column5, ended_at=v.column6
            FROM (VALUES \(HotStatements.values(row, rows: rows))) AS v
            WHERE jobs.id=v.column7
            """
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
            + HotStatements.values("(?,?,?,?,?,?,?,?,?,?)", rows: rows)
    }

    func bind<P: ParameterSink>(into p: inout P) throws {
        try p.add(attempt.job)
        try p.add(attempt.subtask)
        try p.add(attempt.n)
        try p.add(role)
        try p.add(model)
        try p.add(tokensIn)
        try p.add(tokensOut)
        try p.add(usd.value)
        try p.add(kind)
        try p.add(at)
    }
}
