import AgentFlowCore
import Foundation
import Synchronization

/// A job as stored.
public struct JobRecord: Sendable, Equatable {
    public var id: String
    public var workflowName: String
    public var yaml: String
    public var file: String
    public var state: JobState
    public var reason: String
    public var planner: String
    public var seed: UInt64
    public var priority: Int
    public var limitTokens: Int?
    public var limitUSD: NanoUSD?
    public var spentTokens: Int
    public var spentUSD: NanoUSD
    public var submittedAt: WallInstant
    public var deadline: WallInstant
    public var startedAt: WallInstant?
    public var endedAt: WallInstant?
    public var minSuccess: Double?
    /// Whose fair share of the fleet the job counts against (`agentflow submit --tenant`).
    public var tenant = "default"

    public init(id: String, workflowName: String, yaml: String, file: String, state: JobState, reason: String, planner: String,
                seed: UInt64, priority: Int, limitTokens: Int?, limitUSD: NanoUSD?, spentTokens: Int, spentUSD: NanoUSD,
                submittedAt: WallInstant, deadline: WallInstant, startedAt: WallInstant?, endedAt: WallInstant?, minSuccess: Double?) {
        self.id = id
        self.workflowName = workflowName
        self.yaml = yaml
        self.file = file
        self.state = state
        self.reason = reason
        self.planner = planner
        self.seed = seed
        self.priority = priority
        self.limitTokens = limitTokens
        self.limitUSD = limitUSD
        self.spentTokens = spentTokens
        self.spentUSD = spentUSD
        self.submittedAt = submittedAt
        self.deadline = deadline
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.minSuccess = minSuccess
    }
}

public struct SubtaskRecord: Sendable, Equatable {
    public var job: String
    public var id: String
    public var state: SubtaskState
    public var model: String?
    /// Attempts created so far (the next attempt is number `attempts + 1`).
    public var attempts: Int
    public var tokens: Int
    public var usd: NanoUSD
    public var output: String?

    public init(job: String, id: String, state: SubtaskState, model: String? = nil, attempts: Int = 0, tokens: Int = 0, usd: NanoUSD = .zero, output: String? = nil) {
        self.job = job
        self.id = id
        self.state = state
        self.model = model
        self.attempts = attempts
        self.tokens = tokens
        self.usd = usd
        self.output = output
    }
}

public struct AttemptRecord: Sendable, Equatable {
    public var id: AttemptID
    public var model: String
    public var worker: String?
    public var state: AttemptState
    public var tokenCap: Int
    public var reserved: Amount
    public var tokensIn: Int
    public var tokensOut: Int
    public var usd: NanoUSD
    public var deadline: WallInstant
    public var createdAt: WallInstant
    public var dispatchedAt: WallInstant?
    public var endedAt: WallInstant?
    public var detail: String

    public init(id: AttemptID, model: String, worker: String? = nil, state: AttemptState, tokenCap: Int, reserved: Amount,
                tokensIn: Int = 0, tokensOut: Int = 0, usd: NanoUSD = .zero, deadline: WallInstant, createdAt: WallInstant,
                dispatchedAt: WallInstant? = nil, endedAt: WallInstant? = nil, detail: String = "") {
        self.id = id
        self.model = model
        self.worker = worker
        self.state = state
        self.tokenCap = tokenCap
        self.reserved = reserved
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.usd = usd
        self.deadline = deadline
        self.createdAt = createdAt
        self.dispatchedAt = dispatchedAt
        self.endedAt = endedAt
        self.detail = detail
    }
}

/// One line of the append-only spend ledger.
public struct LedgerEntry: Sendable, Equatable {
    public var attempt: AttemptID
    public var role: String
    public var model: String
    public var tokensIn: Int
    public var tokensOut: Int
    public var usd: NanoUSD
    /// `charge` (actual usage) or `lost` (a reservation charged in full).
    public var kind: String
    public var at: WallInstant

    public init(attempt: AttemptID, role: String, model: String, tokensIn: Int, tokensOut: Int, usd: NanoUSD, kind: String, at: WallInstant) {
        self.attempt = attempt
        self.role = role
        self.model = model
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.usd = usd
        self.kind = kind
        self.at = at
    }
}

/// The coordinator's state in SQLite (WAL), or in PostgreSQL (``init(postgres:role:)``: several
/// coordinators, one leading by a fenced lease). Owned by the coordinator's loop thread.
///
/// Writes are grouped: the loop calls `begin()` before handling a batch of messages and
/// `commit()` after, so each state change is persisted without one fsync per change.
public final class Store {
    /// The database connection; an ``SQLiteConnection`` unless the store is PostgreSQL's.
    public let connection: any SQLDatabase
    /// The PostgreSQL connection, when the store is PostgreSQL's.
    public var postgres: PostgresDatabase? { connection as? PostgresDatabase }
    /// The per-attempt writes' statements (`Store+HotWrites.swift`): prepared once on SQLite; on
    /// PostgreSQL their texts, which join the transaction's pipeline like every other.
    lazy var hot = HotStatements(connection as? SQLiteConnection)
    private var inTransaction = false
    /// Held from open to close: one coordinator per database file.
    private let lock: DatabaseLock?
    /// The file (or in-memory database URI) the connection opened.
    private let location: String

    /// Schema migrations, applied in order; `PRAGMA user_version` records how many ran. Each has
    /// its PostgreSQL counterpart, by number, in ``PostgresSchema/migrations``.
    static let migrations: [String] = [
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY, workflow TEXT NOT NULL, yaml TEXT NOT NULL, file TEXT NOT NULL,
            state TEXT NOT NULL, reason TEXT NOT NULL, planner TEXT NOT NULL, seed INTEGER NOT NULL,
            priority INTEGER NOT NULL, limit_tokens INTEGER, limit_usd_nano INTEGER,
            spent_tokens INTEGER NOT NULL, spent_usd_nano INTEGER NOT NULL,
            submitted_at REAL NOT NULL, deadline REAL NOT NULL, started_at REAL, ended_at REAL, min_success REAL);
        CREATE INDEX jobs_state ON jobs(state);
        CREATE INDEX jobs_workflow ON jobs(workflow);
        CREATE TABLE subtasks (
            job TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, model TEXT, attempts INTEGER NOT NULL,
            tokens INTEGER NOT NULL, usd_nano INTEGER NOT NULL, output TEXT, PRIMARY KEY (job, id));
        CREATE TABLE attempts (
            job TEXT NOT NULL, subtask TEXT NOT NULL, n INTEGER NOT NULL, model TEXT NOT NULL, worker TEXT,
            state TEXT NOT NULL, token_cap INTEGER NOT NULL, reserved_tokens INTEGER NOT NULL,
            reserved_usd_nano INTEGER NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
            usd_nano INTEGER NOT NULL, deadline REAL NOT NULL, created_at REAL NOT NULL, dispatched_at REAL,
            ended_at REAL, detail TEXT NOT NULL, PRIMARY KEY (job, subtask, n));
        CREATE TABLE ledger (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, subtask TEXT NOT NULL, n INTEGER NOT NULL,
            role TEXT NOT NULL, model TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
            usd_nano INTEGER NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL);
        CREATE INDEX ledger_job ON ledger(job);
        CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
        CREATE TABLE workers (
            name TEXT PRIMARY KEY, host TEXT NOT NULL, gpus TEXT NOT NULL, model TEXT NOT NULL, slots INTEGER NOT NULL,
            free_memory INTEGER NOT NULL, state TEXT NOT NULL, last_seen REAL NOT NULL);
        """,
        // The workflow text moves out of the jobs row: SQLite rewrites a whole row (its
        // overflow pages too) on every UPDATE, and the jobs row is updated on every finished
        // attempt; with a 5,000-subtask workflow that was ~230 KB copied and logged per attempt.
        """
        CREATE TABLE job_yaml (job TEXT PRIMARY KEY, yaml TEXT NOT NULL);
        INSERT INTO job_yaml (job, yaml) SELECT id, yaml FROM jobs;
        UPDATE jobs SET yaml = '';
        """,
        "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';",
        // Outputs of agent work: bundles content-addressed (base64 text: the connection binds
        // no BLOBs), a manifest row per kept file.
        """
        CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, base64 TEXT NOT NULL);
        CREATE TABLE output_bundles (job TEXT NOT NULL, subtask TEXT NOT NULL, n INTEGER NOT NULL, bundle TEXT NOT NULL,
                                     PRIMARY KEY (job, subtask));
        CREATE TABLE output_files (job TEXT NOT NULL, subtask TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
                                   sha256 TEXT NOT NULL, PRIMARY KEY (job, subtask, path));
        """,
        // Attempts' transcripts (Store+Transcripts.swift): entries by sequence number, a row of
        // totals per attempt, and a line per job whose transcripts were deleted under the cap.
        """
        CREATE TABLE transcript_entries (
            job TEXT NOT NULL, subtask TEXT NOT NULL, n INTEGER NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL,
            bytes INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job, subtask, n, seq)) WITHOUT ROWID;
        CREATE TABLE transcripts (
            job TEXT NOT NULL, subtask TEXT NOT NULL, n INTEGER NOT NULL, entries INTEGER NOT NULL, bytes INTEGER NOT NULL,
            refused INTEGER NOT NULL, PRIMARY KEY (job, subtask, n)) WITHOUT ROWID;
        CREATE TABLE transcripts_pruned (
            job TEXT PRIMARY KEY, at REAL NOT NULL, entries INTEGER NOT NULL, bytes INTEGER NOT NULL, reason TEXT NOT NULL);
        CREATE TABLE transcripts_total (id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL);
        INSERT INTO transcripts_total (id, bytes) VALUES (0, 0);
        """,
        // Tenants (issue 18): fair-share usage that decays and survives a restart, and what
        // each tenant was charged per budget period.
        """
        CREATE TABLE tenant_usage (tenant TEXT PRIMARY KEY, usage REAL NOT NULL, at REAL NOT NULL);
        CREATE TABLE tenant_spend (
            tenant TEXT NOT NULL, period_start REAL NOT NULL, tokens INTEGER NOT NULL, usd_nano INTEGER NOT NULL,
            PRIMARY KEY (tenant, period_start));
        """,
        // The coordinator epoch that wrote each ledger row and attempt (issue 21): on PostgreSQL
        // the leader's lease epoch, stamped by the database itself, so a takeover can be checked
        // from the rows; on SQLite (one coordinator per file) always NULL.
        """
        ALTER TABLE ledger ADD COLUMN epoch INTEGER;
        ALTER TABLE attempts ADD COLUMN epoch INTEGER;
        """,
    ]

    /// Opens (creating if needed) the database and takes its exclusive lock; throws
    /// ``DatabaseLockedError`` when another process (or another `Store` here) holds it.
    /// `:memory:` is a private in-memory database that ``reader()`` connections share.
    public init(path: String) throws {
        if path != ":memory:" {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            lock = try DatabaseLock(database: path)
            location = path
        } else {
            lock = nil
            // A named in-memory database in shared-cache mode, so read connections reach it.
            location = "file:agentflow-memory-\(Self.memoryDatabases.add(1, ordering: .relaxed).newValue)?mode=memory&cache=shared"
        }
        let sqlite = try SQLiteConnection(path: location)
        connection = sqlite
        // synchronous=FULL: in WAL mode every commit is fsynced before it returns, and the
        // coordinator sends nothing about an iteration before its commit returns, so what a
        // worker or client was told survives a power loss (NORMAL could lose the last commits).
        try sqlite.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        try migrate(sqlite)
    }

    private init(reading location: String) throws {
        lock = nil
        self.location = location
        connection = try SQLiteConnection(path: location)
        try connection.execute("PRAGMA query_only = ON;")
    }

    /// A store on a connection opened elsewhere (PostgreSQL's, Store+Postgres.swift).
    init(connection: any SQLDatabase, location: String) {
        lock = nil
        self.location = location
        self.connection = connection
    }

    /// A read-only connection to the same database, for another thread (WAL: it reads the last
    /// commit and never waits for the writer; PostgreSQL: a read-only session of its own).
    /// Like every connection it belongs to one thread.
    public func reader() throws -> Store {
        if let postgres { return try Store(postgresReaderFor: postgres) }
        return try Store(reading: location)
    }

    /// Numbers the in-memory databases of this process.
    private static let memoryDatabases = Atomic<Int>(0)

    /// Opens an existing database for reading only: no lock taken, nothing migrated, created
    /// or written (`query_only`), so it is safe beside the coordinator that holds the file —
    /// WAL readers neither block its writes nor see a half-written transaction. For reading
    /// ended jobs with no coordinator (`agentflow status --database F`, through the
    /// coordinator's own `QueryService`); ``reader()`` is the coordinator's. Throws ``StoreOpenError`` when the file is missing,
    /// is not an AgentFlow database, or has a schema this build does not know.
    public init(readingOnly path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw StoreOpenError(database: path, problem: "no such file") }
        lock = nil
        location = path
        let sqlite: SQLiteConnection
        do {
            sqlite = try SQLiteConnection(path: path, readOnly: true)
            try sqlite.execute("PRAGMA query_only = ON")
        } catch let e as SQLiteError {
            throw StoreOpenError(database: path, problem: "cannot open it for reading: \(e.message)")
        }
        connection = sqlite
        let version = sqlite.userVersion
        let tables = (try? connection.query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('jobs', 'attempts', 'ledger')").first?.int(0)) ?? 0
        guard version > 0, tables == 3 else {
            throw StoreOpenError(database: path, problem: "not an AgentFlow database (no jobs, attempts and ledger tables)")
        }
        guard version == Self.latestSchemaVersion else {
            throw StoreOpenError(database: path, problem: version > Self.latestSchemaVersion
                ? "its schema (version \(version)) is newer than this agentflow reads (\(Self.latestSchemaVersion)); use a newer agentflow"
                : "its schema (version \(version)) is older than this agentflow reads (\(Self.latestSchemaVersion)); start a coordinator on it once to migrate it")
        }
    }

    func migrate(_ connection: SQLiteConnection) throws {
        let current = connection.userVersion
        guard current < Self.migrations.count else { return }
        for (i, sql) in Self.migrations.enumerated() where i >= current {
            try connection.execute("BEGIN IMMEDIATE")
            do {
                try connection.execute(sql)
                try connection.setUserVersion(i + 1)
                try connection.execute("COMMIT")
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    public var schemaVersion: Int {
        if let postgres { return (try? postgres.schemaVersion()) ?? 0 }
        return (connection as? SQLiteConnection)?.userVersion ?? 0
    }
    /// The version a fresh or migrated database has.
    public static var latestSchemaVersion: Int { migrations.count }

    public func begin() throws {
        guard !inTransaction else { return }
        try connection.begin()
        inTransaction = true
    }

    /// A COMMIT that fails (a deferred constraint, a full disk) leaves the transaction open:
    /// it stays this store's to roll back.
    public func commit() throws {
        guard inTransaction else { return }
        try connection.commit()
        inTransaction = false
    }

    /// Forgets the open transaction (the simulator's crash before a commit).
    public func rollback() throws {
        guard inTransaction else { return }
        inTransaction = false
        try connection.rollback()
    }

    // MARK: Writes

    /// Inserts a new job (with its workflow text), or on conflict updates its mutable fields.
    public func save(_ j: JobRecord) throws {
        try connection.run(
            """
            INSERT INTO jobs (id, workflow, yaml, file, state, reason, planner, seed, priority, limit_tokens, limit_usd_nano,
              spent_tokens, spent_usd_nano, submitted_at, deadline, started_at, ended_at, min_success, tenant)
            VALUES (?,?,'',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
            ON CONFLICT(id) DO UPDATE SET state=excluded.state, reason=excluded.reason, spent_tokens=excluded.spent_tokens,
              spent_usd_nano=excluded.spent_usd_nano, started_at=excluded.started_at, ended_at=excluded.ended_at
            """,
            j.id, j.workflowName, j.file, j.state.rawValue, j.reason, j.planner, Int64(bitPattern: j.seed), j.priority,
            j.limitTokens, j.limitUSD?.value, j.spentTokens, j.spentUSD.value, j.submittedAt, j.deadline, j.startedAt, j.endedAt, j.minSuccess, j.tenant)
        try connection.run("INSERT INTO job_yaml (job, yaml) VALUES (?, ?) ON CONFLICT(job) DO NOTHING", j.id, j.yaml)
    }

    /// A worker's row: its record (less `gpuName` and `sandbox`), state and when it was last
    /// heard from (wall clock).
    public func save(_ w: WorkerRecord, state: WorkerState, lastSeen: WallInstant) throws {
        try connection.run(
            """
            INSERT INTO workers (name, host, gpus, model, slots, free_memory, state, last_seen) VALUES (?,?,?,?,?,?,?,?)
            ON CONFLICT(name) DO UPDATE SET host=excluded.host, gpus=excluded.gpus, model=excluded.model, slots=excluded.slots,
              free_memory=excluded.free_memory, state=excluded.state, last_seen=excluded.last_seen
            """,
            w.name, w.host, w.gpus.map(String.init).joined(separator: ","), w.model, w.slots, w.freeMemory, state.rawValue, lastSeen)
    }

    // MARK: Reads

    static let jobColumns = """
        id, workflow, COALESCE((SELECT y.yaml FROM job_yaml y WHERE y.job = jobs.id), jobs.yaml), file, state, reason, planner, seed, priority, limit_tokens, limit_usd_nano, spent_tokens,
        spent_usd_nano, submitted_at, deadline, started_at, ended_at, min_success, tenant
        """

    func job(from r: Row) -> JobRecord {
        var record = JobRecord(
            id: r.string(0), workflowName: r.string(1), yaml: r.string(2), file: r.string(3),
            state: JobState(rawValue: r.string(4)) ?? .failed, reason: r.string(5), planner: r.string(6),
            seed: UInt64(bitPattern: Int64(r.int(7))), priority: r.int(8), limitTokens: r.optionalInt(9),
            limitUSD: r.optionalInt(10).map { NanoUSD(Int64($0)) }, spentTokens: r.int(11), spentUSD: NanoUSD(Int64(r.int(12))),
            submittedAt: r.wallInstant(13), deadline: r.wallInstant(14), startedAt: r.optionalWallInstant(15), endedAt: r.optionalWallInstant(16),
            minSuccess: r.optionalDouble(17))
        record.tenant = r.string(18)
        return record
    }

    public func job(_ id: String) throws -> JobRecord? {
        try connection.query("SELECT \(Self.jobColumns) FROM jobs WHERE id = ?", id).first.map(job(from:))
    }

    /// Jobs that were queued or running when the coordinator last stopped, and ended jobs that
    /// still had attempts in flight (their reservations must be settled).
    public func activeJobs() throws -> [JobRecord] {
        try connection.query("SELECT \(Self.jobColumns) FROM jobs WHERE state IN ('queued','running') OR id IN (SELECT DISTINCT job FROM attempts WHERE state IN ('queued','dispatched')) ORDER BY submitted_at").map(job(from:))
    }

    public func recentJobs(limit: Int) throws -> [JobRecord] {
        try connection.query("SELECT \(Self.jobColumns) FROM jobs ORDER BY submitted_at DESC LIMIT ?", limit).map(job(from:))
    }

    /// A job's subtasks in workflow order (they are inserted in that order when the job is submitted).
    public func subtasks(of job: String) throws -> [SubtaskRecord] {
        try connection.query("SELECT job, id, state, model, attempts, tokens, usd_nano, output FROM subtasks WHERE job = ? ORDER BY rowid", job).map { r in
            SubtaskRecord(job: r.string(0), id: r.string(1), state: SubtaskState(rawValue: r.string(2)) ?? .pending, model: r.optionalString(3),
                          attempts: r.int(4), tokens: r.int(5), usd: NanoUSD(Int64(r.int(6))), output: r.optionalString(7))
        }
    }

    /// Tokens charged per subtask and role, from the ledger: subtask → role → tokens.
    public func roleTokens(of job: String) throws -> [String: [String: Int]] {
        var result: [String: [String: Int]] = [:]
        for r in try connection.query(
            "SELECT subtask, role, SUM(tokens_in + tokens_out) FROM ledger WHERE job = ? GROUP BY subtask, role", job)
        {
            result[r.string(0), default: [:]][r.string(1)] = r.int(2)
        }
        return result
    }

    /// How the latest finished attempt of each subtask ended (its detail), by subtask.
    public func lastAttemptDetails(of job: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for r in try connection.query(
            "SELECT subtask, detail FROM attempts WHERE job = ? AND ended_at IS NOT NULL ORDER BY ended_at, n", job)
        {
            result[r.string(0)] = r.string(1)
        }
        return result
    }

    public func attempts(of job: String) throws -> [AttemptRecord] {
        try connection.query("SELECT \(Self.attemptColumns) FROM attempts WHERE job = ? ORDER BY subtask, n", job).map(Self.attemptRecord)
    }

    /// An `attempts` row's columns as ``attemptRecord(_:)`` reads them (qualified: a query may join).
    static let attemptColumns = """
        attempts.job, attempts.subtask, attempts.n, attempts.model, attempts.worker, attempts.state, attempts.token_cap,
        attempts.reserved_tokens, attempts.reserved_usd_nano, attempts.tokens_in, attempts.tokens_out, attempts.usd_nano,
        attempts.deadline, attempts.created_at, attempts.dispatched_at, attempts.ended_at, attempts.detail
        """

    static func attemptRecord(_ r: Row) -> AttemptRecord {
        AttemptRecord(
            id: AttemptID(job: r.string(0), subtask: r.string(1), n: r.int(2)), model: r.string(3), worker: r.optionalString(4),
            state: AttemptState(rawValue: r.string(5)) ?? .lost, tokenCap: r.int(6),
            reserved: Amount(tokens: r.int(7), usd: NanoUSD(Int64(r.int(8)))), tokensIn: r.int(9), tokensOut: r.int(10),
            usd: NanoUSD(Int64(r.int(11))), deadline: r.wallInstant(12), createdAt: r.wallInstant(13), dispatchedAt: r.optionalWallInstant(14),
            endedAt: r.optionalWallInstant(15), detail: r.string(16))
    }

    public func ledger(of job: String) throws -> [LedgerEntry] {
        try connection.query("SELECT job, subtask, n, role, model, tokens_in, tokens_out, usd_nano, kind, at FROM ledger WHERE job = ? ORDER BY seq", job).map { r in
            LedgerEntry(attempt: AttemptID(job: r.string(0), subtask: r.string(1), n: r.int(2)), role: r.string(3), model: r.string(4),
                        tokensIn: r.int(5), tokensOut: r.int(6), usd: NanoUSD(Int64(r.int(7))), kind: r.string(8), at: r.wallInstant(9))
        }
    }

    /// Every worker row, by name; a state this version does not know reads as dead.
    public func workers() throws -> [(worker: WorkerRecord, state: WorkerState, lastSeen: Double)] {
        try connection.query("SELECT name, host, gpus, model, slots, free_memory, state, last_seen FROM workers ORDER BY name").map { r in
            (WorkerRecord(name: r.string(0), host: r.string(1), gpus: r.string(2).split(separator: ",").compactMap { Int($0) }, model: r.string(3),
                          slots: r.int(4), freeMemory: Int64(r.int(5))),
             WorkerState(rawValue: r.string(6)) ?? .dead, r.double(7))
        }
    }
}
