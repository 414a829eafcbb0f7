/// The rolling window MCPP plans on when a DAG is larger than its simulator's 64-node masks.
///
/// The window is the part of the remaining DAG that runs next: the ready nodes, the nodes in
/// flight, then the other remaining nodes by expected start time (the longest path of expected
/// times to a first pass from the frontier), never a node without its remaining parents, up to
/// `limit` nodes. It gets its proportional share of what is left: of the budget, the expected
/// cost of its nodes over that of every remaining node; of the time, its expected critical path
/// over that of the whole remaining DAG. The nodes beyond the window are thus approximated by
/// their expected costs and times, and MCPP simulates only the window. Each planning moment
/// recomputes the window, so it slides along the DAG as nodes complete.
///
/// Expected costs and times use each node's likeliest model under `seq:1`: `seconds / p` (plus
/// the model's queueing wait) and `tokens / p`, with `p` floored at 0.05.
struct PlanWindow {
    /// Window index → node index in the full state.
    var nodes: [Int]
    /// The window as a planning state of its own: indices are window indices, no node is done,
    /// and the budget and time are the window's shares.
    var state: PlanState
    var budgetShare: (tokens: Double, usd: Double)
    var timeShare: Double

    init(_ full: PlanState, limit: Int) {
        let n = full.nodes.count
        let done = full.done
        // Remaining nodes, their remaining parents and children.
        var children = [[Int]](repeating: [], count: n)
        var indegree = [Int](repeating: 0, count: n)
        for v in 0..<n where !done.contains(v) {
            for p in full.nodes[v].needs where p >= 0 && p < n && p != v && !done.contains(p) {
                children[p].append(v)
                indegree[v] += 1
            }
        }
        // Expected seconds and cost (tokens, USD) of each remaining node under seq:1 on its likeliest model.
        var duration = [Double](repeating: 0, count: n)
        var tokens = [Double](repeating: 0, count: n)
        var usd = [Double](repeating: 0, count: n)
        for v in 0..<n where !done.contains(v) {
            let node = full.nodes[v]
            var best = -1
            var bestSuccess = -1.0
            for (m, e) in node.estimates.enumerated() where m < full.models.count {
                if let e, e.success > bestSuccess { best = m; bestSuccess = e.success }
            }
            guard best >= 0, let e = node.estimates[best] else { duration[v] = 1e-6; continue }
            let p = min(max(e.success.isFinite ? e.success : 0, 0.05), 1)
            let wait = best < full.queueWait.count && full.queueWait[best].isFinite ? max(full.queueWait[best], 0) : 0
            let seconds = e.seconds.isFinite ? max(e.seconds, 0) : 0
            var expected = (seconds + wait) / p
            if (full.inFlight[v] ?? 0) > 0 {
                // Already running: what is left of its expected time; its cost is already reserved.
                expected = max(expected - (full.inFlightDetail[v]?.elapsed ?? 0), 0)
            } else {
                let t = e.tokens.isFinite ? max(min(e.tokens, Double(max(node.tokenCap, 0))), 0) : 0
                tokens[v] = t / p
                usd[v] = t / p * max(full.models[best].priceInput, full.models[best].priceOutput) / 1_000_000
            }
            duration[v] = max(expected, 1e-6)
        }
        // Earliest expected start of each remaining node (Kahn order over the remaining nodes).
        var start = [Double](repeating: 0, count: n)
        var position = [Int](repeating: Int.max, count: n)
        var queue = (0..<n).filter { !done.contains($0) && indegree[$0] == 0 }
        var head = 0
        var remainingIndegree = indegree
        while head < queue.count {
            let v = queue[head]
            position[v] = head
            head += 1
            for c in children[v] {
                start[c] = max(start[c], start[v] + duration[v])
                remainingIndegree[c] -= 1
                if remainingIndegree[c] == 0 { queue.append(c) }
            }
        }
        // Priority: ready nodes, then nodes in flight, then the rest by expected start.
        func rank(_ v: Int) -> Int {
            if (full.inFlight[v] ?? 0) > 0 { return 1 }
            return indegree[v] == 0 ? 0 : 2
        }
        let ordered = queue.sorted { a, b in
            let ra = rank(a), rb = rank(b)
            if ra != rb { return ra < rb }
            if start[a] != start[b] { return start[a] < start[b] }
            return position[a] < position[b]
        }
        // Take nodes in that order, each only with all its remaining parents already taken.
        var local = [Int](repeating: -1, count: n)
        var chosen: [Int] = []
        for v in ordered where chosen.count < limit {
            if full.nodes[v].needs.allSatisfy({ p in p < 0 || p >= n || p == v || done.contains(p) || local[p] >= 0 }) {
                local[v] = chosen.count
                chosen.append(v)
            }
        }
        nodes = chosen
        // Shares of the budget (expected cost) and of the time (expected critical path).
        var windowTokens = 0.0, allTokens = 0.0, windowUSD = 0.0, allUSD = 0.0
        var windowPath = 0.0, allPath = 0.0
        for v in queue {
            allTokens += tokens[v]; allUSD += usd[v]
            allPath = max(allPath, start[v] + duration[v])
            if local[v] >= 0 {
                windowTokens += tokens[v]; windowUSD += usd[v]
                windowPath = max(windowPath, start[v] + duration[v])
            }
        }
        func share(_ part: Double, _ whole: Double) -> Double {
            whole > 0 && part.isFinite && whole.isFinite ? min(max(part / whole, 0), 1) : 1
        }
        let tokenShare = share(windowTokens, allTokens), usdShare = share(windowUSD, allUSD)
        budgetShare = (tokenShare, usdShare)
        timeShare = share(windowPath, allPath)

        var sub = PlanState(
            nodes: chosen.map { v in
                var node = full.nodes[v]
                node.needs = node.needs.compactMap { p in p >= 0 && p < n && local[p] >= 0 ? local[p] : nil }
                return node
            },
            models: full.models, done: [],
            inFlight: Dictionary(uniqueKeysWithValues: full.inFlight.compactMap { v, c in
                v >= 0 && v < n && local[v] >= 0 ? (local[v], c) : nil
            }),
            remainingTokens: full.remainingTokens.map { Int((Double(max($0, 0)) * tokenShare).rounded(.down)) },
            remainingUSD: full.remainingUSD.map { max($0, 0) * usdShare },
            remainingSeconds: max(full.remainingSeconds, 0) * share(windowPath, allPath))
        for (v, detail) in full.inFlightDetail where v >= 0 && v < n && local[v] >= 0 { sub.inFlightDetail[local[v]] = detail }
        sub.estimateBook = full.estimateBook
        sub.queueWait = full.queueWait
        state = sub
    }
}
