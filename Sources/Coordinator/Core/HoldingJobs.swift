/// The jobs the core holds — ended ones too, until they are dropped — that have at least one
/// attempt dispatched to a worker, by id: kept as attempts are dispatched and end, so what asks
/// about dispatched attempts (each dispatch round's fair-share usage, the silent-attempt sweep
/// once a second) walks these few jobs instead of every job (at 10,000 queued jobs that walk was
/// 44% of each dispatch round, `bench dispatch --queued 10000`).
final class HoldingJobs {
    private(set) var byID: [String: JobRun] = [:]

    /// `job` now holds a dispatched attempt (its first) or holds none (its last ended).
    func update(_ job: JobRun, holding: Bool) {
        if holding { byID[job.record.id] = job } else if byID[job.record.id] === job { byID[job.record.id] = nil }
    }

    /// The core holds `job` from now on (submitted or resumed), in place of any job it held by that id.
    func track(_ job: JobRun) {
        job.holding = self
        update(job, holding: !job.dispatchedIDs.isEmpty)
    }

    /// The core dropped `job` (ended, nothing live) or replaced it with a resumed copy.
    func forget(_ job: JobRun) {
        update(job, holding: false)
        job.holding = nil
    }

    /// The set agrees with a walk over `jobs` (checked in debug builds).
    func agrees(with jobs: some Sequence<JobRun>) -> Bool {
        var expected: [String: ObjectIdentifier] = [:]
        for job in jobs where !job.dispatchedIDs.isEmpty { expected[job.record.id] = ObjectIdentifier(job) }
        return expected == byID.mapValues { ObjectIdentifier($0) }
    }
}
