import AgentFlowCore

/// One state change the coordinator's core decided, as data. The core never writes the store
/// itself: it appends these, and the shell applies every write of a loop iteration, in order,
/// inside that iteration's transaction, commits, and only then sends the iteration's messages.
public enum StoreWrite: Sendable, Equatable {
    /// A new job with its workflow text (or, on conflict, its mutable fields).
    case insertJob(JobRecord)
    /// What changes while a job runs: state, reason, spend, times.
    case updateJob(JobRecord)
    case subtask(SubtaskRecord)
    case attempt(AttemptRecord)
    /// A dispatched attempt's end: only its state, usage, end time and detail are written (its
    /// row exists: it was inserted when queued, updated when dispatched).
    case attemptEnded(AttemptRecord)
    /// An attempt sent to `worker` at `at`, with the deadline it carries.
    case dispatched(AttemptID, worker: String, at: WallInstant, deadline: WallInstant)
    /// A row of the append-only ledger.
    case ledger(LedgerEntry)
    /// A worker's row: its record, its state and when it was last heard from (wall clock).
    case worker(WorkerRecord, state: WorkerState, lastSeen: WallInstant)
    /// The files a subtask kept: its passing attempt's outputs.
    case outputs(OutputBundle, job: String, subtask: String, n: Int)
    /// Transcript entries a worker streamed for an attempt, stored within `limits`.
    case transcript(AttemptID, [TranscriptEntry], limits: TranscriptLimits, at: WallInstant)
    /// A tenant's decaying fair-share usage as it stood at `at` (``TenantUsage``).
    case tenantUsage(tenant: String, usage: Double, at: WallInstant)
    /// What a tenant's jobs have been charged so far in one budget period.
    case tenantSpend(tenant: String, TenantSpend)
}
