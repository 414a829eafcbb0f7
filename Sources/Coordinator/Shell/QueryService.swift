import AgentFlowCore
import Foundation
import Store
import Wire

/// The read-only queries — status, job lists, attempts, the ledger, event windows — answered
/// from a read connection of their own (WAL: readers never wait for the loop's writer) and the
/// live views the core published with its last commit. They never reach the core, its loop or
/// its connection. Not thread-safe: one thread (the query thread, or the simulator) uses it.
public final class QueryService {
    let reader: Store
    let board: LiveBoard
    let telemetry: Telemetry
    let wallClock: @Sendable () -> WallInstant
    /// Parsed workflows of jobs asked about, for the DAG's edges in reports (bounded).
    private var needsCache: [NeedsKey: [String: [String]]] = [:]
    private var needsOrder: [NeedsKey] = []
    static let needsCacheSize = 256
    /// Workflow texts up to this size are cache keys themselves (shared by the jobs of one
    /// workflow); a larger one is kept under its job's id, so the cache holds at most
    /// 256 × 16 KiB of text.
    static let sharedTextLimit = 16 * 1024

    /// `reader` must be a read connection to the core's database (``Store/init(reading:)``).
    public init(reader: Store, board: LiveBoard, telemetry: Telemetry, wallClock: @escaping @Sendable () -> WallInstant) {
        self.reader = reader
        self.board = board
        self.telemetry = telemetry
        self.wallClock = wallClock
    }

    /// Answers a read-only request (``Wire/ClientRequest/isReadOnlyQuery``); an error reply
    /// for anything else, or when the store cannot be read.
    public func answer(_ request: ClientRequest) -> ClientReply {
        do {
            return try answering(request)
        } catch {
            return .error(code: 1, message: "cannot read the store: \(error)")
        }
    }

    func answering(_ request: ClientRequest) throws -> ClientReply {
        let now = wallClock()
        switch request {
        case .status(let id):
            guard let record = try reader.job(id) else { return .error(code: 4, message: "no job \(Limits.printable(id))") }
            return .job(try report(record, view: board.view(id), now: now, withNeeds: true))
        case .jobs:
            let records = try reader.recentJobs(limit: 100)
            let views = board.views(records.map(\.id))
            return .jobs(try records.map { try report($0, view: views[$0.id], now: now) })
        case .attempts(let id):
            guard try reader.job(id) != nil else { return .error(code: 4, message: "no job '\(id)'") }
            let progress = board.view(id)?.progress ?? [:]
            return .attempts(try reader.attempts(of: id)
                .map { $0.info(progress: progress[$0.id]) }
                .sorted { ($0.createdAt, $0.subtask, $0.n) < ($1.createdAt, $1.subtask, $1.n) })
        case .ledger(let id):
            guard try reader.job(id) != nil else { return .error(code: 4, message: "no job '\(id)'") }
            return .ledger(try reader.ledgerLines(of: id).map { seq, e in
                LedgerLine(seq: seq, attempt: e.attempt.description, subtask: e.attempt.subtask, n: e.attempt.n, role: e.role, model: e.model,
                           tokensIn: e.tokensIn, tokensOut: e.tokensOut, usd: e.usd.usd, kind: e.kind, at: isoTime(e.at))
            })
        case .events(let id, let after):
            if let view = board.view(id) { return .events(telemetry.batch(id, after: after, live: view.live)) }
            guard try reader.job(id) != nil else { return .error(code: 4, message: "no job '\(id)'") }
            return .events(telemetry.batch(id, after: after, live: false))
        case .queryJobs(let q):
            guard (1...500).contains(q.limit), q.offset >= 0 else {
                return .error(code: 2, message: "limit must be 1…500 and offset at least 0")
            }
            if let s = q.state, JobState(rawValue: s) == nil {
                return .error(code: 2, message: "unknown state '\(s)' (expected one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let page = try reader.jobs(state: q.state, workflow: q.workflow, tenant: q.tenant, limit: q.limit, offset: q.offset)
            let views = board.views(page.jobs.map(\.id))
            return .jobPage(JobPage(jobs: try page.jobs.map { try report($0, view: views[$0.id], now: now) },
                                    total: page.total, limit: q.limit, offset: q.offset))
        case .outputs(let id):
            guard try reader.job(id) != nil else { return .error(code: 4, message: "no job \(Limits.printable(id))") }
            return .outputs(try OutputQueries.outputs(of: id, reader: reader))
        case .outputBundle(let id, let subtask):
            guard try reader.job(id) != nil else { return .error(code: 4, message: "no job \(Limits.printable(id))") }
            guard let blob = try OutputQueries.bundle(of: id, subtask: subtask, reader: reader) else {
                return .error(code: 4, message: "subtask \(Limits.printable(subtask)) of job \(id) kept no files")
            }
            return .bundle(blob)
        case .transcript(let id, let subtask, let n):
            return try transcript(AttemptID(job: id, subtask: subtask, n: n))
        case .scoped(let scope, let inner):
            return try answering(inner, as: scope)
        case .submit, .workers, .cancel, .drain, .queue, .tenants:
            return .error(code: 1, message: "not a read-only query")
        }
    }

    /// One attempt's transcript (``Wire/TranscriptReport``), with a note saying why it is empty
    /// or was deleted.
    func transcript(_ id: AttemptID) throws -> ClientReply {
        guard try reader.job(id.job) != nil else { return .error(code: 4, message: "no job \(Limits.printable(id.job))") }
        let progress = board.view(id.job)?.progress ?? [:]
        let attempts = try reader.attempts(of: id.job)
        guard let record = attempts.first(where: { $0.id == id }) else {
            let known = attempts.filter { $0.id.subtask == id.subtask }.map { "#\($0.id.n)" }
            return .error(code: 4, message: "job \(id.job) has no attempt \(Limits.printable(id.subtask))#\(id.n)"
                          + (known.isEmpty ? (attempts.isEmpty ? "" : " (its attempts: " + Self.attemptNames(attempts) + ")")
                                           : " (that subtask's attempts: \(known.joined(separator: ", ")))"))
        }
        let info = record.info(progress: progress[id])
        let stored = try reader.transcript(of: id)
        var note: String?
        if let pruned = stored?.pruned {
            note = "the transcripts of job \(id.job) (\(pruned.entries) entries, \(pruned.bytes) bytes) were deleted at \(isoTime(pruned.at)): \(pruned.reason)"
        } else if stored == nil || stored?.entries.isEmpty == true {
            switch record.state {
            case .queued: note = "the attempt has not been dispatched yet"
            case .cancelled where record.dispatchedAt == nil: note = "the attempt was cancelled before it was dispatched"
            default: note = "no transcript was recorded (the worker's backend records none — sim does not —, coordinator.transcripts.perAttempt is 0, or nothing arrived before the worker stopped)"
            }
        }
        return .transcript(TranscriptReport(attempt: info, entries: stored?.entries ?? [], bytes: stored?.bytes ?? 0,
                                            refused: stored?.refused ?? 0, note: note))
    }

    static func attemptNames(_ attempts: [AttemptRecord]) -> String {
        let names = attempts.prefix(10).map { "\($0.id.subtask)#\($0.id.n)" }
        return names.joined(separator: ", ") + (attempts.count > 10 ? " and \(attempts.count - 10) more" : "")
    }

    /// A request made with `scope`'s rights (the client socket checked the role): a scope
    /// bound to a tenant sees that tenant's jobs only, and asking for another's is refused.
    func answering(_ inner: ClientRequest, as scope: ClientScope) throws -> ClientReply {
        guard let tenant = scope.tenant else { return try answering(inner) }
        func owned(_ id: String) throws -> ClientReply? {
            guard let record = try reader.job(id), record.tenant != tenant else { return nil }
            telemetry.refusals.refused(.tenant)
            return .error(code: ClientReply.notAuthorized,
                          message: "this credential belongs to tenant \(tenant); job \(Limits.printable(id)) belongs to another tenant")
        }
        switch inner {
        case .status(let id), .attempts(let id), .ledger(let id), .events(let id, _), .outputs(let id), .outputBundle(let id, _),
             .transcript(let id, _, _):
            return try owned(id) ?? answering(inner)
        case .jobs:
            let now = wallClock()
            let records = try reader.jobs(state: nil, workflow: nil, tenant: tenant, limit: 100, offset: 0).jobs
            let views = board.views(records.map(\.id))
            return .jobs(try records.map { try report($0, view: views[$0.id], now: now) })
        case .queryJobs(var q):
            q.tenant = tenant
            return try answering(.queryJobs(q))
        case .scoped:
            return .error(code: 2, message: "a request carries at most one scope")
        default:
            return try answering(inner)
        }
    }

    /// A job's report: its rows, and — while the core holds it — its live view (reservations,
    /// why it waits, its success estimate). `withNeeds` adds the DAG's edges (single-job
    /// requests only: lists skip the parse).
    func report(_ r: JobRecord, view: LiveJobView?, now: WallInstant, withNeeds: Bool = false) throws -> JobReport {
        var record = r
        if let view {
            record.state = view.state
            record.reason = view.reason
            record.spentTokens = view.budget.spentTokens
        }
        var report = JobReports.make(record, subtasks: try JobReports.subtasks(r.id, try reader.subtasks(of: r.id), reader: reader,
                                                                                needs: withNeeds ? needs(of: r) : [:]),
                                     reserved: .zero, now: now)
        report.tenant = r.tenant
        if let view {
            report.budget = view.budget
            report.waiting = view.waiting
            report.successEstimate = view.successEstimate
        }
        return report
    }

    /// Subtask → the subtasks it needs, from the job's stored workflow. Kept per workflow text
    /// (and file name), not per job: many jobs of one workflow parse it once, so a new job's first
    /// report (what `POST /api/v1/jobs` answers with) costs no YAML parse — it was a fifth of the
    /// process's time in `bench intake --transport http`.
    func needs(of r: JobRecord) -> [String: [String]] {
        let key = r.yaml.utf8.count <= Self.sharedTextLimit ? NeedsKey(yaml: r.yaml, file: r.file, job: nil)
                                                             : NeedsKey(yaml: "", file: r.file, job: r.id)
        if let n = needsCache[key] { return n }
        var needs: [String: [String]] = [:]
        if let w = try? Workflow.parse(yaml: r.yaml, file: r.file, knownModels: nil) {
            needs = Dictionary(uniqueKeysWithValues: w.subtasks.map { ($0.id, $0.needs) })
        }
        needsCache[key] = needs
        needsOrder.append(key)
        if needsOrder.count > Self.needsCacheSize { needsCache[needsOrder.removeFirst()] = nil }
        return needs
    }

    /// What a workflow's needs depend on: its text and the file name it was parsed under (or,
    /// for a large text, the one job it belongs to).
    struct NeedsKey: Hashable {
        var yaml: String
        var file: String
        var job: String?
    }
}
