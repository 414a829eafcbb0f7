import AgentFlowCore
import Foundation

/// Protocol version; a peer speaking another version is rejected at registration.
public let wireVersion = 1

/// What a worker says about itself when it registers: its ``WorkerRecord`` and the protocol
/// version it speaks. On the wire the record's fields stand beside `version` in one map, as
/// they always have (`WorkerCoding.swift`).
public struct WorkerInfo: Sendable, Equatable {
    public var worker: WorkerRecord
    public var version: Int

    public init(_ worker: WorkerRecord, version: Int = wireVersion) {
        self.worker = worker
        self.version = version
    }
}

/// A finished attempt as the worker reports it.
public struct AttemptReport: Codable, Sendable {
    public var id: AttemptID
    public var outcome: AttemptOutcome

    public init(id: AttemptID, outcome: AttemptOutcome) {
        self.id = id
        self.outcome = outcome
    }
}

/// Worker → coordinator, one JSON frame after the ROUTER's identity frame.
public enum WorkerMessage: Codable, Sendable {
    /// First message after (re)connecting: what the worker is, what it is still running, and
    /// results it holds that the coordinator has not acknowledged; `queued`: attempts it holds
    /// but has not started (prefetched behind a busy slot, in the order they will start; left
    /// out when nil, as workers before prefetch sent it).
    case register(info: WorkerInfo, running: [AttemptID], finished: [AttemptReport], queued: [AttemptID]? = nil)
    case heartbeat
    /// Tokens an attempt has used so far.
    case progress(id: AttemptID, tokens: Int)
    case result(AttemptReport)
    /// The worker is shutting down gracefully.
    case goodbye
    /// The worker is draining (SIGTERM): send it no new attempts; it finishes or cancels what it
    /// runs, then says goodbye.
    case draining
    /// Input blobs (by SHA-256) that a dispatched attempt names but the dispatch did not carry
    /// and the worker does not have; the coordinator answers with `blobs`.
    case fetchBlobs(attempt: AttemptID, sha256s: [String])
    /// Transcript entries of an attempt, streamed as they happen and sent again after every
    /// welcome until the attempt's result is acknowledged (the coordinator stores each once).
    case transcript(id: AttemptID, entries: [TranscriptEntry])
    /// What the worker's model server says about its load, sent with each heartbeat while the
    /// server reports one (placement counts it; a server that says nothing sends nothing).
    case serverLoad(ServerLoad)
}

/// Coordinator → worker.
public enum CoordinatorMessage: Codable, Sendable {
    case welcome(heartbeat: Double, liveness: Int)
    case heartbeat
    case dispatch(AttemptSpec)
    case cancel(id: AttemptID)
    /// Results were recorded (and committed); the worker may forget them.
    case ack(ids: [AttemptID])
    /// The coordinator does not know this worker (it restarted): register again.
    case reregister
    case rejected(reason: String)
    /// Blob bodies a worker asked for with `fetchBlobs` (each checked against its name on receipt).
    case blobs([Blob])
    /// A standby coordinator's answer to a registration (several coordinators share one
    /// PostgreSQL database; one leads): register with `leader` — the workers endpoint of the
    /// one that leads, as workers name it — or, when empty (none leads right now), with the
    /// next coordinator endpoint.
    case notLeader(leader: String)
}

/// What `agentflow submit` sends.
public struct SubmitRequest: Codable, Sendable {
    /// The workflow file's text and name (the coordinator re-validates it against its cluster).
    public var yaml: String
    public var file: String
    public var budgetTokens: Int?
    public var budgetUSD: Double?
    /// Relative deadline in seconds.
    public var deadline: Double?
    public var planner: String?
    public var seed: UInt64?
    public var priority: Int
    /// Stop early as `infeasible` when the planner's completion estimate falls below this.
    public var minSuccess: Double?
    /// Whose fair share of the fleet the job counts against (`agentflow submit --tenant`).
    public var tenant: String?
    /// Answer with the new job's report (``ClientReply/job(_:)``, what `status` returns) instead
    /// of ``ClientReply/submitted(job:)`` (the HTTP API's 201 body, without a second request).
    public var answerWithReport: Bool?

    public init(yaml: String, file: String, budgetTokens: Int? = nil, budgetUSD: Double? = nil, deadline: Double? = nil,
                planner: String? = nil, seed: UInt64? = nil, priority: Int = 0, minSuccess: Double? = nil, tenant: String? = nil) {
        self.yaml = yaml
        self.file = file
        self.budgetTokens = budgetTokens
        self.budgetUSD = budgetUSD
        self.deadline = deadline
        self.planner = planner
        self.seed = seed
        self.priority = priority
        self.minSuccess = minSuccess
        self.tenant = tenant
    }
}

/// CLI → coordinator.
public enum ClientRequest: Codable, Sendable {
    case submit(SubmitRequest)
    case status(job: String)
    case jobs
    case workers
    case cancel(job: String)
    /// `agentflow drain WORKER` (drained: true) and `undrain` (false): no new attempts for the worker.
    case drain(worker: String, drained: Bool)
    /// A job's attempts, oldest first (`agentflow attempts`, the HTTP API, reports).
    case attempts(job: String)
    /// A job's spend ledger lines in order.
    case ledger(job: String)
    /// A job's events after sequence number `after` (the HTTP events stream).
    case events(job: String, after: Int)
    /// Jobs matching filters, newest first, one page.
    case queryJobs(JobQuery)
    /// Attempts waiting for slots, per model and job in the cross-job policy's order (`agentflow queue`).
    case queue
    /// What each subtask of a job kept: manifests (`agentflow outputs`, `GET …/outputs`).
    case outputs(job: String)
    /// One subtask's kept files, packed (gzip-compressed tar).
    case outputBundle(job: String, subtask: String)
    /// One attempt's transcript (`agentflow attempts JOB --transcript SUBTASK#N`, the HTTP API).
    case transcript(job: String, subtask: String, n: Int)
    /// Every tenant's share, usage, spend in its budget period and jobs (`agentflow tenants`).
    case tenants
    /// `request` made with the rights of `scope` (issue 18): the HTTP server sends each request
    /// with its token's scope, and the coordinator wraps a request from a tenant-bound key in the
    /// key's. A scope only ever narrows what the sender may do; the coordinator checks it.
    indirect case scoped(ClientScope, ClientRequest)
}

/// Coordinator → CLI.
public enum ClientReply: Codable, Sendable {
    case submitted(job: String)
    case job(JobReport)
    case jobs([JobReport])
    case workers([WorkerReport])
    case attempts([AttemptInfo])
    case ledger([LedgerLine])
    case events(EventBatch)
    case jobPage(JobPage)
    case queue([QueueEntry])
    case outputs([SubtaskOutputs])
    case bundle(Blob)
    case transcript(TranscriptReport)
    case tenants([TenantReport])
    /// `code` 2: bad input; 4: not found; ``ClientReply/notAuthorized``: refused; 1: other.
    case error(code: Int, message: String)

    /// The error code of a request the client's key may not make (`agentflow` exits 4).
    public static let notAuthorized = 403
    /// `code` of a write sent to a standby coordinator (several share one PostgreSQL
    /// database): the message names the leader's client endpoint; ask it, or the next one.
    public static let notLeader = 421
}

extension ClientRequest {
    /// The least a client must be to make this request (see ``AgentFlowCore/ClientRole``).
    public var requiredRole: ClientRole {
        switch self {
        case .status, .jobs, .workers, .attempts, .ledger, .events, .queryJobs, .queue, .outputs, .outputBundle, .transcript, .tenants: return .read
        case .submit, .cancel: return .submit
        case .drain: return .admin
        case .scoped(_, let r): return r.requiredRole
        }
    }
}

/// Budget section of a job report (DESIGN.md §5). Limits that are not set encode as `null`
/// rather than being left out, so every documented field is always present.
public struct BudgetReport: Codable, Sendable, Equatable {
    @ExplicitNull public var limitTokens: Int?
    @ExplicitNull public var limitUSD: Double?
    public var spentTokens: Int
    public var spentUSD: Double
    public var reservedTokens: Int
    public var reservedUSD: Double

    public init(limitTokens: Int?, limitUSD: Double?, spentTokens: Int, spentUSD: Double, reservedTokens: Int, reservedUSD: Double) {
        self.limitTokens = limitTokens
        self.limitUSD = limitUSD
        self.spentTokens = spentTokens
        self.spentUSD = spentUSD
        self.reservedTokens = reservedTokens
        self.reservedUSD = reservedUSD
    }
}

/// Tokens one scaffold role used.
public struct RoleTokens: Codable, Sendable, Equatable {
    public var role: String
    public var tokens: Int

    public init(role: String, tokens: Int) {
        self.role = role
        self.tokens = tokens
    }
}

public struct SubtaskReport: Codable, Sendable, Equatable {
    public var id: String
    public var state: SubtaskState
    /// Model of the attempt that passed, else of the latest attempt.
    @ExplicitNull public var model: String?
    public var attempts: Int
    public var tokens: Int
    public var usd: Double
    @ExplicitNull public var output: String?
    /// Tokens charged per scaffold role (agent, corrector, summarizer), as in the ledger.
    public var roles: [RoleTokens]
    /// How the latest finished attempt ended, in the worker's words ("verified on turn 2
    /// (corrector's patch)"); empty before any attempt has ended.
    public var note: String
    /// The subtasks it needs (the DAG's edges).
    public var needs: [String]
    /// The files it kept (path, size, SHA-256), once it succeeded; `agentflow outputs` gives them.
    public var outputs: [OutputFile] = []

    public init(id: String, state: SubtaskState, model: String?, attempts: Int, tokens: Int, usd: Double, output: String?,
                roles: [RoleTokens] = [], note: String = "", needs: [String] = []) {
        self.needs = needs
        self.roles = roles
        self.note = note
        self.id = id
        self.state = state
        self.model = model
        self.attempts = attempts
        self.tokens = tokens
        self.usd = usd
        self.output = output
    }
}

/// A job as `status --json` prints it (DESIGN.md §5). Times are ISO 8601 strings; times not
/// reached yet encode as `null`.
public struct JobReport: Codable, Sendable, Equatable {
    public var id: String
    public var workflow: String
    public var state: JobState
    public var reason: String
    /// While the job runs: why it cannot go on now ("gpu0, gpu1 suspended — model server
    /// refuses connections": no worker it could use takes attempts); empty otherwise.
    public var waiting: String
    /// While the job is queued or running: the estimated probability that it finishes within
    /// budget and deadline under the current load (`nil` when over or unknown).
    @ExplicitNull public var successEstimate: Double?
    /// Whose fair share of the fleet the job counts against.
    @ExplicitNull public var tenant: String?
    public var planner: String
    public var budget: BudgetReport
    public var submittedAt: String
    public var deadline: String
    @ExplicitNull public var startedAt: String?
    @ExplicitNull public var endedAt: String?
    /// Seconds from submission to the deadline.
    public var deadlineSeconds: Double
    /// Seconds from when the job got its first slot to the end (or to now, while running);
    /// 0 while it is queued (the deadline still counts from submission).
    public var elapsedSeconds: Double
    public var subtasks: [SubtaskReport]

    public init(id: String, workflow: String, state: JobState, reason: String, planner: String, budget: BudgetReport,
                submittedAt: String, deadline: String, startedAt: String?, endedAt: String?, deadlineSeconds: Double,
                elapsedSeconds: Double, subtasks: [SubtaskReport], waiting: String = "") {
        self.id = id
        self.waiting = waiting
        self.workflow = workflow
        self.state = state
        self.reason = reason
        self.planner = planner
        self.budget = budget
        self.submittedAt = submittedAt
        self.deadline = deadline
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.deadlineSeconds = deadlineSeconds
        self.elapsedSeconds = elapsedSeconds
        self.subtasks = subtasks
    }
}

/// A worker as `agentflow workers` and `GET /api/v1/workers` show it: its ``WorkerRecord`` with
/// what the coordinator sees now. Encoded flat, as it always was (`WorkerCoding.swift`).
public struct WorkerReport: Sendable, Equatable {
    public var worker: WorkerRecord
    public var busy: Int
    public var state: WorkerState
    /// ISO 8601.
    public var lastSeen: String
    /// Why the model server is suspect (the last failure), or empty.
    public var problem: String

    /// The record's `sandbox` line is what a worker registered: it is shown as is, but cut to
    /// 200 characters without control characters.
    public init(_ worker: WorkerRecord, busy: Int, state: WorkerState, lastSeen: String, problem: String = "") {
        self.worker = worker
        self.worker.sandbox = worker.sandbox.map { String(String.UnicodeScalarView($0.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }).prefix(200)) }
        self.busy = busy
        self.state = state
        self.lastSeen = lastSeen
        self.problem = problem
    }
}

/// Encoding of wire messages: the compact binary format of `BinaryCodec` (JSON cost the
/// coordinator more than all its other work per attempt). One instance per thread.
public final class WireCodec {
    public init() {}

    public func encode<T: Encodable>(_ value: T) -> Data {
        // Encoding our own value types cannot fail.
        (try? BinaryCodec.encode(value)) ?? Data()
    }

    /// Decodes a frame; throws on anything malformed (callers count and drop it).
    public func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        try BinaryCodec.decode(type, from: data)
    }
}

/// ISO 8601 for reports.
public func isoTime(_ epoch: Double) -> String {
    Date(timeIntervalSince1970: epoch).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
}

/// ISO 8601 for reports.
public func isoTime(_ instant: WallInstant) -> String { isoTime(instant.secondsSince1970) }

/// One row of `agentflow queue`: a job's attempts waiting for slots of one model.
public struct QueueEntry: Codable, Sendable, Equatable {
    public var model: String
    /// 1 = the job served first when a slot of any model frees (the cross-job policy's order).
    public var place: Int
    public var job: String
    public var tenant: String
    public var priority: Int
    /// Attempts of the job queued for this model, and running on it.
    public var queued: Int
    public var running: Int
    /// Estimated probability that the job finishes within budget and deadline under the current load.
    public var success: Double
    /// Why it waits (`waiting for a slot of model X; N attempts ahead`).
    public var reason: String

    public init(model: String, place: Int, job: String, tenant: String, priority: Int, queued: Int, running: Int, success: Double, reason: String) {
        self.model = model
        self.place = place
        self.job = job
        self.tenant = tenant
        self.priority = priority
        self.queued = queued
        self.running = running
        self.success = success
        self.reason = reason
    }
}
