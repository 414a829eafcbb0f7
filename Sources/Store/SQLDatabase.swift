/// What the store needs of a database connection: SQLite's (``SQLiteConnection``), or
/// PostgreSQL's (``PostgresDatabase``). The store's statements are written once, in the SQL
/// both understand (`?` placeholders, `INSERT … ON CONFLICT`), so the two stores keep the same
/// semantics by construction. A connection belongs to one thread.
public protocol SQLDatabase: AnyObject {
    /// Runs one or more statements with no parameters and no results.
    func execute(_ sql: String) throws
    /// Runs a statement that returns no rows (PostgreSQL: queued until the transaction commits,
    /// or until a read in it needs what it wrote).
    func run(_ sql: String, arguments: [any SQLBindable]) throws
    /// Runs a query whose arguments are built at run time and returns every row.
    func query(_ sql: String, arguments: [any SQLBindable]) throws -> [Row]
    /// Rows the last INSERT, UPDATE or DELETE changed (0 for an insert a conflict skipped).
    var changes: Int { get throws }
    /// Opens a transaction; ``commit()`` makes it durable (one fsync), ``rollback()`` drops it.
    func begin() throws
    func commit() throws
    func rollback() throws
}

extension SQLDatabase {
    /// Runs a statement that returns no rows.
    public func run(_ sql: String, _ args: any SQLBindable...) throws { try run(sql, arguments: args) }
    /// Runs a query and returns every row.
    public func query(_ sql: String, _ args: any SQLBindable...) throws -> [Row] { try query(sql, arguments: args) }
}

extension SQLiteConnection: SQLDatabase {
    public func begin() throws { try execute("BEGIN") }
    public func commit() throws { try execute("COMMIT") }
    public func rollback() throws { try execute("ROLLBACK") }
}
