import Dispatch
import Synchronization

/// Pre-drawn batch outcomes of one (node, model) pair, in the units of its rows as the
/// workflow and the attempts give them (seconds, tokens), for every k > 1 of a ``SimModel``.
///
/// A live job's simulation problem differs from another job's of the same workflow only by
/// per-model constants — the wait for a slot added to every latency, the price and the budget
/// left that turn tokens into shares of the budget — so the tables, drawn once from the rows,
/// serve every job and every decision of that workflow (``OutcomeTableCache``); ``SimModel``
/// applies the constants as it draws. Drawing them was most of a new job's planning cost.
///
/// A table is a pure function of its rows, its batch sizes and its entries per size: it is
/// seeded from a hash of them, never from a job's seed, so which job built it (or whether it
/// came from the cache) changes no draw.
public final class PairOutcomeTable: @unchecked Sendable {
    /// Outcomes laid out as `SimModel` reads them: for k index `i`, `entries[i]` of them from `offsets[i]`.
    let outcomes: UnsafeMutablePointer<BatchOutcome>
    public let count: Int

    /// `rows`: the pair's rows (latency in seconds, cost in the rows' unit). Sibling
    /// cancellation charges an attempt the share of its cost it ran for — its running time,
    /// which a wait before the start does not change, so the tables hold for any wait.
    init(rows: [SimSample], ks: [Int], entries: [Int], offsets: [Int], seed: UInt64) {
        count = zip(ks, entries).reduce(0) { $0 + ($1.0 > 1 ? $1.1 : 0) }
        outcomes = .allocate(capacity: max(count, 1))
        let latency = rows.map(\.latency), cost = rows.map(\.cost), success = rows.map(\.success)
        for (i, k) in ks.enumerated() where k > 1 && entries[i] > 0 {
            var rng = SplitMix64(seed: deriveSeed(seed, UInt64(k)))
            for e in 0..<entries[i] {
                (outcomes + offsets[i] + e).initialize(to: BatchOutcome.drawn(k, rows: latency.count, rng: &rng) { (latency[$0], cost[$0], success[$0]) })
            }
        }
    }

    deinit { outcomes.deallocate() }

    /// Bytes the table holds.
    public var bytes: Int { count * MemoryLayout<BatchOutcome>.stride }

    public subscript(i: Int) -> BatchOutcome { outcomes[i] }

    /// A seed from the table's whole content (not Swift's `Hasher`, which changes per process).
    static func seed(rows: [SimSample], ks: [Int], entries: [Int]) -> UInt64 {
        var h: UInt64 = 0x7AB1_E5EE_D000_0001
        for r in rows {
            h = deriveSeed(h, r.latency.bitPattern)
            h = deriveSeed(h, r.cost.bitPattern)
            h = deriveSeed(h, r.success ? 1 : 2)
        }
        for (k, e) in zip(ks, entries) { h = deriveSeed(h, UInt64(truncatingIfNeeded: k) << 32 | UInt64(truncatingIfNeeded: e)) }
        return h
    }
}

/// The outcome tables of recently planned pairs, shared by every job and decision of the
/// process (``MCPPPlanner`` uses ``shared``), bounded in bytes: the least recently used go
/// first. Tables are pure functions of their key, so the cache changes speed, never a draw.
public final class OutcomeTableCache: Sendable {
    /// What a table is a function of: the rows (bit patterns), the batch sizes and the entries per size.
    struct Key: Hashable {
        var rows: [UInt64]
        var ks: [Int]
        var entries: [Int]

        init(rows: [SimSample], ks: [Int], entries: [Int]) {
            var bits: [UInt64] = []
            bits.reserveCapacity(rows.count * 3)
            for r in rows {
                bits.append(r.latency.bitPattern)
                bits.append(r.cost.bitPattern)
                bits.append(r.success ? 1 : 0)
            }
            self.rows = bits
            self.ks = ks
            self.entries = entries
        }

        var bytes: Int { (rows.count + ks.count + entries.count) * 8 }
    }

    struct Entry {
        var table: PairOutcomeTable
        var lastUse: UInt64
        var bytes: Int
    }

    struct State {
        var entries: [Key: Entry] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var built = 0
        var reused = 0
    }

    /// The most the tables and their keys may hold.
    public let capacityBytes: Int
    private let state = Mutex(State())

    /// The cache the live planner uses (8 MiB: a 5-subtask, one-model workflow's tables at
    /// the default 256 outcomes per size take about 150 KiB).
    public static let shared = OutcomeTableCache(capacityBytes: 8 << 20)

    public init(capacityBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
    }

    /// The table of `rows` at these batch sizes and entries, built if no other decision has it.
    public func table(rows: [SimSample], ks: [Int], entries: [Int], offsets: [Int]) -> PairOutcomeTable {
        let key = Key(rows: rows, ks: ks, entries: entries)
        let found = state.withLock { s -> PairOutcomeTable? in
            guard var e = s.entries[key] else { return nil }
            s.clock += 1
            e.lastUse = s.clock
            s.entries[key] = e
            s.reused += 1
            return e.table
        }
        if let found { return found }
        // Built outside the lock: another thread may build the same table meanwhile; both are equal.
        let table = PairOutcomeTable(rows: rows, ks: ks, entries: entries, offsets: offsets,
                                     seed: PairOutcomeTable.seed(rows: rows, ks: ks, entries: entries))
        let bytes = table.bytes + key.bytes
        state.withLock { s in
            s.built += 1
            guard bytes <= capacityBytes, s.entries[key] == nil else { return }
            s.clock += 1
            s.entries[key] = Entry(table: table, lastUse: s.clock, bytes: bytes)
            s.bytes += bytes
            if s.bytes > capacityBytes { Self.evict(&s, to: capacityBytes * 3 / 4) }
        }
        return table
    }

    /// Drops the least recently used tables until at most `limit` bytes are held (in one sort,
    /// so eviction costs O(n log n) once per quarter of the capacity, not per table).
    static func evict(_ s: inout State, to limit: Int) {
        for (key, e) in s.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
            guard s.bytes > limit else { break }
            s.entries[key] = nil
            s.bytes -= e.bytes
        }
    }

    /// Tables held, their bytes, and how many were built and reused since the cache began.
    public var statistics: (tables: Int, bytes: Int, built: Int, reused: Int) {
        state.withLock { ($0.entries.count, $0.bytes, $0.built, $0.reused) }
    }
}
