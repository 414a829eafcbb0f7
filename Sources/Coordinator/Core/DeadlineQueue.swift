import AgentFlowCore

/// Unfinished jobs by deadline, soonest first: `tick` ends the jobs whose deadline has passed and
/// `nextWake` reads the soonest one without walking every job (at 5,000 queued jobs those two
/// walks were a quarter of the coordinator's loop).
///
/// A binary min-heap of (deadline, job id). Entries are never removed early: an entry whose job
/// has ended or left memory is dropped when it reaches the top (``CoordinatorCore/popDueDeadlines``),
/// and the heap is rebuilt from the jobs when such entries outnumber the live ones.
struct DeadlineQueue {
    private(set) var entries: [(at: WallInstant, job: String)] = []

    var count: Int { entries.count }
    var first: (at: WallInstant, job: String)? { entries.first }

    /// Adds a job's deadline. NaN sorts last (never due), as `now >= NaN` never holds.
    mutating func push(_ at: WallInstant, job: String) {
        entries.append((at, job))
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(entries[i], entries[parent]) else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the soonest entry.
    mutating func popFirst() -> (at: WallInstant, job: String)? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < entries.count && Self.before(entries[l], entries[m]) { m = l }
            if r < entries.count && Self.before(entries[r], entries[m]) { m = r }
            guard m != i else { break }
            entries.swapAt(i, m)
            i = m
        }
        return top
    }

    /// Replaces the contents (a rebuild after many entries went stale).
    mutating func rebuild(_ items: [(at: WallInstant, job: String)]) {
        entries = []
        entries.reserveCapacity(items.count)
        for item in items { push(item.at, job: item.job) }
    }

    /// Soonest first; ties by job id, so the order jobs end in does not depend on hashing.
    private static func before(_ a: (at: WallInstant, job: String), _ b: (at: WallInstant, job: String)) -> Bool {
        if a.at.secondsSince1970.isNaN != b.at.secondsSince1970.isNaN { return !a.at.secondsSince1970.isNaN }
        return a.at < b.at || (a.at == b.at && a.job < b.job)
    }
}
