import Foundation

/// Opening the store on PostgreSQL (`coordinator.database: postgres://…`).
extension Store {
    /// The store `database` names: a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`, password
    /// from PGPASSFILE, `?passfile=` or PGPASSWORD; `?sslmode=verify-full&sslrootcert=…` for
    /// TLS), else an SQLite file (created if missing, locked for this process).
    public convenience init(database: String, leaseSeconds: Double = 5) throws {
        if PostgresDatabase.isURL(database) {
            try self.init(postgres: database, leaseSeconds: leaseSeconds)
        } else {
            try self.init(path: database)
        }
    }

    /// The store in the PostgreSQL database at `url`, migrated to this build's schema. Writes
    /// are fenced by the coordinator lease once this process takes it
    /// (``PostgresDatabase/acquireLease(holder:workers:clients:seconds:)``).
    public convenience init(postgres url: String, leaseSeconds: Double = 5) throws {
        let db = try PostgresDatabase(url: url, leaseSeconds: leaseSeconds)
        try db.migrate()
        self.init(connection: db, location: url)
    }

    /// A read-only session on `writer`'s database.
    convenience init(postgresReaderFor writer: PostgresDatabase) throws {
        self.init(connection: try PostgresDatabase(url: writer.url, readOnly: true, timeout: writer.timeout), location: writer.url)
    }

    /// Whether several coordinators may share this store (one leads by the lease).
    public var isShared: Bool { postgres != nil }
}
