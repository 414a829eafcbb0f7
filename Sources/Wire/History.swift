import AgentFlowCore
import Foundation

/// One attempt as `agentflow attempts`, `GET /api/v1/jobs/{id}/attempts` and the report show
/// it. Times are ISO 8601 strings (`null` until reached).
public struct AttemptInfo: Codable, Sendable, Equatable {
    /// `job/subtask#n`.
    public var id: String
    public var job: String
    public var subtask: String
    public var n: Int
    public var model: String
    @ExplicitNull public var worker: String?
    /// queued, dispatched, succeeded, failed, cancelled, lost.
    public var state: String
    public var tokenCap: Int
    /// Tokens used: charged once ended; while dispatched, what the worker last reported.
    public var tokens: Int
    public var tokensIn: Int
    public var tokensOut: Int
    public var usd: Double
    public var reservedTokens: Int
    public var reservedUSD: Double
    public var createdAt: String
    @ExplicitNull public var dispatchedAt: String?
    @ExplicitNull public var endedAt: String?
    /// How it ended, in the worker's (or the coordinator's) words.
    public var detail: String

    public init(id: String, job: String, subtask: String, n: Int, model: String, worker: String?, state: String, tokenCap: Int,
                tokens: Int, tokensIn: Int, tokensOut: Int, usd: Double, reservedTokens: Int, reservedUSD: Double,
                createdAt: String, dispatchedAt: String?, endedAt: String?, detail: String) {
        self.id = id
        self.job = job
        self.subtask = subtask
        self.n = n
        self.model = model
        self.worker = worker
        self.state = state
        self.tokenCap = tokenCap
        self.tokens = tokens
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.usd = usd
        self.reservedTokens = reservedTokens
        self.reservedUSD = reservedUSD
        self.createdAt = createdAt
        self.dispatchedAt = dispatchedAt
        self.endedAt = endedAt
        self.detail = detail
    }
}

/// One line of a job's spend ledger (append-only; `kind` charge, clamped or lost).
public struct LedgerLine: Codable, Sendable, Equatable {
    public var seq: Int
    public var attempt: String
    public var subtask: String
    public var n: Int
    public var role: String
    public var model: String
    public var tokensIn: Int
    public var tokensOut: Int
    public var usd: Double
    public var kind: String
    public var at: String

    public init(seq: Int, attempt: String, subtask: String, n: Int, role: String, model: String, tokensIn: Int, tokensOut: Int,
                usd: Double, kind: String, at: String) {
        self.seq = seq
        self.attempt = attempt
        self.subtask = subtask
        self.n = n
        self.role = role
        self.model = model
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.usd = usd
        self.kind = kind
        self.at = at
    }
}

/// A change to a job the events stream carries: the job's state (`job`), one attempt's
/// (`attempt`), or its budget (`budget`, after every reservation, charge and release).
public struct JobEvent: Codable, Sendable, Equatable {
    /// Increases by one per event of the job, from 1.
    public var seq: Int
    public var kind: String
    public var at: String
    public var job: String
    /// The job's state (kind `job`).
    @ExplicitNull public var state: String?
    @ExplicitNull public var reason: String?
    @ExplicitNull public var attempt: AttemptInfo?
    @ExplicitNull public var budget: BudgetReport?

    public init(seq: Int, kind: String, at: String, job: String, state: String? = nil, reason: String? = nil,
                attempt: AttemptInfo? = nil, budget: BudgetReport? = nil) {
        self.seq = seq
        self.kind = kind
        self.at = at
        self.job = job
        self.state = state
        self.reason = reason
        self.attempt = attempt
        self.budget = budget
    }
}

/// Events of a job after a given sequence number. `first` is the oldest the coordinator still
/// holds (it keeps a bounded window per job); a reader that asked for older ones missed some and
/// should re-read the job. `live` is false once the job has ended and settled.
public struct EventBatch: Codable, Sendable, Equatable {
    public var job: String
    public var first: Int
    /// The sequence number the job's next event will get.
    public var next: Int
    public var events: [JobEvent]
    public var live: Bool

    public init(job: String, first: Int, next: Int, events: [JobEvent], live: Bool) {
        self.job = job
        self.first = first
        self.next = next
        self.events = events
        self.live = live
    }
}

/// Filters and pagination for the job list (`GET /api/v1/jobs`).
public struct JobQuery: Codable, Sendable, Equatable {
    public var state: String?
    public var workflow: String?
    public var tenant: String?
    public var limit: Int
    public var offset: Int

    public init(state: String? = nil, workflow: String? = nil, tenant: String? = nil, limit: Int = 50, offset: Int = 0) {
        self.state = state
        self.workflow = workflow
        self.tenant = tenant
        self.limit = limit
        self.offset = offset
    }
}

/// A page of jobs, newest first, and how many match in all.
public struct JobPage: Codable, Sendable, Equatable {
    public var jobs: [JobReport]
    public var total: Int
    public var limit: Int
    public var offset: Int

    public init(jobs: [JobReport], total: Int, limit: Int, offset: Int) {
        self.jobs = jobs
        self.total = total
        self.limit = limit
        self.offset = offset
    }
}
