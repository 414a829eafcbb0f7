import Foundation

/// Opening the store on PostgreSQL (`coordinator.database: postgres://…`).
extension Store {
    /// The store `database` names: a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`, password
    /// from PGPASSFILE, `?passfile=` or PGPASSWORD; `?sslmode=verify-full&sslrootcert=…` for
    /// TLS), else an SQLite file (created if missing, locked for this process).
    public convenience init(database: String, lease: Duration = .seconds(5)) throws {
        if PostgresDatabase.isURL(database) {
            try self.init(postgres: database, lease: lease)
        } else {
            try self.init(path: database)
        }
    }

    /// The store in the PostgreSQL database at `url`, migrated to this build's schema. Writes
    /// are fenced by the coordinator lease once this process takes it
    /// (``PostgresDatabase/acquireLease(holder:workers:clients:for:)``).
    public convenience init(postgres url: String, lease: Duration = .seconds(5)) throws {
        let db = try PostgresDatabase(url: url, lease: lease)
        try db.migrate()
        self.init(connection: db, location: url)
    }

    /// A read-only session on the PostgreSQL database at `url` (`agentflow status --database
    /// postgres://…`): nothing is migrated or written; a schema this build does not know is refused.
    public convenience init(readingPostgres url: String) throws {
        let db = try PostgresDatabase(url: url, readOnly: true)
        let version = try db.schemaVersion()
        guard version > 0 else { throw StoreOpenError(database: PostgresConnection.redacted(url), problem: "not an AgentFlow database (no migrations applied)") }
        guard version <= PostgresSchema.migrations.count else {
            throw StoreOpenError(database: PostgresConnection.redacted(url), problem: """
                its schema (version \(version)) is newer than this agentflow knows (\(PostgresSchema.migrations.count)); upgrade agentflow
                """)
        }
        self.init(connection: db, location: url)
    }

    /// A read-only session on `writer`'s database.
    convenience init(postgresReaderFor writer: PostgresDatabase) throws {
        self.init(connection: try PostgresDatabase(url: writer.url, readOnly: true, timeout: writer.timeout), location: writer.url)
    }

    /// Whether several coordinators may share this store (one leads by the lease).
    public var isShared: Bool { postgres != nil }
}
