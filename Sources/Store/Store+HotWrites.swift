import AgentFlowCore

/// A row of one of the writes every attempt makes, written several to a statement: its SQL for
/// `rows` rows and its values in column order. One implementation per kind of write
/// (`Store+HotRows.swift`); ``HotStatements`` holds SQLite's statements per kind and row count,
/// PostgreSQL's connection prepares the same texts once per connection.
protocol HotRow {
    /// Which of ``HotStatements``' slots holds this kind's statements.
    static var kind: HotStatements.Kind { get }
    /// Parameters per row.
    static var columns: Int { get }
    /// The statement for `rows` rows (one of ``HotStatements/chunkSizes``).
    static func sql(rows: Int) -> String
    /// Adds this row's values, in column order.
    func bind<P: ParameterSink>(into p: inout P) throws
    /// An UPDATE of rows that must exist: a statement that matched fewer rows than it carried
    /// fails the transaction (it rolls back) rather than lose the change — on SQLite checked
    /// after the statement, on PostgreSQL by the statement itself (``HotStatements/requiringRows(_:rows:)``).
    static var updatesExistingRows: Bool { get }
}

extension HotRow {
    static var updatesExistingRows: Bool { false }
}

/// A write that had to change rows that were not there (``HotRow/updatesExistingRows``).
public struct MissingRowsError: Error, CustomStringConvertible {
    public var statement: String
    public var expected: Int
    public var changed: Int

    public var description: String { "\(changed) of \(expected) rows updated (the others are missing) by «\(statement.prefix(120))»" }

    /// What PostgreSQL's check (``HotStatements/requiringRows(_:rows:)``) puts in its error.
    static let marker = "agentflow: rows missing"
}

extension MissingRowsError {
    /// The error PostgreSQL's check raised, read back from the server's message
    /// (`… "agentflow: rows missing: 3 of 4 updated"`); nil for any other error.
    init?(_ error: PostgresError) {
        guard error.kind == .server, let at = error.message.range(of: Self.marker + ": ") else { return nil }
        let counts = error.message[at.upperBound...].split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard counts.count == 2 else { return nil }
        self.init(statement: error.sql ?? "", expected: counts[1], changed: counts[0])
    }
}

/// Where a row's values go: a held statement's parameters (SQLite) or an argument list
/// (PostgreSQL's pipeline). Rows bind through this so each kind lists its columns once.
protocol ParameterSink {
    mutating func add(_ v: Int) throws
    mutating func add(_ v: Double) throws
    mutating func add(_ v: String) throws
    mutating func add(_ v: Int?) throws
    mutating func add(_ v: Double?) throws
    mutating func add(_ v: String?) throws
}

extension ParameterSink {
    mutating func add(_ v: Int64) throws { try add(Int(v)) }
    mutating func add(_ v: Int64?) throws { try add(v.map { Int($0) }) }
}

/// Binds to a statement by position, from 1.
struct StatementSink: ParameterSink {
    let statement: SQLStatement
    var next: Int32 = 1

    mutating func add(_ v: Int) throws { try statement.bind(next, v); next += 1 }
    mutating func add(_ v: Double) throws { try statement.bind(next, v); next += 1 }
    mutating func add(_ v: String) throws { try statement.bind(next, v); next += 1 }
    mutating func add(_ v: Int?) throws { try statement.bind(next, v); next += 1 }
    mutating func add(_ v: Double?) throws { try statement.bind(next, v); next += 1 }
    mutating func add(_ v: String?) throws { try statement.bind(next, v); next += 1 }
}

/// Collects the arguments of a statement run through ``SQLDatabase/run(_:arguments:)``.
struct ArgumentSink: ParameterSink {
    var arguments: [any SQLBindable] = []

    mutating func add(_ v: Int) throws { arguments.append(v) }
    mutating func add(_ v: Double) throws { arguments.append(v) }
    mutating func add(_ v: String) throws { arguments.append(v) }
    mutating func add(_ v: Int?) throws { arguments.append(v) }
    mutating func add(_ v: Double?) throws { arguments.append(v) }
    mutating func add(_ v: String?) throws { arguments.append(v) }
}

/// The statements of the per-attempt writes, one per kind of write and chunk size: their texts,
/// built on first use, and on SQLite the statements prepared from them, held for the
/// connection's life (``Store/hot``). PostgreSQL's connection prepares the texts itself, once.
final class HotStatements {
    enum Kind: Int, CaseIterable {
        case attempt, dispatched, ended, subtask, job, ledger
    }

    /// Rows per statement: a batch of n rows goes out as the fewest chunks of these sizes, in
    /// order (n's binary digits: 20 rows = 16 + 4), so at most six statements per kind and
    /// batch, and few distinct statements to hold. 32 rows of the widest write (attempts, 17
    /// columns) bind 544 parameters, under SQLite's oldest limit of 999.
    static let chunkSizes = [32, 16, 8, 4, 2, 1]

    /// SQLite's connection; nil on PostgreSQL (texts only).
    let connection: SQLiteConnection?
    private var statements: [SQLStatement?]
    private var texts: [String?]

    init(_ connection: SQLiteConnection?) {
        self.connection = connection
        statements = Array(repeating: nil, count: Kind.allCases.count * Self.chunkSizes.count)
        texts = statements.map { _ in nil }
    }

    private static func slot<R: HotRow>(_: R.Type, rows: Int) -> Int {
        R.kind.rawValue * chunkSizes.count + chunkIndex(rows)
    }

    /// The text of the statement writing `rows` rows of `R` (a chunk size); on PostgreSQL an
    /// UPDATE of rows that must exist carries its own check (``requiringRows(_:rows:)``).
    func text<R: HotRow>(_: R.Type, rows: Int) -> String {
        let slot = Self.slot(R.self, rows: rows)
        if let t = texts[slot] { return t }
        var t = R.sql(rows: rows)
        if connection == nil && R.updatesExistingRows { t = Self.requiringRows(t, rows: rows) }
        texts[slot] = t
        return t
    }

    /// PostgreSQL's form of an UPDATE whose `rows` rows must all exist: it counts the rows it
    /// changed and fails (invalid integer input, carrying ``MissingRowsError/marker`` and the
    /// counts) when they are fewer. The failure aborts the transaction on the server, and the
    /// COMMIT that rides the same pipeline with it rolls back, so no extra round trip is needed
    /// to check — the reason it is not done after the statement as on SQLite, whose row count
    /// is known at once. The message depends on the count, so PostgreSQL cannot fold the cast
    /// (and fail) when it plans the statement.
    static func requiringRows(_ update: String, rows: Int) -> String {
        "WITH changed AS (\(update) RETURNING 1) SELECT CASE WHEN count(*) = \(rows) THEN 0 "
            + "ELSE CAST('\(MissingRowsError.marker): ' || count(*) || ' of \(rows) updated' AS INTEGER) END FROM changed"
    }

    /// SQLite's prepared statement writing `rows` rows of `R`.
    func statement<R: HotRow>(_: R.Type, rows: Int, on connection: SQLiteConnection) throws -> SQLStatement {
        let slot = Self.slot(R.self, rows: rows)
        if let s = statements[slot] { return s }
        let s = try SQLStatement(connection, text(R.self, rows: rows))
        statements[slot] = s
        return s
    }

    static func chunkIndex(_ rows: Int) -> Int {
        switch rows {
        case 32: 0
        case 16: 1
        case 8: 2
        case 4: 3
        case 2: 4
        case 1: 5
        default: preconditionFailure("hot statements hold 1, 2, 4, 8, 16 or 32 rows, not \(rows)")
        }
    }

    /// `rows` placeholder rows of `columns` parameters each (`(?,?,?),(?,?,?)`), comma-separated.
    static func values(columns: Int, rows: Int) -> String {
        values("(" + Array(repeating: "?", count: columns).joined(separator: ",") + ")", rows: rows)
    }

    /// `rows` copies of `row`, comma-separated.
    static func values(_ row: String, rows: Int) -> String {
        Array(repeating: row, count: rows).joined(separator: ",")
    }
}

extension Store {
    /// Writes `rows` in order, as few multi-row statements as their count allows (chunks of
    /// ``HotStatements/chunkSizes``). On SQLite through the held statements; on PostgreSQL the
    /// statements join the transaction's pipeline (one round trip per iteration however many).
    func write<R: HotRow>(_ rows: ArraySlice<R>) throws {
        var rest = rows
        while !rest.isEmpty {
            let n = HotStatements.chunkSizes.first { $0 <= rest.count }!
            let chunk = rest.prefix(n)
            if let sqlite = hot.connection {
                let s = try hot.statement(R.self, rows: n, on: sqlite)
                var sink = StatementSink(statement: s)
                for row in chunk { try row.bind(into: &sink) }
                try s.run()
                if R.updatesExistingRows, sqlite.changes != n {
                    throw MissingRowsError(statement: hot.text(R.self, rows: n), expected: n, changed: sqlite.changes)
                }
            } else {
                var sink = ArgumentSink()
                sink.arguments.reserveCapacity(n * R.columns)
                for row in chunk { try row.bind(into: &sink) }
                try connection.run(hot.text(R.self, rows: n), arguments: sink.arguments)
            }
            rest = rest.dropFirst(n)
        }
    }

    /// Updates what changes while a job runs (state, reason, spend, times); cheaper than `save`,
    /// which re-binds the whole workflow text.
    public func update(_ j: JobRecord) throws { try write([JobUpdateRow(job: j)][...]) }

    public func save(_ sub: SubtaskRecord) throws { try write([sub][...]) }

    public func save(_ a: AttemptRecord) throws { try write([a][...]) }

    /// Marks an attempt dispatched: cheaper than re-saving the whole record.
    public func markDispatched(_ id: AttemptID, worker: String, at: WallInstant, deadline: WallInstant) throws {
        try write([DispatchedRow(id: id, worker: worker, at: at, deadline: deadline)][...])
    }

    public func append(_ e: LedgerEntry) throws { try write([e][...]) }
}
