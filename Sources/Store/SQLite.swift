import AgentFlowCore
import CSQLite
import Foundation

/// An error from SQLite with its result code and message.
public struct SQLiteError: Error, CustomStringConvertible {
    public var code: Int32
    public var message: String
    public var sql: String?

    public var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " in «\($0.prefix(120))»" } ?? "")
    }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension Int: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .int(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .double(self) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .int(self ? 1 : 0) } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// One SQLite connection. Like a ZeroMQ socket it belongs to one thread: the coordinator's
/// loop owns it, so it is not `Sendable`. Prepared statements are cached by SQL text.
public final class SQLiteConnection {
    let db: OpaquePointer
    private var cache: [String: OpaquePointer] = [:]

    /// `readOnly`: open an existing file for reading only (never created, never written).
    public init(path: String, readOnly: Bool = false) throws {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let handle { sqlite3_close(handle) }
            throw SQLiteError(code: rc, message: "\(message) (\(path))")
        }
        db = handle
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        for stmt in cache.values { sqlite3_finalize(stmt) }
        sqlite3_close(db)
    }

    func error(_ rc: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql)
    }

    /// Runs one or more statements with no parameters and no results.
    public func execute(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let message = err.map { String(cString: $0) } ?? "error"
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: message, sql: sql)
        }
    }

    private func prepared(_ sql: String, _ args: [any SQLBindable]) throws -> OpaquePointer {
        let stmt: OpaquePointer
        if let s = cache[sql] {
            stmt = s
        } else {
            var s: OpaquePointer?
            let rc = sqlite3_prepare_v2(db, sql, -1, &s, nil)
            guard rc == SQLITE_OK, let s else { throw error(rc, sql) }
            cache[sql] = s
            stmt = s
        }
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        for (i, arg) in args.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch arg.sqlValue {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .double(let v): rc = sqlite3_bind_double(stmt, idx, v)
            case .text(let v): rc = bindText(stmt, idx, v)
            }
            if rc != SQLITE_OK { throw error(rc, sql) }
        }
        return stmt
    }

    /// Runs a statement that returns no rows.
    public func run(_ sql: String, _ args: any SQLBindable...) throws { try run(sql, arguments: args) }

    /// Runs a statement whose arguments are built at run time.
    public func run(_ sql: String, arguments args: [any SQLBindable]) throws {
        let stmt = try prepared(sql, args)
        let rc = sqlite3_step(stmt)
        sqlite3_reset(stmt)
        if rc != SQLITE_DONE && rc != SQLITE_ROW { throw error(rc, sql) }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ args: any SQLBindable...) throws -> [Row] {
        try query(sql, arguments: args)
    }

    /// Runs a query whose arguments are built at run time (optional filters) and returns every row.
    public func query(_ sql: String, arguments args: [any SQLBindable]) throws -> [Row] {
        let stmt = try prepared(sql, args)
        defer { sqlite3_reset(stmt) }
        var rows: [Row] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            var values: [SQLValue] = []
            for c in 0..<sqlite3_column_count(stmt) {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: values.append(.int(sqlite3_column_int64(stmt, c)))
                case SQLITE_FLOAT: values.append(.double(sqlite3_column_double(stmt, c)))
                case SQLITE_NULL: values.append(.null)
                default: values.append(.text(columnText(stmt, c)))
                }
            }
            rows.append(Row(values: values))
        }
        return rows
    }

    public var userVersion: Int {
        get { (try? query("PRAGMA user_version").first?.int(0)) ?? 0 }
    }

    public func setUserVersion(_ v: Int) throws { try execute("PRAGMA user_version = \(v)") }

    /// Rows the last INSERT, UPDATE or DELETE changed (0 for an `INSERT OR IGNORE` that was ignored).
    public var changes: Int { Int(sqlite3_changes(db)) }
}

/// One result row; columns by position.
public struct Row {
    public var values: [SQLValue]

    public func int(_ i: Int) -> Int {
        switch values[i] {
        case .int(let v): return Int(v)
        // Saturating: an integer column may hold a REAL (1e300) that Int(_:) would trap on.
        case .double(let v): return Int(saturating: v)
        case .text(let s): return Int(s) ?? 0
        case .null: return 0
        }
    }

    public func optionalInt(_ i: Int) -> Int? {
        if case .null = values[i] { return nil }
        return int(i)
    }

    public func double(_ i: Int) -> Double {
        switch values[i] {
        case .int(let v): return Double(v)
        case .double(let v): return v
        case .text(let s): return Double(s) ?? 0
        case .null: return 0
        }
    }

    public func optionalDouble(_ i: Int) -> Double? {
        if case .null = values[i] { return nil }
        return double(i)
    }

    public func string(_ i: Int) -> String {
        switch values[i] {
        case .text(let s): return s
        case .int(let v): return String(v)
        case .double(let v): return String(v)
        case .null: return ""
        }
    }

    public func optionalString(_ i: Int) -> String? {
        if case .null = values[i] { return nil }
        return string(i)
    }
}
