import Foundation
import Logging
import PostgresNIO

// Usage: PGNIOBench PORT PASSWORD DB TRANSACTIONS STATEMENTS
// Each transaction: BEGIN, STATEMENTS inserts, COMMIT — (a) each awaited in turn, (b) the
// inserts issued at once on the one connection (what PostgresNIO does with concurrent queries).
let a = CommandLine.arguments
let port = Int(a[1])!, password = a[2], db = a[3], transactions = Int(a[4])!, statements = Int(a[5])!
let config = PostgresConnection.Configuration(host: "127.0.0.1", port: port, username: "agentflow", password: password, database: db, tls: .disable)
let logger = Logger(label: "bench")
let conn = try await PostgresConnection.connect(configuration: config, id: 1, logger: logger)
try await conn.query("CREATE TABLE IF NOT EXISTS nio_t (id bigint, body text)", logger: logger)

func run(concurrent: Bool) async throws -> Double {
    let start = ContinuousClock.now
    var n: Int64 = 0
    for _ in 0..<transactions {
        try await conn.query("BEGIN", logger: logger)
        if concurrent {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<statements {
                    n += 1
                    let id = n
                    group.addTask { try await conn.query("INSERT INTO nio_t VALUES (\(id), \("attempt row body"))", logger: logger) }
                }
                try await group.waitForAll()
            }
        } else {
            for _ in 0..<statements {
                n += 1
                try await conn.query("INSERT INTO nio_t VALUES (\(n), \("attempt row body"))", logger: logger)
            }
        }
        try await conn.query("COMMIT", logger: logger)
    }
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
for concurrent in [false, true, false, true] {
    let s = try await run(concurrent: concurrent)
    print(String(format: "postgres-nio %@: %d transactions x %d inserts in %.3f s = %.2f ms per transaction",
                 concurrent ? "concurrent" : "awaited   ", transactions, statements, s, s * 1000 / Double(transactions)))
}
try await conn.closeGracefully()
