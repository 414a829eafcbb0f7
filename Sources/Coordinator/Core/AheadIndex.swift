/// Per model, the queued attempts of the jobs in the kept dispatch order summed up to each job's
/// place, kept exact as attempts enter and leave the queue and as jobs end: what a job's planner
/// reads as the attempts ahead of it (`CoordinatorCore.queuedAhead(of:)`).
///
/// A Fenwick tree per model over places spaced `spacing` apart: a full round lays the ranked jobs
/// out (O(jobs × spacing)); a job planned between full rounds takes a free place between its
/// neighbours in the order (or one past the last); a queue change is O(log places) and a job's
/// attempts ahead O(models × log places) — so restricted rounds leave it current without walking
/// the waiting jobs. When a gap has no free place left (more than log2(spacing) jobs inserted at
/// one spot between full rounds), the new job shares the place of the job ranked after it: its
/// own count is exact, and that job's misses the new job's attempts until the next full round.
final class AheadIndex {
    /// Places between two jobs laid out by a full round.
    static let spacing = 16

    private var place: [ObjectIdentifier: Int] = [:]
    /// Model → 1-based Fenwick array over places 1...capacity (index 0 unused).
    private var trees: [String: [Int]] = [:]
    private var capacity = 0
    /// The largest place given.
    private var last = 0

    /// Whether `job` has a place (it is in the kept order).
    func contains(_ job: JobRun) -> Bool { place[ObjectIdentifier(job)] != nil }

    /// Lays out the kept order afresh (a full round), counting each unfinished job's queued attempts.
    func rebuild(_ order: [JobRun]) {
        place.removeAll(keepingCapacity: true)
        capacity = (order.count + 1) * Self.spacing
        last = 0
        trees.removeAll(keepingCapacity: true)
        var raw: [String: [Int]] = [:]
        for job in order {
            last += Self.spacing
            place[ObjectIdentifier(job)] = last
            guard !job.isTerminal else { continue }
            for (model, n) in job.queuedByModel {
                raw[model, default: [Int](repeating: 0, count: capacity + 1)][last] += n
            }
        }
        // Linear-time Fenwick build: each node passes its sum to its parent.
        for (model, var t) in raw {
            for i in 1...capacity {
                let j = i + (i & -i)
                if j <= capacity { t[j] += t[i] }
            }
            trees[model] = t
        }
    }

    /// Gives `job` a place between `before` (ranked just ahead of it; nil: it is first) and
    /// `after` (ranked just behind it; nil: it is last), with its queued attempts.
    func insert(_ job: JobRun, after before: JobRun?, before after: JobRun?) {
        let key = ObjectIdentifier(job)
        guard place[key] == nil else { return }
        let low = before.flatMap { place[ObjectIdentifier($0)] } ?? 0
        let p: Int
        if let after, let high = place[ObjectIdentifier(after)] {
            p = high - low >= 2 ? (low + high) / 2 : high
        } else {
            p = max(low, last) + Self.spacing
            if p > capacity { grow(to: max(2 * capacity, p)) }
        }
        last = max(last, p)
        place[key] = p
        guard !job.isTerminal else { return }
        for (model, n) in job.queuedByModel { add(model, n, at: p) }
    }

    /// An attempt of `job` entered (`+1`) or left (`-1`) the queue for `model` (also used as the
    /// job ends, with its queued attempts).
    func changed(_ job: JobRun, _ model: String, _ n: Int) {
        guard let p = place[ObjectIdentifier(job)] else { return }
        add(model, n, at: p)
    }

    /// Queued attempts per model of the unfinished jobs placed before `job` (nil: not placed).
    func ahead(of job: JobRun) -> [String: Int]? {
        guard let p = place[ObjectIdentifier(job)] else { return nil }
        var out: [String: Int] = [:]
        for (model, t) in trees {
            var i = p - 1, sum = 0
            while i > 0 {
                sum += t[i]
                i -= i & -i
            }
            if sum > 0 { out[model] = sum }
        }
        return out
    }

    private func add(_ model: String, _ n: Int, at p: Int) {
        guard n != 0 else { return }
        if trees[model] == nil { trees[model] = [Int](repeating: 0, count: capacity + 1) }
        trees[model]!.withUnsafeMutableBufferPointer { t in
            var i = p
            while i <= capacity {
                t[i] += n
                i += i & -i
            }
        }
    }

    /// Extends every tree to `newCapacity` places (the new ones empty): a node past the old end
    /// covers places it shares with the old range, so it starts at their sum.
    private func grow(to newCapacity: Int) {
        let old = capacity
        for (model, var t) in trees {
            func prefix(_ i: Int) -> Int {
                var i = i, s = 0
                while i > 0 { s += t[i]; i -= i & -i }
                return s
            }
            let total = prefix(old)
            t.reserveCapacity(newCapacity + 1)
            for i in (old + 1)...newCapacity {
                let low = i - (i & -i)
                t.append(low < old ? total - prefix(low) : 0)
            }
            trees[model] = t
        }
        capacity = newCapacity
    }

    /// The counts agree with a walk over `order`, the kept order (checked in debug builds): places
    /// rise along it, and each job's attempts ahead are those of the jobs at earlier places.
    func agrees(with order: [JobRun]) -> Bool {
        guard place.count == order.count else { return false }
        var before: [String: Int] = [:], atPlace: [String: Int] = [:]
        var current = 0
        for job in order {
            guard let p = place[ObjectIdentifier(job)], p >= current else { return false }
            if p > current {
                for (model, n) in atPlace { before[model, default: 0] += n }
                atPlace = [:]
                current = p
            }
            if ahead(of: job) != before { return false }
            if !job.isTerminal { for (model, n) in job.queuedByModel { atPlace[model, default: 0] += n } }
        }
        return true
    }
}
