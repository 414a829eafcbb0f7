import Dispatch

/// The outcome of one batch of k parallel attempts of a (node, model) pair.
public struct BatchOutcome: Sendable, Equatable {
    /// When the last attempt ends (the pass@k barrier).
    public var latency: Double
    /// Sum of the attempts' costs.
    public var cost: Double
    public var success: Bool
    /// With sibling cancellation: when the first passing attempt ends (= `latency` if none passes).
    public var firstPassLatency: Double
    /// With sibling cancellation: what the batch costs when the siblings are stopped at
    /// `firstPassLatency` (each attempt pays the share of its cost it had run for).
    public var cancelledCost: Double
}

extension BatchOutcome {
    /// k attempts, each a row drawn uniformly from `rows` rows (`row(i)` reads row i): the
    /// one definition of a batch's outcome that ``SimModel/drawExact(pair:k:rng:)`` and the
    /// shared ``PairOutcomeTable``s both draw with.
    @inline(__always)
    static func drawn(_ k: Int, rows: Int, rng: inout SplitMix64,
                      row: (Int) -> (latency: Double, cost: Double, success: Bool)) -> BatchOutcome {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: max(k, 1)) { picked in
            var latency = 0.0, cost = 0.0, first = Double.infinity
            for i in 0..<k {
                let r = rng.below(rows)
                picked[i] = r
                let d = row(r)
                latency = max(latency, d.latency)
                cost += d.cost
                if d.success { first = min(first, d.latency) }
            }
            let success = first.isFinite
            var cancelled = cost
            if success {
                cancelled = 0
                for i in 0..<k {
                    let d = row(picked[i])
                    cancelled += d.latency <= first ? d.cost : d.cost * (first / d.latency)
                }
            }
            return BatchOutcome(latency: latency, cost: cost, success: success,
                                firstPassLatency: success ? first : latency, cancelledCost: cancelled)
        }
    }
}

/// How a simulated run treats launches and spending.
public enum Semantics: String, Sendable, CaseIterable {
    /// The reference simulator: cost charged at launch; an MCPP action whose sampled cost or
    /// latency does not fit fails the run.
    case reference
    /// The coordinator: reserve the worst case before launch, never launch what does not fit,
    /// charge actual usage at the end.
    case live
}

/// A ``PlanProblem`` compiled for fast simulation: flat buffers, 64-bit node masks and tables
/// of pre-drawn batch outcomes. Immutable after `init`, so it is shared between threads.
public final class SimModel: @unchecked Sendable {
    public let problem: PlanProblem
    public let nodeCount: Int
    public let modelCount: Int
    /// Sample counts per batch that planners choose from (K).
    public let ks: [Int]
    public let allMask: UInt64
    /// Outcomes pre-drawn per (node, model, k > 1); 0 = draw every attempt afresh.
    public let tableSize: Int
    let kCount: Int

    let parentMask: UnsafeMutablePointer<UInt64>
    let sampleOffset: UnsafeMutablePointer<Int>
    let sampleCount: UnsafeMutablePointer<Int>
    let sampleLatency: UnsafeMutablePointer<Double>
    let sampleCost: UnsafeMutablePointer<Double>
    let sampleSuccess: UnsafeMutablePointer<Bool>
    /// Per pair: mean success, worst-case cost of one attempt, and the model used when a
    /// continuation names a model the node cannot use.
    let pairSuccess: UnsafeMutablePointer<Double>
    let pairWorstCost: UnsafeMutablePointer<Double>
    let pairFallback: UnsafeMutablePointer<Int>
    /// Per pair: the cheapest and the fastest row (exact lower bounds for a launch).
    let pairMinCost: UnsafeMutablePointer<Double>
    let pairMinLatency: UnsafeMutablePointer<Double>
    let pairMeanCost: UnsafeMutablePointer<Double>
    let kValues: UnsafeMutablePointer<Int>
    /// Children of each node, and the nodes in an order where children come before parents.
    let childMask: [UInt64]
    let reverseTopologicalOrder: [Int]
    let table: UnsafeMutablePointer<BatchOutcome>
    let tableCount: Int
    /// Per k index: outcomes in the table, and where they start in a pair's block of `tableStride`.
    let tableEntries: UnsafeMutablePointer<Int>
    let tableOffset: UnsafeMutablePointer<Int>
    let tableStride: Int
    /// With shared tables (``SharedOutcomes``): per pair, its table (nil: not a candidate) and
    /// the seconds added to and the factor applied to its outcomes; `table` is then unused.
    let sharedTables: [PairOutcomeTable?]
    let sharedOutcomes: UnsafeMutablePointer<UnsafeMutablePointer<BatchOutcome>>?
    let sharedShift: UnsafeMutablePointer<Double>?
    let sharedScale: UnsafeMutablePointer<Double>?

    /// `threads`: threads that pre-draw the tables (each table has its own random stream, so the
    /// tables do not depend on it). `shrinkLargeBatches`: a table of k > 4 attempts holds
    /// `tableSize × 4 / k` outcomes (at least 8): the slowest, the sum and the first pass of many
    /// attempts vary less than those of a few, and drawing k = 64 attempts per outcome is most of
    /// the cost of the tables.
    /// `shared`: take the k > 1 tables from a cache of tables drawn from each pair's rows in
    /// their own units (``SharedOutcomes``) instead of drawing them here from `problem`'s rows
    /// with `seed`.
    public init(_ problem: PlanProblem, ks: [Int] = [1, 4, 16, 64], tableSize: Int = 1024, seed: UInt64 = 0x5EED, threads: Int = 1,
                shrinkLargeBatches: Bool = false, shared: SharedOutcomes? = nil) {
        precondition(problem.nodeCount <= PlanProblem.maxNodes && problem.nodeCount > 0)
        self.problem = problem
        nodeCount = problem.nodeCount
        modelCount = problem.modelCount
        self.ks = ks
        self.tableSize = tableSize
        kCount = ks.count
        allMask = nodeCount == 64 ? ~0 : (UInt64(1) << UInt64(nodeCount)) - 1
        let pairs = nodeCount * modelCount
        parentMask = .allocate(capacity: nodeCount)
        for v in 0..<nodeCount {
            parentMask[v] = problem.parents[v].reduce(UInt64(0)) { $0 | (1 << UInt64($1)) }
        }
        var children = [UInt64](repeating: 0, count: problem.nodeCount)
        for v in 0..<problem.nodeCount { for p in problem.parents[v] { children[p] |= 1 << UInt64(v) } }
        childMask = children
        var indegree = problem.parents.map(\.count)
        var order = (0..<problem.nodeCount).filter { indegree[$0] == 0 }
        var next = 0
        while next < order.count {
            let v = order[next]
            next += 1
            for c in 0..<problem.nodeCount where children[v] & (1 << UInt64(c)) != 0 {
                indegree[c] -= 1
                if indegree[c] == 0 { order.append(c) }
            }
        }
        precondition(order.count == problem.nodeCount, "the parent edges contain a cycle")
        reverseTopologicalOrder = order.reversed()
        sampleOffset = .allocate(capacity: pairs)
        sampleCount = .allocate(capacity: pairs)
        pairSuccess = .allocate(capacity: pairs)
        pairWorstCost = .allocate(capacity: pairs)
        pairFallback = .allocate(capacity: pairs)
        pairMinCost = .allocate(capacity: pairs)
        pairMinLatency = .allocate(capacity: pairs)
        pairMeanCost = .allocate(capacity: pairs)
        kValues = .allocate(capacity: ks.count)
        for (i, k) in ks.enumerated() { kValues[i] = k }
        let total = problem.samples.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
        sampleLatency = .allocate(capacity: max(total, 1))
        sampleCost = .allocate(capacity: max(total, 1))
        sampleSuccess = .allocate(capacity: max(total, 1))
        var offset = 0
        for v in 0..<nodeCount {
            var best = -1
            for m in 0..<modelCount {
                let rows = problem.samples[v][m]
                let p = v * modelCount + m
                sampleOffset[p] = offset
                sampleCount[p] = rows.count
                for r in rows {
                    sampleLatency[offset] = r.latency
                    sampleCost[offset] = r.cost
                    sampleSuccess[offset] = r.success
                    offset += 1
                }
                pairSuccess[p] = problem.successRate(node: v, model: m)
                pairWorstCost[p] = problem.worstCaseCost?[v][m] ?? (rows.map(\.cost).max() ?? 0)
                pairMinCost[p] = rows.map(\.cost).min() ?? 0
                pairMinLatency[p] = rows.map(\.latency).min() ?? 0
                pairMeanCost[p] = problem.meanCost(node: v, model: m)
                if !rows.isEmpty, best < 0 || pairSuccess[p] > pairSuccess[v * modelCount + best] { best = m }
            }
            precondition(best >= 0, "node \(v) has no candidate model")
            for m in 0..<modelCount {
                pairFallback[v * modelCount + m] = problem.samples[v][m].isEmpty ? best : m
            }
        }
        // k = 1 is always drawn exactly (`drawBatch`), so it has no table.
        tableEntries = .allocate(capacity: max(ks.count, 1))
        tableOffset = .allocate(capacity: max(ks.count, 1))
        var blockSize = 0
        var entryList: [Int] = [], offsetList: [Int] = []
        for (ki, k) in ks.enumerated() {
            let entries = k <= 1 || tableSize <= 0 ? 0 : shrinkLargeBatches && k > 4 ? min(tableSize, max(8, tableSize * 4 / k)) : tableSize
            tableEntries[ki] = entries
            tableOffset[ki] = blockSize
            entryList.append(entries)
            offsetList.append(blockSize)
            blockSize += entries
        }
        tableStride = blockSize
        if let shared, tableSize > 0 {
            precondition(shared.rows.count == nodeCount && shared.shift.count == modelCount && shared.scale.count == modelCount)
            var tables = [PairOutcomeTable?](repeating: nil, count: pairs)
            let sharedOutcomes = UnsafeMutablePointer<UnsafeMutablePointer<BatchOutcome>>.allocate(capacity: pairs)
            let shift = UnsafeMutablePointer<Double>.allocate(capacity: pairs), scale = UnsafeMutablePointer<Double>.allocate(capacity: pairs)
            // Never read: a pair without rows is never drawn.
            let placeholder = UnsafeMutablePointer<BatchOutcome>.allocate(capacity: 1)
            for v in 0..<nodeCount {
                for m in 0..<modelCount {
                    let p = v * modelCount + m
                    shift[p] = shared.shift[m]
                    scale[p] = shared.scale[m]
                    let rows = shared.rows[v][m]
                    precondition(rows.count == sampleCount[p], "shared rows must match the problem's rows")
                    guard !rows.isEmpty else { sharedOutcomes[p] = placeholder; continue }
                    let t = shared.cache.table(rows: rows, ks: ks, entries: entryList, offsets: offsetList)
                    tables[p] = t
                    sharedOutcomes[p] = t.outcomes
                }
            }
            sharedTables = tables
            self.sharedOutcomes = sharedOutcomes
            sharedShift = shift
            sharedScale = scale
            tableCount = 0
            table = placeholder
            return
        }
        sharedTables = []
        sharedOutcomes = nil
        sharedShift = nil
        sharedScale = nil
        tableCount = tableSize > 0 ? pairs * blockSize : 0
        table = .allocate(capacity: max(tableCount, 1))
        if tableSize > 0 {
            let jobs = (0..<pairs).filter { sampleCount[$0] > 0 }.flatMap { p in ks.indices.filter { ks[$0] > 1 }.map { (p, $0) } }
            let out = DisjointWrites(base: table)
            let kCount = ks.count, values = ks, block = blockSize
            let entries = DisjointWrites(base: tableEntries), offsets = DisjointWrites(base: tableOffset)
            let fill: @Sendable (Int, Int) -> Void = { p, ki in
                var rng = SplitMix64(seed: deriveSeed(seed, UInt64(p * kCount + ki)))
                let base = p * block + offsets.base[ki]
                for i in 0..<entries.base[ki] { (out.base + base + i).initialize(to: self.drawExact(pair: p, k: values[ki], rng: &rng)) }
            }
            let workers = jobs.count * tableSize >= 4_096 ? max(1, threads) : 1
            if workers == 1 {
                for (p, ki) in jobs { fill(p, ki) }
            } else {
                DispatchQueue.concurrentPerform(iterations: workers) { t in
                    for j in stride(from: t, to: jobs.count, by: workers) { fill(jobs[j].0, jobs[j].1) }
                }
            }
        }
    }

    deinit {
        parentMask.deallocate(); sampleOffset.deallocate(); sampleCount.deallocate()
        sampleLatency.deallocate(); sampleCost.deallocate(); sampleSuccess.deallocate()
        pairSuccess.deallocate(); pairWorstCost.deallocate(); pairFallback.deallocate()
        pairMinCost.deallocate(); pairMinLatency.deallocate(); pairMeanCost.deallocate(); kValues.deallocate()
        table.deallocate(); tableEntries.deallocate(); tableOffset.deallocate()
        sharedOutcomes?.deallocate(); sharedShift?.deallocate(); sharedScale?.deallocate()
    }

    @inline(__always) public func pair(_ node: Int, _ model: Int) -> Int { node * modelCount + model }
    @inline(__always) public func isAvailable(node: Int, model: Int) -> Bool { sampleCount[pair(node, model)] > 0 }
    @inline(__always) public func successRate(pair p: Int) -> Double { pairSuccess[p] }
    @inline(__always) public func worstCost(pair p: Int) -> Double { pairWorstCost[p] }
    /// The nodes `v` needs, as a bit mask.
    @inline(__always) public func parents(_ v: Int) -> UInt64 { parentMask[v] }

    /// True when no continuation can finish from `state`: the nodes left cannot all run within
    /// the time left even on their fastest rows along the longest path, or (reference rule, no
    /// cancellation) their cheapest rows cost more than the budget left. Exact: every simulation
    /// from `state` would fail.
    func surelyHopeless(_ state: SimState, options: RolloutOptions) -> Bool {
        let inFlight = state.inFlightMask
        var remainingEnd = [Double](repeating: 0, count: nodeCount)
        for f in state.inFlight { remainingEnd[f.node] = f.remaining ?? 0 }
        var path = [Double](repeating: 0, count: nodeCount)
        var longest = 0.0, cheapest = 0.0
        for v in reverseTopologicalOrder where state.done & (1 << UInt64(v)) == 0 {
            var fastest = Double.infinity, least = Double.infinity
            for m in 0..<modelCount where sampleCount[pair(v, m)] > 0 {
                fastest = min(fastest, pairMinLatency[pair(v, m)])
                least = min(least, pairMinCost[pair(v, m)])
            }
            var after = 0.0
            var children = childMask[v] & ~state.done
            while children != 0 {
                let c = children.trailingZeroBitCount
                children &= children &- 1
                after = max(after, path[c])
            }
            let running = inFlight & (1 << UInt64(v)) != 0
            path[v] = (running ? remainingEnd[v] : fastest) + after
            longest = max(longest, path[v])
            if !running { cheapest += least }
        }
        if longest > state.horizon { return true }
        return options.semantics == .reference && !options.cancelSiblings && cheapest > state.budget
    }

    /// True when every draw of `action` fails the reference launch rule (its cheapest outcome
    /// does not fit the budget, or its fastest outcome not the time): such pairs need no simulation.
    func surelyFails(_ action: ArraySlice<Assignment>, budget: Double, horizon: Double) -> Bool {
        var cost = 0.0, latest = 0.0
        for a in action {
            let p = pair(a.node, a.model)
            cost += Double(kValues[a.kIndex]) * pairMinCost[p]
            latest = max(latest, pairMinLatency[p])
        }
        return cost > budget || latest > horizon
    }

    /// One attempt: a whole calibration row.
    @inline(__always)
    public func drawOne(pair p: Int, rng: inout SplitMix64) -> (latency: Double, success: Bool, cost: Double) {
        let i = sampleOffset[p] + rng.below(sampleCount[p])
        return (sampleLatency[i], sampleSuccess[i], sampleCost[i])
    }

    /// k attempts drawn afresh.
    public func drawExact(pair p: Int, k: Int, rng: inout SplitMix64) -> BatchOutcome {
        let offset = sampleOffset[p]
        return BatchOutcome.drawn(k, rows: sampleCount[p], rng: &rng) { i in
            (sampleLatency[offset + i], sampleCost[offset + i], sampleSuccess[offset + i])
        }
    }

    /// A batch of `ks[kIndex]` attempts: exact for k = 1, else from the pre-drawn table.
    @inline(__always)
    public func drawBatch(pair p: Int, kIndex: Int, rng: inout SplitMix64) -> BatchOutcome {
        let k = kValues[kIndex]
        if k == 1 {
            let d = drawOne(pair: p, rng: &rng)
            return BatchOutcome(latency: d.latency, cost: d.cost, success: d.success, firstPassLatency: d.latency, cancelledCost: d.cost)
        }
        if tableSize == 0 { return drawExact(pair: p, k: k, rng: &rng) }
        let i = tableOffset[kIndex] &+ rng.below(tableEntries[kIndex])
        guard let sharedOutcomes, let sharedShift, let sharedScale else { return table[p &* tableStride &+ i] }
        let o = sharedOutcomes[p][i], wait = sharedShift[p], factor = sharedScale[p]
        // An infinite factor (a budget of zero left) makes a positive cost infinite and leaves 0 at 0.
        return BatchOutcome(latency: o.latency + wait, cost: o.cost == 0 ? 0 : o.cost * factor, success: o.success,
                            firstPassLatency: o.firstPassLatency + wait, cancelledCost: o.cancelledCost == 0 ? 0 : o.cancelledCost * factor)
    }
}

/// Where a ``SimModel`` takes its k > 1 tables from when they are shared between problems that
/// differ only per model: the pairs' rows in their own units, and per model the seconds added
/// to every latency (a wait for a slot) and the factor applied to every cost (a price over the
/// budget left). `problem`'s rows must be these rows so transformed.
public struct SharedOutcomes {
    public var cache: OutcomeTableCache
    /// `rows[node][model]`, the same counts as the problem's.
    public var rows: [[[SimSample]]]
    public var shift: [Double]
    public var scale: [Double]

    public init(cache: OutcomeTableCache, rows: [[[SimSample]]], shift: [Double], scale: [Double]) {
        self.cache = cache
        self.rows = rows
        self.shift = shift
        self.scale = scale
    }
}
