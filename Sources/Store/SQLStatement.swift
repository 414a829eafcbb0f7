import CSQLite

/// A statement prepared once and held by its owner (the store's per-attempt writes): bound by
/// position with typed values, so a write neither looks its SQL text up nor boxes its arguments.
/// It keeps its connection alive, and belongs to the connection's thread.
public final class SQLStatement {
    let connection: SQLiteConnection
    let stmt: OpaquePointer
    let sql: String

    init(_ connection: SQLiteConnection, _ sql: String) throws {
        var s: OpaquePointer?
        let rc = sqlite3_prepare_v2(connection.db, sql, -1, &s, nil)
        guard rc == SQLITE_OK, let s else { throw connection.error(rc, sql) }
        self.connection = connection
        self.stmt = s
        self.sql = sql
    }

    deinit { sqlite3_finalize(stmt) }

    @inline(__always) private func check(_ rc: Int32) throws {
        if rc != SQLITE_OK { throw connection.error(rc, sql) }
    }

    public func bind(_ i: Int32, _ v: Int) throws { try check(sqlite3_bind_int64(stmt, i, Int64(v))) }
    public func bind(_ i: Int32, _ v: Int64) throws { try check(sqlite3_bind_int64(stmt, i, v)) }
    public func bind(_ i: Int32, _ v: Double) throws { try check(sqlite3_bind_double(stmt, i, v)) }
    public func bind(_ i: Int32, _ v: String) throws { try check(bindText(stmt, i, v)) }
    public func bind(_ i: Int32, _ v: Int?) throws { if let v { try bind(i, v) } else { try check(sqlite3_bind_null(stmt, i)) } }
    public func bind(_ i: Int32, _ v: Int64?) throws { if let v { try bind(i, v) } else { try check(sqlite3_bind_null(stmt, i)) } }
    public func bind(_ i: Int32, _ v: Double?) throws { if let v { try bind(i, v) } else { try check(sqlite3_bind_null(stmt, i)) } }
    public func bind(_ i: Int32, _ v: String?) throws { if let v { try bind(i, v) } else { try check(sqlite3_bind_null(stmt, i)) } }

    /// Runs it once with what is bound (a statement that returns no rows), and resets it.
    public func run() throws {
        let rc = sqlite3_step(stmt)
        sqlite3_reset(stmt)
        if rc != SQLITE_DONE && rc != SQLITE_ROW { throw connection.error(rc, sql) }
    }
}
