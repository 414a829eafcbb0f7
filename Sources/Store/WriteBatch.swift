import AgentFlowCore

/// An iteration's per-attempt writes gathered by table, so each table's rows go out as
/// multi-row statements (``Store/write(_:)``) instead of one statement per row.
///
/// Writes to different rows commute, and so do writes to different tables (no trigger or
/// foreign key links these tables), so only the order of writes to one row matters. The batch
/// keeps at most one pending write per row. A later write to a row with a pending one is folded
/// into it where the one row left is provably the row the two writes leave one after the other
/// (``fold(_:into:)``); otherwise it sends that table's pending rows first (`Store.apply`). So
/// within a table the pending upserts and updates touch distinct rows — which PostgreSQL
/// requires of one `INSERT … ON CONFLICT` — and every row ends as the writes, applied one by
/// one in order, would leave it.
struct WriteBatch {
    /// Attempt rows: upserts, dispatch updates and end updates, never two for one attempt.
    var attempts: [AttemptRecord] = []
    var dispatched: [DispatchedRow] = []
    var ended: [EndedRow] = []
    /// Which pending write each attempt with one has: an upsert (its index in `attempts`, the
    /// one a later dispatch or end folds into) or an UPDATE (a dispatch or an end).
    var attemptKeys: [AttemptID: Pending] = [:]
    var subtasks: [SubtaskRecord] = []
    /// The index in `subtasks` of each subtask's pending upsert.
    var subtaskKeys: [SubtaskKey: Int] = [:]
    var jobs: [JobUpdateRow] = []
    /// The index in `jobs` of each job's pending update.
    var jobKeys: [String: Int] = [:]

    enum Pending {
        case upsert(Int)
        case update
    }

    struct SubtaskKey: Hashable {
        var job: String
        var id: String
    }

    var isEmpty: Bool { attemptKeys.isEmpty && subtaskKeys.isEmpty && jobKeys.isEmpty }

    /// Whether two keys name one row. Swift's `==` on strings is canonical equivalence (an "é"
    /// precomposed equals "e" + U+0301), so such keys share a slot here while the database,
    /// which compares the bytes bound, holds them as two rows: only keys of the same bytes fold;
    /// the others send the pending rows first, as any repeat did before folding.
    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    static func same(_ a: AttemptID, _ b: AttemptID) -> Bool { a.n == b.n && same(a.job, b.job) && same(a.subtask, b.subtask) }

    /// The index in `attempts` of `id`'s pending upsert when a later write to its row may fold
    /// into it (an upsert is pending and its key has the same bytes); nil otherwise.
    func foldableUpsert(_ id: AttemptID) -> Int? {
        guard case .upsert(let i)? = attemptKeys[id], Self.same(attempts[i].id, id) else { return nil }
        return i
    }

    /// A dispatch folded into the pending upsert of its attempt: the record gets the columns the
    /// dispatch's UPDATE sets (worker, dispatched_at, deadline, state 'dispatched'). The upsert
    /// writes each of them on INSERT and on conflict alike (``AttemptRecord/sql(rows:)``), and
    /// the row exists once it ran, so the UPDATE would have found it: one row, the same row.
    static func fold(_ d: DispatchedRow, into a: inout AttemptRecord) {
        a.worker = d.worker
        a.dispatchedAt = d.at
        a.deadline = d.deadline
        a.state = .dispatched
    }

    /// An end folded into the pending upsert of its attempt: the columns the end's UPDATE sets
    /// (state, usage, ended_at, detail), every one also written by the upsert on conflict. The
    /// end requires its row to exist; after the upsert it does.
    static func fold(_ e: AttemptRecord, into a: inout AttemptRecord) {
        a.state = e.state
        a.tokensIn = e.tokensIn
        a.tokensOut = e.tokensOut
        a.usd = e.usd
        a.endedAt = e.endedAt
        a.detail = e.detail
    }
}

extension Store {
    /// Applies `writes` in the open transaction, with the effect of applying them one by one in
    /// order: the attempt, subtask and job rows gathered per table (``WriteBatch``) and written
    /// several to a statement — a dispatch or an end after its attempt's pending upsert folded
    /// into that upsert, a subtask's or job's later write replacing its pending one (both write
    /// the same columns) — the ledger's rows last, in their order (nothing in a batch reads
    /// the ledger, and its `seq` order among its own rows is kept). Any other write first sends
    /// everything gathered before it.
    public func apply(_ writes: [StoreWrite]) throws {
        var batch = WriteBatch()
        var ledger: [LedgerEntry] = []
        for w in writes {
            switch w {
            case .attempt(let a):
                if batch.attemptKeys[a.id] != nil { try flushAttempts(&batch) }
                batch.attemptKeys[a.id] = .upsert(batch.attempts.count)
                batch.attempts.append(a)
            case .dispatched(let id, let worker, let at, let deadline):
                let row = DispatchedRow(id: id, worker: worker, at: at, deadline: deadline)
                if let i = batch.foldableUpsert(id) {
                    WriteBatch.fold(row, into: &batch.attempts[i])
                    continue
                }
                if batch.attemptKeys[id] != nil { try flushAttempts(&batch) }
                batch.attemptKeys[id] = .update
                batch.dispatched.append(row)
            case .attemptEnded(let a):
                if let i = batch.foldableUpsert(a.id) {
                    WriteBatch.fold(a, into: &batch.attempts[i])
                    continue
                }
                if batch.attemptKeys[a.id] != nil { try flushAttempts(&batch) }
                batch.attemptKeys[a.id] = .update
                batch.ended.append(EndedRow(attempt: a))
            case .subtask(let s):
                // The upsert writes every column, on INSERT and on conflict alike: a later one
                // to the same row leaves what the two leave one after the other.
                let key = WriteBatch.SubtaskKey(job: s.job, id: s.id)
                if let i = batch.subtaskKeys[key] {
                    if WriteBatch.same(batch.subtasks[i].job, s.job) && WriteBatch.same(batch.subtasks[i].id, s.id) {
                        batch.subtasks[i] = s
                        continue
                    }
                    try flushSubtasks(&batch)
                }
                batch.subtaskKeys[key] = batch.subtasks.count
                batch.subtasks.append(s)
            case .updateJob(let j):
                // Both UPDATEs set the same columns: the later one leaves what the two leave.
                if let i = batch.jobKeys[j.id] {
                    if WriteBatch.same(batch.jobs[i].job.id, j.id) {
                        batch.jobs[i] = JobUpdateRow(job: j)
                        continue
                    }
                    try flushJobs(&batch)
                }
                batch.jobKeys[j.id] = batch.jobs.count
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
