import Dispatch
import Synchronization

/// Settings of Monte Carlo Portfolio Planning.
public struct MCPPConfig: Sendable, Equatable {
    /// Simulations per (action, continuation) pair (M). With `adaptive`, the pairs that survive to
    /// the last round get 2M and the rest fewer.
    public var simulations = 64
    /// Ready nodes whose 16 levels are enumerated exhaustively (the reference's 3).
    public var freeNodes = 3
    /// Candidate actions kept, in insertion order (the reference's 4 + 4^4 = 260).
    public var maxCandidates = 260
    /// The same random stream for simulation j of every pair (common random numbers).
    public var commonRandomNumbers = true
    /// Successive halving: screen every pair with few simulations, give the rest to the best quarter.
    /// Off by default: with exact racing, full M per pair is cheaper (docs/benchmarks.md).
    public var adaptive = false
    /// Threads for the simulations (results do not depend on it).
    public var threads = 2
    /// Stop simulating a pair once it can no longer win the argmax (exact: same decisions).
    public var pruning = true
    /// After scoring the reference's candidates, also try every one-node change of the best action.
    public var localSearch = false
    /// Stop after the first 256 pairs (the uniform policies among them) when none of them
    /// succeeded once: near-hopeless states are the costliest to simulate and matter least.
    /// Not exact; off in the benchmark, on in the live planner.
    public var giveUpWhenHeadFails = false
    public var rollout = RolloutOptions()

    public init(simulations: Int = 64, freeNodes: Int = 3, maxCandidates: Int = 260, commonRandomNumbers: Bool = true,
                adaptive: Bool = false, threads: Int = 2, rollout: RolloutOptions = RolloutOptions()) {
        self.simulations = simulations
        self.freeNodes = freeNodes
        self.maxCandidates = maxCandidates
        self.commonRandomNumbers = commonRandomNumbers
        self.adaptive = adaptive
        self.threads = threads
        self.rollout = rollout
    }

    /// The reference implementation's settings (README §5): M = 8, every pair the same M, no CRN.
    public static let reference = MCPPConfig(simulations: 8, commonRandomNumbers: false, adaptive: false)
}

/// What one MCPP decision chose and what it cost.
public struct MCPPDecision: Sendable, Equatable {
    public var action: [Assignment]
    public var continuationModel: Int
    public var continuationKIndex: Int
    /// Estimated probability of success of the chosen (action, continuation) pair.
    public var score: Double
    public var candidates: Int
    public var rollouts: Int
}

/// Sendable box for buffers that threads write at disjoint indices.
struct DisjointWrites<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
}

/// Monte Carlo Portfolio Planning over a compiled problem.
public struct MCPP: Sendable {
    public let model: SimModel
    public var config: MCPPConfig

    public init(model: SimModel, config: MCPPConfig = MCPPConfig()) {
        self.model = model
        self.config = config
    }

    /// Nodes that are ready, not done and have nothing in flight.
    public func dispatchable(_ state: SimState) -> [Int] {
        let busy = state.done | state.inFlightMask
        return (0..<model.nodeCount).filter { v in
            busy & (1 << UInt64(v)) == 0 && model.parents(v) & ~state.done == 0
        }
    }

    /// (model, k) levels of a node, model-major, only the models it may use.
    func levels(_ v: Int) -> [Assignment] {
        var out: [Assignment] = []
        for m in 0..<model.modelCount where model.isAvailable(node: v, model: m) {
            for ki in model.ks.indices { out.append(Assignment(node: v, model: m, kIndex: ki)) }
        }
        return out
    }

    /// Candidate actions in the reference's insertion order: uniform (m, k) over the ready nodes,
    /// then the exhaustive levels of up to `freeNodes` randomly chosen ready nodes (the others
    /// share the first model and one k), truncated to `maxCandidates`.
    public func candidates(ready: [Int], rng: inout SplitMix64) -> [[Assignment]] {
        guard !ready.isEmpty else { return [] }
        var list: [[Assignment]] = []
        var seen = Set<[Assignment]>()
        func add(_ action: [Assignment]) {
            guard list.count < config.maxCandidates else { return }
            let sorted = action.sorted { $0.node < $1.node }
            if seen.insert(sorted).inserted { list.append(sorted) }
        }
        let first = ready.map { v in (0..<model.modelCount).first { model.isAvailable(node: v, model: $0) } ?? 0 }
        for ki in model.ks.indices {
            add(ready.indices.map { Assignment(node: ready[$0], model: first[$0], kIndex: ki) })
            for m in 0..<model.modelCount {
                add(ready.map { Assignment(node: $0, model: model.pairFallback[model.pair($0, m)], kIndex: ki) })
            }
        }
        if ready.count == 1 {
            for level in levels(ready[0]) { add([level]) }
            return list
        }
        var pool = ready
        var free: [Int] = []
        for _ in 0..<min(ready.count, config.freeNodes) { free.append(pool.remove(at: rng.below(pool.count))) }
        let others = pool
        let freeLevels = free.map(levels)
        let sharedKs = others.isEmpty ? [0] : Array(model.ks.indices)
        for sk in sharedKs {
            let base = others.map { v in
                Assignment(node: v, model: (0..<model.modelCount).first { model.isAvailable(node: v, model: $0) } ?? 0, kIndex: sk)
            }
            var index = [Int](repeating: 0, count: free.count)
            while list.count < config.maxCandidates {
                add(base + free.indices.map { freeLevels[$0][index[$0]] })
                var d = free.count - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < freeLevels[d].count { break }
                    index[d] = 0
                    d -= 1
                }
                if d < 0 { break }
            }
            if list.count >= config.maxCandidates { break }
        }
        return list
    }

    @inline(__always)
    static func key(_ wins: Int, _ pair: Int) -> UInt64 {
        UInt64(wins + 1) << 32 | UInt64(UInt32.max - UInt32(truncatingIfNeeded: pair))
    }

    /// Scores every (candidate, continuation) pair by simulation and returns the best
    /// (strict ">", so ties keep the earliest pair, as the reference does).
    /// With `scoreWhenIdle`, a state with nothing to launch but attempts in flight is still
    /// scored (the empty action under each continuation), for completion estimates.
    public func decide(_ state: SimState, seed: UInt64, scoreWhenIdle: Bool = false) -> MCPPDecision {
        let ready = dispatchable(state)
        var rng = SplitMix64(seed: seed)
        var actions = candidates(ready: ready, rng: &rng)
        if actions.isEmpty && scoreWhenIdle && !state.inFlight.isEmpty { actions = [[]] }
        guard !actions.isEmpty else {
            return MCPPDecision(action: [], continuationModel: 0, continuationKIndex: 0, score: 0, candidates: 0, rollouts: 0)
        }
        if model.surelyHopeless(state, options: config.rollout) {
            return MCPPDecision(action: actions[0], continuationModel: 0, continuationKIndex: 0, score: 0,
                                candidates: actions.count, rollouts: 0)
        }
        let kCount = model.ks.count
        let contCount = model.modelCount * kCount
        let pairCount = actions.count * contCount
        let evalSeed = rng.next()

        // Flatten the actions for the kernel.
        var flat: [Assignment] = [Assignment(node: 0, model: 0, kIndex: 0)]  // never empty, for its base address
        flat.removeAll(keepingCapacity: true)
        var start: [Int] = [0]
        for a in actions { flat.append(contentsOf: a); start.append(flat.count) }

        var wins = [Int](repeating: 0, count: pairCount)
        var runs = [Int](repeating: 0, count: pairCount)
        var total = 0

        /// Runs simulations j0..<j1 of every pair in `pairs`. With `prune`, only the argmax matters:
        /// a pair stops as soon as it can no longer beat (or tie an earlier) pair a thread has
        /// finished, and is marked excluded. The argmax is the same as without pruning, and
        /// does not depend on the thread count, because finished pairs' scores are exact.
        var incumbentKey: UInt64 = 0
        func simulate(_ pairs: [Int], from j0: Int, to j1: Int, prune: Bool = false) {
            guard j1 > j0, !pairs.isEmpty else { return }
            var counts = [Int](repeating: 0, count: max(config.threads, 1))
            let threads = max(1, pairs.count * (j1 - j0) >= 16_384 ? config.threads : 1)
            // The best finished pair so far, shared by the threads: (wins + 1) << 32 | (max − pair),
            // so that a larger key is a better pair (more wins, then the earlier pair).
            let incumbent = Atomic<UInt64>(prune ? incumbentKey : 0)
            let nodes = model.nodeCount, models = model.modelCount
            let crn = config.commonRandomNumbers
            let options = config.rollout
            let sim = model
            state.withRootView { root in
            let rootBox = DisjointWrites(base: UnsafeMutablePointer(mutating: root.inFlight.baseAddress ?? UnsafePointer(bitPattern: 8)!))
            let rootCount = root.inFlight.count
            let slotsBox = root.slots.map { DisjointWrites(base: UnsafeMutablePointer(mutating: $0)) }
            let (rootDone, rootBudget, rootHorizon) = (root.done, root.budget, root.horizon)
            counts.withUnsafeMutableBufferPointer { countsBuffer in
            let rolloutCount = DisjointWrites(base: countsBuffer.baseAddress!)
            wins.withUnsafeMutableBufferPointer { winsBuffer in
                let out = DisjointWrites(base: winsBuffer.baseAddress!)
                flat.withUnsafeBufferPointer { flatBuffer in
                    let actionsBox = DisjointWrites(base: UnsafeMutablePointer(mutating: flatBuffer.baseAddress!))
                    start.withUnsafeBufferPointer { startBuffer in
                        let startBox = DisjointWrites(base: UnsafeMutablePointer(mutating: startBuffer.baseAddress!))
                        DispatchQueue.concurrentPerform(iterations: threads) { t in
                            let scratch = RolloutScratch(nodes: nodes, models: models)
                            let view = RootView(done: rootDone, budget: rootBudget, horizon: rootHorizon,
                                                inFlight: UnsafeBufferPointer(start: rootBox.base, count: rootCount),
                                                slots: slotsBox.map { UnsafePointer($0.base) })
                            var i = t
                            var done = 0
                            while i < pairs.count {
                                let p = pairs[i]
                                let c = p / contCount, cont = p % contCount
                                let action = UnsafeBufferPointer(start: actionsBox.base + startBox.base[c],
                                                                 count: startBox.base[c + 1] - startBox.base[c])
                                var w = out.base[p]
                                var excluded = false
                                for j in j0..<j1 {
                                    if prune && Self.key(w + (j1 - j), p) < incumbent.load(ordering: .relaxed) {
                                        excluded = true
                                        break
                                    }
                                    var g = SplitMix64(seed: deriveSeed(evalSeed, crn ? UInt64(j) : UInt64(p) << 20 | UInt64(j)))
                                    if sim.rollout(view, action: action, contModel: cont / kCount, contK: cont % kCount,
                                                   options: options, rng: &g, scratch: scratch) { w += 1 }
                                    done += 1
                                }
                                if excluded {
                                    out.base[p] = -1
                                } else {
                                    out.base[p] = w
                                    if prune {
                                        let key = Self.key(w, p)
                                        var current = incumbent.load(ordering: .relaxed)
                                        while key > current {
                                            let (exchanged, now) = incumbent.compareExchange(
                                                expected: current, desired: key, ordering: .relaxed)
                                            if exchanged { break }
                                            current = now
                                        }
                                    }
                                }
                                i += threads
                            }
                            rolloutCount.base[t] = done
                        }
                    }
                }
            }
            }
            }
            for p in pairs { runs[p] += j1 - j0 }
            total += counts.reduce(0, +)
            if prune { incumbentKey = incumbent.load(ordering: .relaxed) }
        }

        /// Exact racing for the argmax: the first pairs on one thread to find a strong incumbent,
        /// then the rest on every thread.
        func race(_ pairs: [Int], from j0: Int, to j1: Int) {
            guard config.pruning else { simulate(pairs, from: j0, to: j1); return }
            let head = min(pairs.count, 256)
            simulate(Array(pairs[..<head]), from: j0, to: j1, prune: true)
            // Every pair of the head (the uniform Seq-(m, k) actions come first) scored 0: with
            // `giveUpWhenHeadFails` the state counts as hopeless and the rest is not simulated.
            if config.giveUpWhenHeadFails && incumbentKey >> 32 <= 1 { return }
            simulate(Array(pairs[head...]), from: j0, to: j1, prune: true)
        }

        let m = max(1, config.simulations)
        // Under the reference rule an action whose cheapest outcome does not fit fails in every
        // simulation whatever the continuation: score it 0 without simulating.
        var alive: [Int] = []
        alive.reserveCapacity(pairCount)
        for c in actions.indices {
            if config.rollout.semantics == .reference
                && model.surelyFails(flat[start[c]..<start[c + 1]], budget: state.budget, horizon: state.horizon) { continue }
            alive.append(contentsOf: c * contCount..<(c + 1) * contCount)
        }
        if alive.isEmpty { alive = [0]; runs[0] = 1 }
        if config.adaptive && pairCount > 4 {
            var target = max(1, m / 8)
            var done = 0
            while true {
                let last = target * 4 > 2 * m || alive.count <= 4
                if last { race(alive, from: done, to: target) } else { simulate(alive, from: done, to: target) }
                done = target
                if last { break }
                let keep = max(1, (alive.count + 3) / 4)
                alive = alive.sorted { wins[$0] != wins[$1] ? wins[$0] > wins[$1] : $0 < $1 }.prefix(keep).sorted()
                target *= 4
            }
        } else {
            race(alive, from: 0, to: m)
        }
        alive = alive.filter { wins[$0] >= 0 }
        var best = alive[0]
        for p in alive where Double(wins[p]) / Double(runs[p]) > Double(wins[best]) / Double(runs[best]) { best = p }
        if wins[best] == 0 { best = 0 }  // every pair scored 0 (some without simulation): the earliest wins

        // One step of coordinate ascent beyond the reference's candidates: every action that
        // differs from the best one in one node's (model, k), raced against the best pair on the
        // same random streams. Replaces it only when strictly better.
        if config.localSearch && !config.adaptive && ready.count >= 2 && wins[best] > 0 && wins[best] < m && runs[best] == m {
            let current = actions[best / contCount]
            var seen = Set(actions)
            var added: [[Assignment]] = []
            for i in current.indices {
                for level in levels(current[i].node) where level != current[i] {
                    var a = current
                    a[i] = level
                    if seen.insert(a).inserted { added.append(a) }
                }
            }
            let firstNew = actions.count
            for a in added { actions.append(a); flat.append(contentsOf: a); start.append(flat.count) }
            wins.append(contentsOf: repeatElement(0, count: added.count * contCount))
            runs.append(contentsOf: repeatElement(0, count: added.count * contCount))
            var fresh: [Int] = []
            for c in firstNew..<actions.count {
                if config.rollout.semantics == .reference
                    && model.surelyFails(flat[start[c]..<start[c + 1]], budget: state.budget, horizon: state.horizon) { continue }
                fresh.append(contentsOf: c * contCount..<(c + 1) * contCount)
            }
            incumbentKey = Self.key(wins[best], best)
            race(fresh, from: 0, to: m)
            for p in fresh where wins[p] > wins[best] { best = p }
        }
        return MCPPDecision(
            action: actions[best / contCount], continuationModel: (best % contCount) / kCount,
            continuationKIndex: best % kCount, score: runs[best] > 0 ? Double(wins[best]) / Double(runs[best]) : 0,
            candidates: actions.count, rollouts: total)
    }
}
