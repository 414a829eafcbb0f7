/// MCPP for live jobs: turns a ``PlanState`` into a simulation problem and asks ``MCPP``.
///
/// Live semantics throughout: an attempt reserves its worst case (its node's `tokenCap`,
/// priced with ``PlanModel/worstCaseUSD(tokens:)``), nothing is launched that does not fit the
/// remaining budget or the free slots, and the remaining time of running attempts is sampled.
/// With both a token and a USD limit, every cost is the larger of its two shares of what is
/// left (conservative). Each call takes milliseconds to tens of milliseconds (M = 64).
/// A DAG over 64 nodes (the simulator's node masks) is planned on a rolling window of
/// ``windowNodes`` nodes with its share of the budget and time (``PlanWindow``).
public struct MCPPPlanner: LivePlanner {
    public var config: MCPPConfig
    public var seed: UInt64
    /// Pre-drawn batch outcomes per pair (smaller than the benchmark's).
    public var tableSize = 256
    /// Pre-drawn batch outcomes per pair and k when planning on a window, fewer for k > 4
    /// (`SimModel`'s `shrinkLargeBatches`): the tables are most of a window decision's cost.
    public var windowTableSize = 64
    /// Candidate actions of a window decision (at most `config.maxCandidates`), and its
    /// simulations per pair (`nil`: `config.simulations`). They bound a window decision's work:
    /// when the budget or time is tight, few pairs can be pruned early and every pair is simulated.
    public var windowMaxCandidates = 32
    public var windowSimulations: Int? = nil
    /// Successive halving instead of racing for window decisions (`MCPPConfig.adaptive`).
    public var windowAdaptive = false
    /// Skip MCPP's simulations when the free slots leave one outcome (``forcedAction(_:ready:)``):
    /// the launches are the same either way; false only to check that against the full search.
    var skipsForcedDecisions = true
    /// Where the batch-outcome tables come from: shared by every job and decision whose pairs
    /// have the same rows (``OutcomeTableCache``; they are a function of the rows alone, so a
    /// decision does not depend on what the cache holds); nil: drawn per decision from `seed`.
    public var tableCache: OutcomeTableCache? = .shared
    /// Over 64 nodes, MCPP plans on a rolling window of this many nodes (at most 64; ``PlanWindow``).
    public var windowNodes = 48 {
        didSet { windowNodes = min(max(windowNodes, 1), PlanProblem.maxNodes) }
    }

    public init(seed: UInt64 = 0, config: MCPPConfig = MCPPPlanner.defaultConfig) {
        self.seed = seed
        self.config = config
    }

    public static var defaultConfig: MCPPConfig {
        var c = MCPPConfig(simulations: 64, adaptive: false)
        c.giveUpWhenHeadFails = true
        // The coordinator stops a node's other attempts once one passes; plan for it.
        c.rollout = RolloutOptions(semantics: .live, cancelSiblings: true, sampleInFlight: true)
        return c
    }

    public var name: String { "mcpp" }

    /// The simulation problem of a live state, with everything in units of "share of the budget left".
    struct Compiled {
        var model: SimModel
        var state: SimState
        /// Per (node, model): worst-case cost of one attempt in budget units.
        var worst: [[Double]]
        var freeSlots: [Int]
    }

    static let unlimited = 1 << 30

    func compile(_ state: PlanState, tables: Int, shrink: Bool = false) -> Compiled? {
        let n = state.nodes.count
        guard n > 0, n <= PlanProblem.maxNodes, !state.models.isEmpty else { return nil }
        let usd = state.remainingUSD.map { max($0, 0) }
        let tokens = state.remainingTokens.map { Double(max($0, 0)) }
        func cost(tokens t: Double, model m: Int) -> Double {
            var c = 0.0
            if let usd {
                let price = max(state.models[m].priceInput, state.models[m].priceOutput) / 1_000_000
                c = max(c, usd > 0 ? t * price / usd : (t * price > 0 ? .infinity : 0))
            }
            if let tokens { c = max(c, tokens > 0 ? t / tokens : (t > 0 ? .infinity : 0)) }
            return c
        }
        /// Tokens → budget units: one factor per model (both shares are proportional to tokens).
        func costFactor(model m: Int) -> Double {
            var f = 0.0
            if let usd {
                let price = max(state.models[m].priceInput, state.models[m].priceOutput) / 1_000_000
                f = max(f, usd > 0 ? price / usd : (price > 0 ? .infinity : 0))
            }
            if let tokens { f = max(f, tokens > 0 ? 1 / tokens : .infinity) }
            return f
        }
        let budget: Double = usd == nil && tokens == nil ? .infinity : 1
        let waits = state.models.indices.map { m in m < state.queueWait.count && state.queueWait[m].isFinite ? max(state.queueWait[m], 0) : 0 }
        var samples: [[[SimSample]]] = []
        // The same rows in seconds and tokens: the outcome tables are drawn from these, shared by
        // every job whose rows are the same (the wait and the budget left apply as they are drawn).
        var raw: [[[SimSample]]] = []
        var worst: [[Double]] = []
        for node in state.nodes {
            var perModel: [[SimSample]] = []
            var rawPerModel: [[SimSample]] = []
            var worstRow: [Double] = []
            for m in state.models.indices {
                guard m < node.estimates.count, let prior = node.estimates[m] else {
                    perModel.append([]); rawPerModel.append([]); worstRow.append(.infinity); continue
                }
                let book = state.estimateBook ?? EstimateBook()
                let rows = book.rows(subtask: node.id, model: state.models[m].name, prior: prior, tokenCap: node.tokenCap)
                perModel.append(rows.map { SimSample(latency: max($0.seconds, 1e-3) + waits[m], success: $0.passed, cost: cost(tokens: $0.tokens, model: m)) })
                rawPerModel.append(rows.map { SimSample(latency: max($0.seconds, 1e-3), success: $0.passed, cost: $0.tokens) })
                worstRow.append(cost(tokens: Double(node.tokenCap), model: m))
            }
            guard perModel.contains(where: { !$0.isEmpty }) else { return nil }
            samples.append(perModel)
            raw.append(rawPerModel)
            worst.append(worstRow)
        }
        let problem = PlanProblem(modelNames: state.models.map(\.name), parents: state.nodes.map(\.needs), samples: samples,
                                  worstCaseCost: worst.map { $0.map { $0.isFinite ? $0 : 0 } })
        let shared = tableCache.map { SharedOutcomes(cache: $0, rows: raw, shift: waits, scale: state.models.indices.map(costFactor)) }
        let sim = SimModel(problem, tableSize: tables, seed: seed, threads: config.threads, shrinkLargeBatches: shrink, shared: shared)
        var done: UInt64 = 0
        for v in state.done where v < n { done |= 1 << UInt64(v) }
        var running = [Int](repeating: 0, count: state.models.count)
        var inFlight: [InFlightBatch] = []
        for (v, count) in state.inFlight.sorted(by: { $0.key < $1.key }) where count > 0 && v < n {
            let m = state.inFlightDetail[v]?.model ?? likeliestModel(state.nodes[v])
            let elapsed = state.inFlightDetail[v]?.elapsed ?? 0
            running[m] += count
            // The reservation is already out of the remaining budget; in-flight attempts hold
            // their worst case until they end, then release what they did not use.
            inFlight.append(InFlightBatch(node: v, model: m, running: count, elapsed: elapsed, remaining: nil,
                                          reserved: Double(count) * (worst[v][m].isFinite ? worst[v][m] : 0)))
        }
        let free = state.models.map { $0.freeSlots ?? Self.unlimited }
        let slots: [Int]? = state.models.contains { $0.freeSlots != nil }
            ? state.models.indices.map { min(free[$0] + running[$0], Self.unlimited) } : nil
        let simState = SimState(done: done, budget: budget, horizon: max(state.remainingSeconds, 0), inFlight: inFlight, slots: slots)
        return Compiled(model: sim, state: simState, worst: worst, freeSlots: free)
    }

    func likeliestModel(_ node: PlanNode) -> Int {
        var best = 0, bestSuccess = -1.0
        for (m, e) in node.estimates.enumerated() { if let e, e.success > bestSuccess { best = m; bestSuccess = e.success } }
        return best
    }

    func decisionSeed(_ state: PlanState) -> UInt64 {
        var h = seed
        for v in state.done.sorted() { h = deriveSeed(h, UInt64(v)) }
        for (v, c) in state.inFlight.sorted(by: { $0.key < $1.key }) { h = deriveSeed(h, UInt64(v) << 32 | UInt64(c)) }
        return deriveSeed(h, state.remainingSeconds.bitPattern)
    }

    var windowConfig: MCPPConfig {
        var c = config
        c.maxCandidates = max(1, min(c.maxCandidates, windowMaxCandidates))
        if let m = windowSimulations { c.simulations = max(1, m) }
        if windowAdaptive { c.adaptive = true }
        return c
    }

    public func decide(_ state: PlanState) -> [Launch] {
        if state.nodes.count > PlanProblem.maxNodes {
            // Rolling window: MCPP on the part of the DAG that runs next, with its share of what is left.
            let window = PlanWindow(state, limit: windowNodes)
            return decide(window.state, seed: decisionSeed(state), tables: windowTableSize, shrink: true, config: windowConfig).map {
                Launch(node: window.nodes[$0.node], model: $0.model, samples: $0.samples)
            }
        }
        return decide(state, seed: decisionSeed(state), tables: tableSize, config: config)
    }

    func decide(_ original: PlanState, seed: UInt64, tables: Int, shrink: Bool = false, config: MCPPConfig) -> [Launch] {
        // MCPP keeps the earliest of equally scored plans. When every plan reaches the goal in
        // simulation (plenty of budget and time), "one more try on the first model, the
        // continuation switches later" ties with switching now, and the same tie repeats at the
        // next decision: a live job kept retrying a model that had failed a subtask 21 times in
        // a row. When every plan fails (a tight budget), the tie decides what the next attempt
        // costs. Models are therefore presented cheapest per expected pass first for the ready
        // nodes (expected cost over posterior success, learned where there are attempts), so a
        // model that keeps failing drops back and a tight budget goes to the cheaper pass.
        let (state, order) = Self.cheapestPassFirst(original)
        guard let c = compile(state, tables: tables, shrink: shrink) else {
            return SequentialPlanner(samples: 1).decide(state).map { Launch(node: $0.node, model: order[$0.model], samples: $0.samples) }
        }
        let mcpp = MCPP(model: c.model, config: config)
        let action = (skipsForcedDecisions ? Self.forcedAction(c, ready: mcpp.dispatchable(c.state)) : nil)
            ?? mcpp.decide(c.state, seed: seed).action
        // Trim to what fits now: budget (worst case) and free slots, in node order.
        var budgetLeft = c.state.budget
        var free = c.freeSlots
        var launches: [Launch] = []
        for a in action {
            let worst = c.worst[a.node][a.model]
            guard worst.isFinite else { continue }
            var k = c.model.ks[a.kIndex]
            k = min(k, free[a.model])
            if worst > 0 { k = min(k, Int(min((budgetLeft / worst).rounded(.down), 1e9))) }
            guard k >= 1 else { continue }
            budgetLeft -= Double(k) * worst
            free[a.model] -= k
            launches.append(Launch(node: a.node, model: order[a.model], samples: k))
        }
        return launches
    }

    /// The action that stands for every candidate when the free slots leave them one outcome once
    /// trimmed (below): no slot free on any model a ready node may use (nothing launches), or one
    /// slot of the only such model (it goes to the first ready node in node order whose worst case
    /// the budget covers, whatever k the candidate asks). Every candidate holds every ready node,
    /// on models it may use, with k ≥ 1, so MCPP's choice among them cannot change the launches
    /// and its simulations are skipped. In a busy fleet a job's share is often one slot or none:
    /// at an empty queue, where every new job still has time, these were most of the planner's
    /// work per submission (docs/benchmarks.md, intake). nil: the search decides.
    static func forcedAction(_ c: Compiled, ready: [Int]) -> [Assignment]? {
        guard !ready.isEmpty else { return nil }
        let model = c.model
        var usable = Set<Int>()
        for v in ready { for m in 0..<model.modelCount where model.isAvailable(node: v, model: m) { usable.insert(m) } }
        if usable.allSatisfy({ c.freeSlots[$0] <= 0 }) { return [] }
        guard usable.count == 1, let m = usable.first, c.freeSlots[m] == 1 else { return nil }
        return ready.map { Assignment(node: $0, model: m, kIndex: 0) }
    }

    /// `state` with its models reordered by the mean over the ready nodes of expected USD per
    /// pass — expected tokens at the dearer price (as MCPP prices them) over posterior success —
    /// cheapest first; then likeliest first, then their order. `order[new] = old`.
    static func cheapestPassFirst(_ state: PlanState) -> (PlanState, [Int]) {
        let n = state.models.count
        let identity = Array(0..<n)
        let ready = state.ready
        guard n > 1, !ready.isEmpty else { return (state, identity) }
        var costPerPass = [Double](repeating: .infinity, count: n), success = [Double](repeating: -1, count: n)
        for m in 0..<n {
            let price = max(state.models[m].priceInput, state.models[m].priceOutput) / 1_000_000
            var cost = 0.0, p = 0.0, count = 0
            for v in ready {
                let node = state.nodes[v]
                guard m < node.estimates.count, let prior = node.estimates[m] else { continue }
                let e = state.estimateBook?.estimate(subtask: node.id, model: state.models[m].name, prior: prior) ?? prior
                cost += e.success > 0 ? e.tokens * price / e.success : .infinity
                p += e.success
                count += 1
            }
            if count > 0 {
                costPerPass[m] = cost / Double(count)
                success[m] = p / Double(count)
            }
        }
        let order = identity.sorted {
            if costPerPass[$0] != costPerPass[$1] { return costPerPass[$0] < costPerPass[$1] }
            if success[$0] != success[$1] { return success[$0] > success[$1] }
            return $0 < $1
        }
        guard order != identity else { return (state, identity) }
        var inverse = identity
        for (new, old) in order.enumerated() { inverse[old] = new }
        var s = state
        s.models = order.map { state.models[$0] }
        s.nodes = state.nodes.map { node in
            var node = node
            node.estimates = order.map { $0 < node.estimates.count ? node.estimates[$0] : nil }
            return node
        }
        if !state.queueWait.isEmpty { s.queueWait = order.map { $0 < state.queueWait.count ? state.queueWait[$0] : 0 } }
        s.inFlightDetail = state.inFlightDetail.mapValues { d in
            InFlightDetail(model: d.model < n ? inverse[d.model] : d.model, elapsed: d.elapsed)
        }
        return (s, order)
    }

    /// The estimated probability that the job finishes every node within budget and deadline
    /// (MCPP's score of its best plan from this state).
    /// Over 64 nodes: the estimate that the rolling window finishes within its share of the
    /// budget and time (an approximation of the whole job's chance).
    public func completionProbability(_ state: PlanState) -> Double? {
        if state.done.count >= state.nodes.count { return 1 }
        let seed = decisionSeed(state)
        let windowed = state.nodes.count > PlanProblem.maxNodes
        let target = windowed ? PlanWindow(state, limit: windowNodes).state : state
        guard let c = compile(target, tables: windowed ? windowTableSize : tableSize, shrink: windowed) else { return nil }
        let mcpp = MCPP(model: c.model, config: windowed ? windowConfig : config)
        return mcpp.decide(c.state, seed: seed, scoreWhenIdle: true).score
    }
}

/// `uniform`: the budget left is split evenly over the nodes not done; each ready node gets as
/// many attempts of its likeliest model as its share affords (at least one when it fits at all).
public struct UniformSplitPlanner: LivePlanner {
    public init() {}

    public var name: String { "uniform" }

    public func decide(_ state: PlanState) -> [Launch] {
        let remainingNodes = max(1, state.nodes.count - state.done.count - state.inFlight.filter { $0.value > 0 }.count)
        var usdLeft = state.remainingUSD, tokensLeft = state.remainingTokens
        var free = state.models.map { $0.freeSlots ?? Int.max }
        var launches: [Launch] = []
        for v in state.ready {
            guard let m = SequentialPlanner(samples: 1).chooseModel(for: state.nodes[v], in: state.models) else { continue }
            let cap = state.nodes[v].tokenCap
            let usdEach = state.models[m].worstCaseUSD(tokens: cap)
            var k = min(free[m], 1 << 20)
            // Quotients are capped before they become Ints: a tiny price would make them infinite.
            if let usd = state.remainingUSD, usdEach > 0 { k = min(k, max(1, Int(min(usd / Double(remainingNodes) / usdEach, 1e9)))) }
            if let tokens = state.remainingTokens, cap > 0 { k = min(k, max(1, tokens / remainingNodes / cap)) }
            if let u = usdLeft, usdEach > 0 { k = min(k, Int(max(-1, min((u / usdEach).rounded(.down), 1e9)))) }
            if let t = tokensLeft, cap > 0 { k = min(k, t / cap) }
            guard k >= 1 else { continue }
            usdLeft = usdLeft.map { $0 - Double(k) * usdEach }
            tokensLeft = tokensLeft.map { $0 - k * cap }
            free[m] -= k
            launches.append(Launch(node: v, model: m, samples: k))
        }
        return launches
    }
}
