import Foundation

/// Fleet-wide counts over the unfinished jobs, kept as attempts enter and leave the queue and as
/// jobs arrive and end — so planning a job reads them in O(models) instead of walking every job
/// (with 10,000 jobs queued, that walk per planned job made intake O(jobs²)).
final class FleetTally {
    /// Queued attempts per model name, over unfinished jobs.
    private(set) var queued: [String: Int] = [:]
    /// Unfinished jobs that may use each model.
    private(set) var competing: [String: Int] = [:]
    /// Per model, the unfinished jobs with at least one attempt queued for it: a dispatch round
    /// between full rounds ranks only the jobs that can use a free slot (`dispatchQueued`).
    private(set) var waiting: [String: [ObjectIdentifier: JobRun]] = [:]
    /// Jobs whose queue went from empty to non-empty since the last full dispatch round (their
    /// wait reason is set without ranking every job again).
    var enteredQueue: [JobRun] = []
    /// Jobs whose queue went from non-empty to empty since the last dispatch round (their wait
    /// reason may have to change, `dispatchQueued`).
    var leftQueue: [JobRun] = []
    /// Per model, the queued attempts ahead of each job in the kept dispatch order (what a job's
    /// planner reads), kept as attempts enter and leave the queue.
    let ahead = AheadIndex()

    /// A job the core holds from now on (submitted or resumed).
    func track(_ job: JobRun) {
        guard !job.isTerminal else { return }
        for name in Set(job.models.map(\.name)) { competing[name, default: 0] += 1 }
        for (model, n) in job.queuedByModel {
            add(model, n, for: job)
            startsWaiting(job, for: model)
        }
        job.tally = self
    }

    /// A tracked job ended: it no longer competes, and its queued attempts no longer wait.
    func ended(_ job: JobRun) {
        guard job.tally === self else { return }
        for name in Set(job.models.map(\.name)) { subtract(&competing, name, 1) }
        for (model, n) in job.queuedByModel {
            subtract(&queued, model, n)
            stopsWaiting(job, for: model)
            ahead.changed(job, model, -n)
        }
        job.tally = nil
    }

    /// An unfinished job's attempt entered (`+1`) or left (`-1`) the queue.
    func add(_ model: String, _ n: Int, for job: JobRun) {
        if n > 0 { queued[model, default: 0] += n } else { subtract(&queued, model, -n) }
        ahead.changed(job, model, n)
    }

    /// An unfinished job's first attempt queued for `model` (of those now queued).
    func startsWaiting(_ job: JobRun, for model: String) {
        waiting[model, default: [:]][ObjectIdentifier(job)] = job
    }

    /// An unfinished job has no attempt queued for `model` any more (or it ended).
    func stopsWaiting(_ job: JobRun, for model: String) {
        guard waiting[model]?.removeValue(forKey: ObjectIdentifier(job)) != nil else { return }
        if waiting[model]?.isEmpty == true { waiting[model] = nil }
    }

    /// The unfinished jobs with an attempt queued for any of `models`, each once, by id (a
    /// total order, so dispatch stays deterministic).
    func jobsWaiting(for models: some Sequence<String>) -> [JobRun] {
        var found: [ObjectIdentifier: JobRun] = [:]
        for model in models {
            for (key, job) in waiting[model] ?? [:] { found[key] = job }
        }
        return found.values.sorted { $0.record.id < $1.record.id }
    }

    private func subtract(_ counts: inout [String: Int], _ key: String, _ n: Int) {
        guard let c = counts[key] else { return }
        counts[key] = c > n ? c - n : nil
    }

    /// The counts agree with a walk over `jobs` (checked in debug builds).
    func agrees(with jobs: some Sequence<JobRun>) -> Bool {
        var q: [String: Int] = [:], c: [String: Int] = [:], w: [String: Set<ObjectIdentifier>] = [:]
        for job in jobs where !job.isTerminal {
            for name in Set(job.models.map(\.name)) { c[name, default: 0] += 1 }
            for (model, n) in job.queuedByModel {
                q[model, default: 0] += n
                w[model, default: []].insert(ObjectIdentifier(job))
            }
        }
        return q == queued && c == competing && w == waiting.mapValues { Set($0.keys) }
    }
}
