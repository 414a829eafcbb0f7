import AgentFlowCore
import Coordinator
import Foundation
import Store
import Wire

/// Where `status`, `jobs`, `attempts`, `ledger` and `report` read a job's history: the
/// coordinator when it answers, else its database, read-only (a job that ended is all in the
/// SQLite file; `agentflow run` leaves no coordinator behind). `--database F` reads F directly.
/// The database is read by the coordinator's own `QueryService`, so both print the same thing.
enum HistoryReader {
    /// Asks the coordinator; when nothing listens at its endpoint and the cluster's database
    /// file is here, asks that database instead and says so on stderr. A coordinator that is
    /// there but refuses or does not answer stays an error (exit 3): its database may be ahead
    /// of what this host sees, and a key problem must not be hidden. Every request goes to
    /// the source that answered the first, so the replies agree.
    static func ask(_ requests: [ClientRequest], _ cluster: ClusterOptions, database: String?) throws -> [ClientReply] {
        if let database {
            let service = try open(database)
            return requests.map(service.answer)
        }
        let fallback = try cluster.databasePath()
        let client = try cluster.makeClient()
        // Nothing listening is known within a second (the port refuses); waiting the full
        // timeout would only delay the fallback or the error.
        client.giveUpWithoutConnection = 1
        do {
            return try requests.map { try client.request($0) }
        } catch let e as CLIError where e.code == 3 && e.nobodyListening {
            guard let fallback, FileManager.default.fileExists(atPath: fallback) else {
                throw CLIError.unreachable(e.message + (fallback.map { " (and there is no database at \($0) to read instead; --database F names one)" } ?? ""))
            }
            printError("note: \(e.message)\nnote: reading the database \(fallback) instead (read-only)")
            let service = try open(fallback)
            return requests.map(service.answer)
        }
    }

    /// The coordinator's query service on a read-only store; a file that cannot be read is bad
    /// input (exit 2). No live job is in it: what the file says is all there is.
    static func open(_ path: String) throws -> QueryService {
        do {
            return QueryService(reader: try Store(readingOnly: path), board: LiveBoard(), telemetry: Telemetry(),
                                wallClock: { Date().timeIntervalSince1970 })
        } catch let e as StoreOpenError {
            throw CLIError.badInput(e.description)
        }
    }

    static func job(_ id: String, _ cluster: ClusterOptions, database: String?) throws -> JobReport {
        try job(try ask([.status(job: id)], cluster, database: database)[0])
    }

    static func jobs(_ cluster: ClusterOptions, database: String?) throws -> [JobReport] {
        switch try ask([.jobs], cluster, database: database)[0] {
        case .jobs(let j): return j
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
        }
    }

    static func attempts(_ id: String, _ cluster: ClusterOptions, database: String?) throws -> [AttemptInfo] {
        try attempts(try ask([.attempts(job: id)], cluster, database: database)[0])
    }

    static func ledger(_ id: String, _ cluster: ClusterOptions, database: String?) throws -> [LedgerLine] {
        try ledger(try ask([.ledger(job: id)], cluster, database: database)[0])
    }

    /// A job with its attempts and ledger (the HTML report), from one source.
    static func full(_ id: String, _ cluster: ClusterOptions, database: String?) throws -> (JobReport, [AttemptInfo], [LedgerLine]) {
        let replies = try ask([.status(job: id), .attempts(job: id), .ledger(job: id)], cluster, database: database)
        return (try job(replies[0]), try attempts(replies[1]), try ledger(replies[2]))
    }

    static func job(_ reply: ClientReply) throws -> JobReport {
        switch reply {
        case .job(let j): return j
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
        }
    }

    static func attempts(_ reply: ClientReply) throws -> [AttemptInfo] {
        switch reply {
        case .attempts(let a): return a
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
        }
    }

    static func ledger(_ reply: ClientReply) throws -> [LedgerLine] {
        switch reply {
        case .ledger(let l): return l
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
        }
    }
}
