import AgentFlowCore

/// An iteration's per-attempt writes gathered by table, so each table's rows go out as
/// multi-row statements (``Store/write(_:)``) instead of one statement per row.
///
/// Writes to different rows commute, and so do writes to different tables (no trigger or
/// foreign key links these tables), so only the order of writes to one row matters. The batch
/// keeps at most one pending write per row: a second write to a row that already has one sends
/// that table's pending rows first (`Store.apply`). So within a table the pending upserts and
/// updates touch distinct rows — which PostgreSQL requires of one `INSERT … ON CONFLICT` — and
/// every row ends as the writes, applied one by one in order, would leave it.
struct WriteBatch {
    /// Attempt rows: upserts, dispatch updates and end updates, never two for one attempt.
    var attempts: [AttemptRecord] = []
    var dispatched: [DispatchedRow] = []
    var ended: [EndedRow] = []
    var attemptKeys: Set<AttemptID> = []
    var subtasks: [SubtaskRecord] = []
    var subtaskKeys: Set<SubtaskKey> = []
    var jobs: [JobUpdateRow] = []
    var jobKeys: Set<String> = []

    struct SubtaskKey: Hashable {
        var job: String
        var id: String
    }

    var isEmpty: Bool { attemptKeys.isEmpty && subtaskKeys.isEmpty && jobKeys.isEmpty }
}

extension Store {
    /// Applies `writes` in the open transaction, with the effect of applying them one by one in
    /// order: the attempt, subtask and job rows gathered per table (``WriteBatch``) and written
    /// several to a statement, the ledger's rows last, in their order (nothing in a batch reads
    /// the ledger, and its `seq` order among its own rows is kept). Any other write first sends
    /// everything gathered before it.
    public func apply(_ writes: [StoreWrite]) throws {
        var batch = WriteBatch()
        var ledger: [LedgerEntry] = []
        for w in writes {
            switch w {
            case .attempt(let a):
                if batch.attemptKeys.contains(a.id) { try flushAttempts(&batch) }
                batch.attemptKeys.insert(a.id)
                batch.attempts.append(a)
            case .dispatched(let id, let worker, let at, let deadline):
                if batch.attemptKeys.contains(id) { try flushAttempts(&batch) }
                batch.attemptKeys.insert(id)
                batch.dispatched.append(DispatchedRow(id: id, worker: worker, at: at, deadline: deadline))
            case .attemptEnded(let a):
                if batch.attemptKeys.contains(a.id) { try flushAttempts(&batch) }
                batch.attemptKeys.insert(a.id)
                batch.ended.append(EndedRow(attempt: a))
            case .subtask(let s):
                let key = WriteBatch.SubtaskKey(job: s.job, id: s.id)
                if batch.subtaskKeys.contains(key) { try flushSubtasks(&batch) }
                batch.subtaskKeys.insert(key)
                batch.subtasks.append(s)
            case .updateJob(let j):
                if batch.jobKeys.contains(j.id) { try flushJobs(&batch) }
                batch.jobKeys.insert(j.id)
                batch.jobs.append(JobUpdateRow(job: j))
            case .ledger(let e):
                ledger.append(e)
            default:
                if !batch.isEmpty { try flush(&batch) }
                try applyAlone(w)
            }
        }
        try flush(&batch)
        try write(ledger[...])
    }

    /// Applies `writes` in a transaction of their own and commits it (one fsync); on any error
    /// rolls it back, so nothing of them is left, and rethrows. `applied` is called between the
    /// writes and the commit (the commit pipeline times the two).
    public func applyAndCommit(_ writes: [StoreWrite], applied: () -> Void = {}) throws {
        try begin()
        do {
            try apply(writes)
            applied()
            try commit()
        } catch {
            try? rollback()
            throw error
        }
    }

    private func flush(_ batch: inout WriteBatch) throws {
        try flushAttempts(&batch)
        try flushSubtasks(&batch)
        try flushJobs(&batch)
    }

    private func flushAttempts(_ batch: inout WriteBatch) throws {
        try write(batch.attempts[...])
        try write(batch.dispatched[...])
        try write(batch.ended[...])
        batch.attempts.removeAll(keepingCapacity: true)
        batch.dispatched.removeAll(keepingCapacity: true)
        batch.ended.removeAll(keepingCapacity: true)
        batch.attemptKeys.removeAll(keepingCapacity: true)
    }

    private func flushSubtasks(_ batch: inout WriteBatch) throws {
        try write(batch.subtasks[...])
        batch.subtasks.removeAll(keepingCapacity: true)
        batch.subtaskKeys.removeAll(keepingCapacity: true)
    }

    private func flushJobs(_ batch: inout WriteBatch) throws {
        try write(batch.jobs[...])
        batch.jobs.removeAll(keepingCapacity: true)
        batch.jobKeys.removeAll(keepingCapacity: true)
    }

    /// A write that is not gathered: applied on its own, in its place.
    private func applyAlone(_ w: StoreWrite) throws {
        switch w {
        case .insertJob(let j): try save(j)
        case .updateJob(let j): try update(j)
        case .subtask(let s): try save(s)
        case .attempt(let a): try save(a)
        case .attemptEnded(let a): try write([EndedRow(attempt: a)][...])
        case .dispatched(let id, let worker, let at, let deadline): try markDispatched(id, worker: worker, at: at, deadline: deadline)
        case .ledger(let e): try append(e)
        case .worker(let w, let state, let lastSeen): try save(w, state: state, lastSeen: lastSeen)
        case .outputs(let bundle, let job, let subtask, let n): try save(outputs: bundle, job: job, subtask: subtask, n: n)
        case .transcript(let id, let entries, let limits, let at): try appendTranscript(id, entries, limits: limits, at: at)
        case .tenantUsage(let t, let usage, let at): try saveTenantUsage(t, usage: usage, at: at)
        case .tenantSpend(let t, let spend): try saveTenantSpend(t, spend)
        }
    }
}
