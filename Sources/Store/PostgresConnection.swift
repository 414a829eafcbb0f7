import AgentFlowCore
import CLibPQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error from PostgreSQL or from the link to it.
public struct PostgresError: Error, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server answered with an error (`sqlState` says which).
        case server
        /// No answer within the time allowed: the connection is closed, and whether the last
        /// transaction committed is unknown.
        case timeout
        /// The connection broke or could not be made.
        case connection
    }

    public var kind: Kind
    public var message: String
    /// The five-character SQLSTATE of a server error (e.g. `40001`), else nil.
    public var sqlState: String?
    public var sql: String?

    public var description: String {
        "PostgreSQL: \(message)" + (sqlState.map { " (SQLSTATE \($0))" } ?? "") + (sql.map { " in «\($0.prefix(120))»" } ?? "")
    }
}

/// One connection to PostgreSQL through libpq. Like a ``SQLiteConnection`` it belongs to one
/// thread (the coordinator's loop, or a reader's), so it is not `Sendable`.
///
/// Every call is bounded in time: libpq runs non-blocking and this waits on its socket with a
/// deadline, so a server that stops answering (a host gone, a cut network) costs `timeout`
/// seconds, never a hung loop. After a timeout or a broken link the connection is closed
/// (``isOpen`` false) and the caller opens a new one.
///
/// ``pipeline(_:timeout:)`` sends a batch of statements and reads all their results in one
/// round trip (libpq pipeline mode, PostgreSQL 14+ clients), in one implicit transaction that
/// the pipeline's sync commits — or rolls back if any statement fails. Statements are prepared
/// once per connection, by their text, inside the first pipeline that uses them.
public final class PostgresConnection {
    private var conn: OpaquePointer?
    /// Prepared statement names by SQL text.
    private var prepared: [String: String] = [:]
    /// Names are never reused on a connection (a failed pipeline's prepares may still exist).
    private var statementCount = 0
    public let target: String

    /// Connects to `url` (a `postgres://` URL or a libpq connection string; the password comes
    /// from PGPASSFILE/PGPASSWORD, as libpq reads them) with extra libpq `settings` (they
    /// override the URL's), within `timeout`.
    public init(url: String, settings: [(String, String)] = [], timeout: Duration) throws(PostgresError) {
        target = PostgresConnection.redacted(url)
        let keys = ["dbname"] + settings.map(\.0)
        let values = [url] + settings.map(\.1)
        let c: OpaquePointer? = withCStrings(keys) { k in withCStrings(values) { v in PQconnectStartParams(k, v, 1) } }
        guard let c else { throw PostgresError(kind: .connection, message: "out of memory connecting to \(target)") }
        conn = c
        guard PQstatus(c) != CONNECTION_BAD else {
            let message = Self.message(c)
            close()
            throw PostgresError(kind: .connection, message: "cannot connect to \(target): \(message)")
        }
        let deadline = Self.now() + timeout
        var state = PGRES_POLLING_WRITING
        while state != PGRES_POLLING_OK {
            if state == PGRES_POLLING_FAILED {
                let message = Self.message(c)
                close()
                throw PostgresError(kind: .connection, message: "cannot connect to \(target): \(message)")
            }
            guard wait(read: state == PGRES_POLLING_READING, write: state == PGRES_POLLING_WRITING, until: deadline) else {
                close()
                throw PostgresError(kind: .timeout, message: "no answer from \(target) within \(String(format: "%g", timeout.seconds)) s while connecting")
            }
            state = PQconnectPoll(c)
        }
        PQsetnonblocking(c, 1)
    }

    deinit { close() }

    /// Closes the connection (a server transaction it left open is rolled back by the server).
    public func close() {
        if let conn { PQfinish(conn) }
        conn = nil
        prepared = [:]
    }

    public var isOpen: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The server's version number (150018 for 15.18).
    public var serverVersion: Int { conn.map { Int(PQserverVersion($0)) } ?? 0 }

    /// Runs `sql` (one or more statements, no parameters) with the simple query protocol.
    public func execute(_ sql: String, timeout: Duration) throws(PostgresError) {
        let c = try open()
        guard PQsendQuery(c, sql) == 1 else { throw broken(sql) }
        let results = try collect(until: Self.now() + timeout, sql: sql, sync: false)
        if let e = results.first(where: { $0.error != nil })?.error { throw e }
    }

    /// Runs one statement with parameters and returns its rows.
    public func query(_ sql: String, _ args: any SQLBindable..., timeout: Duration) throws(PostgresError) -> [Row] {
        try pipeline([Statement(sql, args)], timeout: timeout)[0].rows
    }

    /// One statement's outcome in a pipeline: its rows, and how many rows it changed.
    public struct Result {
        public var rows: [Row]
        /// Rows an INSERT, UPDATE or DELETE changed (0 for other statements).
        public var affected: Int
    }

    /// A statement of a pipeline: its text and arguments (`$1`, `$2`, … in the text).
    public struct Statement {
        public var sql: String
        public var args: [SQLValue]

        public init(_ sql: String, _ args: [any SQLBindable]) {
            self.sql = sql
            self.args = args.map(\.sqlValue)
        }

        public init(_ sql: String, values: [SQLValue]) {
            self.sql = sql
            self.args = values
        }
    }

    /// Sends `statements` at once and reads every result: one round trip, one transaction
    /// (committed by the sync at the end, or rolled back whole if any statement fails — the
    /// first failure is thrown). Returns each statement's result, in order.
    public func pipeline(_ statements: [Statement], timeout: Duration) throws(PostgresError) -> [Result] {
        let c = try open()
        let deadline = Self.now() + timeout
        guard PQenterPipelineMode(c) == 1 else { throw broken(nil) }
        var sent: [(sql: String, isPrepare: Bool)] = []
        for s in statements {
            let name: String
            if let known = prepared[s.sql] {
                name = known
            } else {
                statementCount += 1
                name = "af\(statementCount)"
                guard PQsendPrepare(c, name, s.sql, 0, nil) == 1 else {
                    abandonPipeline()
                    throw broken(s.sql)
                }
                prepared[s.sql] = name
                sent.append((s.sql, true))
            }
            let ok = withTextParameters(s.args) { params in PQsendQueryPrepared(c, name, Int32(s.args.count), params, nil, nil, 0) }
            guard ok == 1 else {
                abandonPipeline()
                throw broken(s.sql)
            }
            sent.append((s.sql, false))
        }
        guard PQpipelineSync(c) == 1 else {
            abandonPipeline()
            throw broken(nil)
        }
        let results = try collect(until: deadline, sql: statements.first?.sql, sync: true)
        if PQexitPipelineMode(c) != 1 { throw broken(nil) }
        guard results.count == sent.count else {
            close()
            throw PostgresError(kind: .connection, message: "\(target): \(results.count) results for \(sent.count) statements", sql: statements.first?.sql)
        }
        if let i = results.firstIndex(where: { $0.error != nil }) {
            // A prepare that failed or was skipped did not prepare (one that ran did: a
            // prepared statement outlives the transaction's rollback).
            for (item, result) in zip(sent, results) where item.isPrepare && result.error != nil { prepared[item.sql] = nil }
            var e = results[i].error!
            e.sql = sent[i].sql
            throw e
        }
        return zip(sent, results).filter { !$0.0.isPrepare }.map { Result(rows: $0.1.rows, affected: $0.1.affected) }
    }

    // MARK: Inside

    /// One statement's result: its rows, or its error.
    struct Outcome {
        var rows: [Row] = []
        var affected = 0
        var error: PostgresError?
    }

    private func open() throws(PostgresError) -> OpaquePointer {
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            close()
            throw PostgresError(kind: .connection, message: "the connection to \(target) is closed")
        }
        return conn
    }

    private func broken(_ sql: String?) -> PostgresError {
        let message = conn.map(Self.message) ?? "closed"
        close()
        return PostgresError(kind: .connection, message: "\(target): \(message)", sql: sql)
    }

    private func abandonPipeline() {
        // Nothing was synced: the simplest sound state is a fresh connection.
        close()
    }

    /// Flushes what is queued, then reads results until the pipeline's sync (`sync`) or, for a
    /// simple query, until libpq has no more; each statement's results end with a NULL.
    private func collect(until deadline: MonotonicInstant, sql: String?, sync: Bool) throws(PostgresError) -> [Outcome] {
        guard let c = conn else { throw PostgresError(kind: .connection, message: "closed", sql: sql) }
        var out: [Outcome] = []
        var current = Outcome()
        var seen = false
        while true {
            // Send what libpq still holds, reading meanwhile (the server may be waiting for us
            // to read before it reads more).
            var flush = PQflush(c)
            while flush == 1 {
                guard wait(read: true, write: true, until: deadline) else { throw timedOut(sql) }
                guard PQconsumeInput(c) == 1 else { throw broken(sql) }
                flush = PQflush(c)
            }
            guard flush == 0 else { throw broken(sql) }
            while PQisBusy(c) == 1 {
                guard wait(read: true, write: false, until: deadline) else { throw timedOut(sql) }
                guard PQconsumeInput(c) == 1 else { throw broken(sql) }
            }
            guard let r = PQgetResult(c) else {
                // The end of one statement's results.
                if seen { out.append(current) }
                current = Outcome()
                seen = false
                if !sync { return out }
                continue
            }
            defer { PQclear(r) }
            let status = PQresultStatus(r)
            switch status {
            case PGRES_PIPELINE_SYNC:
                return out
            case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                seen = true
                current.affected = Int(String(cString: PQcmdTuples(r))) ?? 0
            case PGRES_TUPLES_OK:
                seen = true
                current.rows = Self.rows(r)
            case PGRES_PIPELINE_ABORTED:
                seen = true
                if current.error == nil {
                    current.error = PostgresError(kind: .server, message: "not run: an earlier statement of the batch failed", sqlState: nil, sql: sql)
                }
            default:
                seen = true
                let message = String(cString: PQresultErrorMessage(r)).trimmingCharacters(in: .whitespacesAndNewlines)
                let state = PQresultErrorField(r, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
                if PQstatus(c) != CONNECTION_OK {
                    close()
                    throw PostgresError(kind: .connection, message: "\(target): \(message)", sqlState: state, sql: sql)
                }
                current.error = PostgresError(kind: .server, message: message, sqlState: state, sql: sql)
            }
        }
    }

    private func timedOut(_ sql: String?) -> PostgresError {
        close()
        return PostgresError(kind: .timeout, message: "no answer from \(target) in time; the connection is closed", sql: sql)
    }

    /// Waits until the socket is readable (`read`) or writable (`write`), or the deadline passes (false).
    private func wait(read: Bool, write: Bool, until deadline: MonotonicInstant) -> Bool {
        guard let conn else { return false }
        let fd = PQsocket(conn)
        guard fd >= 0 else { return false }
        var events: Int16 = 0
        if read { events |= Int16(POLLIN) }
        if write { events |= Int16(POLLOUT) }
        while true {
            let left = deadline - Self.now()
            if left <= .zero { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, Int32(min(left.seconds * 1000, 60_000).rounded(.up)))
            if n > 0 { return true }
            if n < 0 && errno != EINTR { return true }  // let libpq report the socket's error
        }
    }

    static func rows(_ r: OpaquePointer) -> [Row] {
        let n = PQntuples(r)
        let columns = PQnfields(r)
        let types = (0..<columns).map { PQftype(r, $0) }
        var rows: [Row] = []
        rows.reserveCapacity(Int(n))
        for i in 0..<n {
            var values: [SQLValue] = []
            values.reserveCapacity(Int(columns))
            for c in 0..<columns {
                if PQgetisnull(r, i, c) == 1 {
                    values.append(.null)
                    continue
                }
                let text = String(cString: PQgetvalue(r, i, c))
                switch types[Int(c)] {
                case 20, 21, 23, 26:  // int8, int2, int4, oid
                    values.append(Int64(text).map { .int($0) } ?? .text(text))
                case 700, 701, 1700:  // float4, float8, numeric
                    values.append(Double(text).map { .double($0) } ?? .text(text))
                case 16:  // bool
                    values.append(.int(text == "t" ? 1 : 0))
                default:
                    values.append(.text(PostgresText.unescape(text)))
                }
            }
            rows.append(Row(values: values))
        }
        return rows
    }

    static func message(_ c: OpaquePointer) -> String {
        String(cString: PQerrorMessage(c)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// This process's monotonic clock (the one ``SystemTime`` reads): connection and query deadlines, the lease.
    static func now() -> MonotonicInstant { SystemTime().instant }

    /// `url` without a password, for messages.
    public static func redacted(_ url: String) -> String {
        guard let (userinfo, _) = userinfo(url), let colon = url[userinfo].firstIndex(of: ":") else {
            return url.replacing(/password=[^&\s]*/, with: "password=…")
        }
        return String(url[..<url.index(after: colon)]) + "…" + String(url[userinfo.upperBound...])
    }

    /// Whether the URL holds a password: `USER:PASSWORD@` (one host or several,
    /// `postgres://u:p@a:5432,b:5432/db`, which Foundation's URL parser does not take) or
    /// `?password=`.
    static func holdsPassword(_ url: String) -> Bool {
        if let (userinfo, _) = userinfo(url), url[userinfo].contains(":") { return true }
        return url.contains(/[?&]password=/)
    }

    /// Where a URL's `USER[:PASSWORD]` is, and its hosts, if it has both.
    private static func userinfo(_ url: String) -> (Range<String.Index>, Substring)? {
        guard let scheme = url.range(of: "://") else { return nil }
        let rest = url[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard let at = authority.lastIndex(of: "@") else { return nil }
        return (scheme.upperBound..<at, authority[authority.index(after: at)...])
    }
}

/// Text-format parameters, as libpq takes them (NULL for SQL NULL). Text is escaped
/// (``PostgresText``): PostgreSQL's text cannot hold the NULs it may contain.
private func withTextParameters<T>(_ values: [SQLValue], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> T) -> T {
    var owned: [UnsafeMutablePointer<CChar>?] = values.map { v in
        switch v {
        case .null: return nil
        case .int(let i): return strdup(String(i))
        case .double(let d):
            if d.isNaN { return strdup("NaN") }
            if d.isInfinite { return strdup(d > 0 ? "Infinity" : "-Infinity") }
            return strdup("\(d)")
        case .text(let s): return strdup(PostgresText.escape(s))
        }
    }
    defer { for p in owned { free(p) } }
    return owned.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress.map { base in
            base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: values.count) { body($0) }
        } ?? body(nil)
    }
}

/// NUL-terminated C strings for the duration of `body`.
private func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    var owned: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { for p in owned { free(p) } }
    return owned.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}
