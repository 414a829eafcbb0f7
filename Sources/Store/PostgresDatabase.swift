import AgentFlowCore
import Foundation

/// A coordinator's lease was lost (another coordinator took over, or this one could not extend
/// it in time): the transaction was rolled back, or committed but too late to act on, and the
/// coordinator must send nothing more and step down.
public struct LeaseLostError: Error, CustomStringConvertible {
    public var epoch: Int64
    public var reason: String
    public var description: String { "coordinator lease lost (epoch \(epoch)): \(reason); stepping down" }
}

/// The store's connection to PostgreSQL (``SQLDatabase``): the store's statements, written
/// with `?` placeholders, go out as `$1, $2, …`; the writes of a transaction are queued and
/// sent with its COMMIT in one pipeline — one round trip, one fsync (and with a synchronous
/// standby, one replica round trip) per coordinator loop iteration, however many rows it
/// writes. A read inside a transaction (transcripts check their totals) first sends what is
/// queued, in an explicit BEGIN, and costs a round trip of its own.
///
/// When this coordinator leads (``acquireLease(holder:workers:clients:for:)``), every
/// transaction extends the lease for its epoch first, and fails whole when another coordinator
/// took over (``CoordinatorLease``); ``LeaseLostError`` says so. Belongs to one thread.
public final class PostgresDatabase: SQLDatabase {
    /// The URL as given (its password, if any, is refused: ``check(url:)``).
    public let url: String
    /// The most any statement or commit may take before the connection is dropped.
    public let timeout: Duration
    let settings: [(String, String)]
    private var conn: PostgresConnection?
    private var inTransaction = false
    /// An explicit BEGIN went out (a read inside the transaction sent the queued writes).
    private var open = false
    private var queued: [PostgresConnection.Statement] = []
    private var lastChanges = 0
    /// Statement texts with `$n` placeholders, by the store's text.
    private var translated: [String: String] = [:]
    /// Round trips to the server (one per pipeline or simple query) and transactions committed
    /// on this connection: `bench dispatch` shows the leader makes one of each per loop iteration.
    public private(set) var roundTrips = 0
    public private(set) var commits = 0
    /// Time spent waiting for the server inside transactions (their round trips, the
    /// commit's fsync and, with a synchronous standby, its acknowledgement).
    public private(set) var transactionWait = Duration.zero

    /// The lease this coordinator holds; nil when it does not lead (a reader, a standby).
    public struct Lease: Sendable {
        public var epoch: Int64
        /// How long it runs past each commit that extends it (`coordinator.lease`).
        public var length: Duration
        var clock: LeaseClock
        /// When the last statement extending it was sent (monotonic).
        var lastSent: MonotonicInstant
    }
    public private(set) var lease: Lease?
    /// When the extension of the open transaction went out (monotonic).
    private var extensionSent: MonotonicInstant?

    /// Connects to `url`; `readOnly` sessions refuse writes (readers, standbys' queries).
    public init(url: String, readOnly: Bool = false, timeout: Duration = .seconds(10), lease: Duration = .seconds(5)) throws {
        try Self.check(url: url)
        self.url = url
        self.timeout = timeout
        // client_min_messages: the server's NOTICEs (a migration's "already exists, skipping")
        // are not the user's business; warnings and errors still come.
        var options = "-c idle_in_transaction_session_timeout=\(Int(lease.seconds * 1000)) -c client_min_messages=warning"
        if readOnly { options += " -c default_transaction_read_only=on" }
        // A host that vanished is noticed in seconds, not after the kernel's 2-hour keepalive.
        settings = [("application_name", readOnly ? "agentflow reader" : "agentflow coordinator"), ("options", options),
                    ("keepalives_idle", "5"), ("keepalives_interval", "2"), ("keepalives_count", "3"), ("tcp_user_timeout", "10000")]
            // A writer needs the primary (of several hosts, the one that takes writes); a reader's
            // own session is read-only, so a URL's read-write would refuse every host for it.
            + [("target_session_attrs", readOnly ? "any" : "read-write")]
        conn = try PostgresConnection(url: url, settings: settings, timeout: timeout)
    }

    /// A PostgreSQL URL must not hold its password (cluster files are shared and logged): it
    /// comes from PGPASSFILE, a `passfile=` parameter, or PGPASSWORD, as libpq reads them.
    public static func check(url: String) throws {
        if PostgresConnection.holdsPassword(url) {
            throw PostgresError(kind: .connection, message: """
                the database URL \(PostgresConnection.redacted(url)) holds a password: put it in a password file \
                (PGPASSFILE, or ?passfile=PATH in the URL) or in PGPASSWORD, never in the cluster file
                """)
        }
    }

    /// Whether `database` (`coordinator.database`, `--database`) names a PostgreSQL database.
    public static func isURL(_ database: String) -> Bool {
        database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")
    }

    /// The connection, opened again if it broke (never inside a transaction: what it held is
    /// gone, and the caller must know).
    func connection() throws -> PostgresConnection {
        if let conn, conn.isOpen { return conn }
        guard !inTransaction else { throw PostgresError(kind: .connection, message: "the connection to \(PostgresConnection.redacted(url)) broke in a transaction") }
        let c = try PostgresConnection(url: url, settings: settings, timeout: timeout)
        conn = c
        return c
    }

    /// `sql` with `$1, $2, …` for the store's `?` placeholders (none sits in a string literal).
    func postgresText(_ sql: String) -> String {
        if let t = translated[sql] { return t }
        var out = ""
        var n = 0
        var quoted = false
        for ch in sql {
            if ch == "'" { quoted.toggle() }
            if ch == "?" && !quoted {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        translated[sql] = out
        return out
    }

    func statement(_ sql: String, _ args: [any SQLBindable]) -> PostgresConnection.Statement {
        PostgresConnection.Statement(postgresText(sql), args)
    }

    // MARK: SQLDatabase

    public func execute(_ sql: String) throws {
        if inTransaction {
            try flush([PostgresConnection.Statement(sql, values: [])])
            return
        }
        roundTrips += 1
        try connection().execute(sql, timeout: timeout)
    }

    public func run(_ sql: String, arguments: [any SQLBindable]) throws {
        let s = statement(sql, arguments)
        if inTransaction {
            queued.append(s)
            return
        }
        roundTrips += 1
        lastChanges = try connection().pipeline([s], timeout: timeout)[0].affected
    }

    public func query(_ sql: String, arguments: [any SQLBindable]) throws -> [Row] {
        let s = statement(sql, arguments)
        if inTransaction { return try flush([s]).last?.rows ?? [] }
        roundTrips += 1
        return try connection().pipeline([s], timeout: timeout)[0].rows
    }

    public var changes: Int {
        get throws {
            if inTransaction && !queued.isEmpty { return try flush([]).last?.affected ?? 0 }
            return lastChanges
        }
    }

    public func begin() throws {
        guard !inTransaction else { return }
        _ = try connection()
        inTransaction = true
        open = false
        queued = []
        extensionSent = nil
        if let lease { queued.append(CoordinatorLease.extend(epoch: lease.epoch, seconds: lease.length.seconds)) }
    }

    public func commit() throws {
        guard inTransaction else { return }
        let statements = queued + [PostgresConnection.Statement("COMMIT", values: [])]
        do {
            _ = try flush(statements, ending: true)
        } catch {
            rollbackQuietly()
            throw leaseError(error)
        }
        inTransaction = false
        open = false
        queued = []
        commits += 1
        try noteExtended()
    }

    public func rollback() throws {
        guard inTransaction else { return }
        rollbackQuietly()
    }

    private func rollbackQuietly() {
        if open, let conn, conn.isOpen { try? conn.execute("ROLLBACK", timeout: timeout) }
        inTransaction = false
        open = false
        queued = []
    }

    /// Sends `statements` after what is queued, in the open transaction (an explicit BEGIN the
    /// first time); returns the results of what was queued and of `statements`.
    @discardableResult
    private func flush(_ statements: [PostgresConnection.Statement], ending: Bool = false) throws -> [PostgresConnection.Result] {
        var batch = open ? [] : [PostgresConnection.Statement("BEGIN", values: [])]
        let firstFlush = !open
        batch += ending ? statements : queued + statements
        let sentAt = PostgresConnection.now()
        if firstFlush && lease != nil { extensionSent = sentAt }
        queued = []
        open = true
        let results: [PostgresConnection.Result]
        roundTrips += 1
        defer { transactionWait += PostgresConnection.now() - sentAt }
        do {
            results = try connection().pipeline(batch, timeout: timeout)
        } catch {
            if !ending { rollbackQuietly() }
            // An UPDATE of rows that must exist checks itself on the server: the same error as SQLite's.
            if let e = error as? PostgresError, let missing = MissingRowsError(e) { throw missing }
            throw leaseError(error)
        }
        lastChanges = results.last?.affected ?? 0
        return Array(results.dropFirst(firstFlush ? 1 : 0))
    }

    /// A refused extension as ``LeaseLostError``; other errors as they are.
    private func leaseError(_ error: any Error) -> any Error {
        if let e = error as? PostgresError, CoordinatorLease.isLost(e), let lease {
            self.lease = nil
            return LeaseLostError(epoch: lease.epoch, reason: "another coordinator took the lease over")
        }
        return error
    }

    /// After a commit that extended the lease: the lease runs from when it was sent; if that is
    /// already past by this host's monotonic clock (the coordinator was frozen, or the commit
    /// slow), nothing may be sent about it.
    private func noteExtended() throws {
        guard var l = lease, let sent = extensionSent else { return }
        l.clock.extended(sentAt: sent)
        l.lastSent = sent
        let now = PostgresConnection.now()
        guard l.clock.holds(at: now) else {
            lease = nil
            throw LeaseLostError(epoch: l.epoch, reason: "the commit returned \(String(format: "%.1f", (now - sent).seconds)) s after it was sent, past the lease")
        }
        lease = l
    }

    // MARK: The lease

    /// Takes the lease if it has expired by the database's clock; true when this coordinator
    /// now leads (with a new, higher epoch).
    public func acquireLease(holder: String, workers: String, clients: String, for length: Duration) throws -> Bool {
        precondition(!inTransaction, "the lease is taken outside transactions")
        let sent = PostgresConnection.now()
        guard let epoch = try CoordinatorLease.acquire(try connection(), holder: holder, workers: workers, clients: clients, for: length,
                                                       timeout: min(timeout, length)) else { return false }
        var clock = LeaseClock(length: length)
        clock.extended(sentAt: sent)
        lease = Lease(epoch: epoch, length: length, clock: clock, lastSent: sent)
        return true
    }

    /// Extends the lease on its own when no transaction did for a third of it (an idle leader).
    public func renewLeaseIfDue() throws {
        guard let l = lease, !inTransaction, PostgresConnection.now() - l.lastSent >= l.length / 3 else { return }
        try begin()
        try commit()
    }

    /// Who leads now, as the lease row says.
    public func leaseHolder() throws -> CoordinatorLease.Holder {
        try CoordinatorLease.read(try connection(), timeout: timeout)
    }

    /// Gives the lease up (a graceful stop), so a standby takes over at once.
    public func releaseLease() {
        guard let l = lease, !inTransaction else { return }
        lease = nil
        try? CoordinatorLease.release(try connection(), epoch: l.epoch, timeout: min(timeout, .seconds(2)))
    }

    // MARK: Migrations

    /// Applies the migrations this database lacks, each in a transaction, under an advisory
    /// lock (coordinators starting together migrate once).
    public func migrate() throws {
        let c = try connection()
        // Under the lock too: CREATE TABLE IF NOT EXISTS alone races with itself.
        try c.execute("""
            BEGIN;
            SELECT pg_advisory_xact_lock(7249130516);
            CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
            COMMIT;
            """, timeout: timeout * 3)
        for (i, m) in PostgresSchema.migrations.enumerated() {
            let version = i + 1
            try c.execute("BEGIN", timeout: timeout)
            do {
                _ = try c.query("SELECT pg_advisory_xact_lock(7249130516)", timeout: timeout * 3)
                if try c.query("SELECT 1 FROM schema_migrations WHERE version = $1::integer", version, timeout: timeout).isEmpty {
                    try c.execute(m.sql, timeout: timeout * 6)
                    _ = try c.query("INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2::text)", version, m.name, timeout: timeout)
                }
                try c.execute("COMMIT", timeout: timeout)
            } catch {
                if c.isOpen { try? c.execute("ROLLBACK", timeout: timeout) }
                throw error
            }
        }
        let newest = try schemaVersion()
        if newest > PostgresSchema.migrations.count {
            throw PostgresError(kind: .server, message: """
                the database's schema (version \(newest)) is newer than this agentflow knows (\(PostgresSchema.migrations.count)); \
                upgrade this coordinator
                """)
        }
    }

    /// The newest migration applied.
    public func schemaVersion() throws -> Int {
        try connection().query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", timeout: timeout).first?.int(0) ?? 0
    }
}
