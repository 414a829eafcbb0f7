import AgentFlowCore
import Coordinator
import Foundation
import HTTPAPI
import Store
import Wire

/// Where `status`, `jobs`, `attempts`, `ledger` and `report` read a job's history: the
/// coordinator when it answers, else its database, read-only (a job that ended is all in the
/// SQLite file; `agentflow run` leaves no coordinator behind). `--database F` reads F (a file, or a
/// `postgres://` URL: any coordinator's database, the standbys' too) directly.
/// The database is read by the coordinator's own `QueryService`, so both print the same thing.
enum HistoryReader {
    /// Asks the coordinator; when nothing listens at its endpoint and the cluster's database
    /// file is here, asks that database instead and says so on stderr. A coordinator that is
    /// there but refuses or does not answer stays an error (exit 3): its database may be ahead
    /// of what this host sees, and a key problem must not be hidden. Every request goes to
    /// the source that answered the first, so the replies agree.
    /// `more` may ask a second round of requests, from the first round's replies, of the same source.
    static func ask(_ requests: [ClientRequest], _ cluster: ClusterOptions, database: String?,
                    then more: ([ClientReply]) -> [ClientRequest] = { _ in [] }) throws -> [ClientReply] {
        func answered(by service: QueryService) -> [ClientReply] {
            let first = requests.map(service.answer)
            return first + more(first).map(service.answer)
        }
        if let database { return answered(by: try open(database)) }
        let fallback = try cluster.databasePath()
        let client = try cluster.makeClient()
        // Nothing listening is known within a second (the port refuses); waiting the full
        // timeout would only delay the fallback or the error.
        client.giveUpWithoutConnection = 1
        do {
            let first = try requests.map { try client.request($0) }
            return first + (try more(first).map { try client.request($0) })
        } catch let e as CLIError where e.code == 3 && e.nobodyListening {
            guard let fallback, FileManager.default.fileExists(atPath: fallback) else {
                throw CLIError.unreachable(e.message + (fallback.map { " (and there is no database at \($0) to read instead; --database F names one)" } ?? ""))
            }
            printError("note: \(e.message)\nnote: reading the database \(fallback) instead (read-only)")
            return answered(by: try open(fallback))
        }
    }

    /// The coordinator's query service on a read-only store; a file that cannot be read is bad
    /// input (exit 2). No live job is in it: what the file says is all there is.
    static func open(_ path: String) throws -> QueryService {
        do {
            let store = PostgresDatabase.isURL(path) ? try Store(readingPostgres: path) : try Store(readingOnly: path)
            return QueryService(reader: store, board: LiveBoard(), telemetry: Telemetry(), wallClock: { SystemTime().wallInstant })
        } catch let e as StoreOpenError {
            throw CLIError.badInput(e.description)
        } catch let e as PostgresError where e.kind != .server {
            throw CLIError.unreachable("\(e)")
        } catch let e as PostgresError {
            throw CLIError.badInput("\(e)")
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

    /// A job with its attempts, ledger and transcripts (the HTML report), from one source. The
    /// transcripts of dispatched attempts are read in order until ``HTTPAPI/ReportPage/maxTranscriptBytes``
    /// or ``HTTPAPI/ReportPage/maxTranscripts``; the rest are named as left out.
    static func full(_ id: String, _ cluster: ClusterOptions, database: String?) throws
        -> (JobReport, [AttemptInfo], [LedgerLine], (kept: [TranscriptReport], leftOut: [String])) {
        var dispatched: [AttemptInfo] = []
        let replies = try ask([.status(job: id), .attempts(job: id), .ledger(job: id)], cluster, database: database) { first in
            guard case .attempts(let list) = first[1] else { return [] }
            dispatched = list.filter { $0.dispatchedAt != nil }
            return dispatched.prefix(ReportPage.maxTranscripts).map { .transcript(job: id, subtask: $0.subtask, n: $0.n) }
        }
        let list = try attempts(replies[1])
        let wanted = Array(dispatched.prefix(ReportPage.maxTranscripts))
        var kept: [TranscriptReport] = []
        var leftOut = dispatched.dropFirst(wanted.count).map(\.id)
        var bytes = 0
        if !wanted.isEmpty {
            for (a, reply) in zip(wanted, replies.dropFirst(3)) {
                guard case .transcript(let t) = reply, t.entries > 0 else { continue }
                if bytes + t.bytes > ReportPage.maxTranscriptBytes {
                    leftOut.append(a.id)
                    continue
                }
                bytes += t.bytes
                kept.append(t)
            }
        }
        return (try job(replies[0]), list, try ledger(replies[2]), (kept, leftOut))
    }

    static func transcript(_ id: String, subtask: String, n: Int, _ cluster: ClusterOptions, database: String?) throws -> TranscriptReport {
        switch try ask([.transcript(job: id, subtask: subtask, n: n)], cluster, database: database)[0] {
        case .transcript(let t): return t
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
        }
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
