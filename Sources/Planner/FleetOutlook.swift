import AgentFlowCore
import Foundation

/// A cheap (O(nodes)) estimate of a job's chances, for the cross-job policy and admission:
/// how much work is left, how long its critical path is expected to take given the queueing
/// delay in front of its attempts, and the probability it finishes within budget and deadline.
///
/// Each remaining node runs on the model with the shortest expected time to a first pass,
/// `(seconds + wait) / p`; the number of attempts until one passes is geometric, so a node's
/// time has mean `(s + w) / p` and variance `(s + w)² (1 − p) / p²`, and its cost likewise. The
/// probability of finishing in time is a normal approximation over the longest mean path, the
/// probability of staying within budget one over the sum of the nodes' costs; their product is
/// ``success``. MCPP's `completionProbability` is the exact (and 1,000× dearer) counterpart.
public struct FleetOutlook: Sendable, Equatable {
    /// Expected seconds of the critical path of what is left, and its standard deviation.
    public var pathSeconds: Double
    public var pathDeviation: Double
    /// Seconds until the deadline.
    public var horizon: Double
    /// Probability that the remaining attempts fit the remaining budget.
    public var budgetProbability: Double
    /// Expected slot-seconds (attempt-seconds on workers) until every node has passed.
    public var slotSeconds: Double
    /// Expected seconds of one attempt of the job's next ready node (what a slot given now is held for).
    public var attemptSeconds: Double

    public init(pathSeconds: Double, pathDeviation: Double, horizon: Double, budgetProbability: Double,
                slotSeconds: Double, attemptSeconds: Double) {
        self.pathSeconds = pathSeconds
        self.pathDeviation = pathDeviation
        self.horizon = horizon
        self.budgetProbability = budgetProbability
        self.slotSeconds = slotSeconds
        self.attemptSeconds = attemptSeconds
    }

    /// Estimated probability of finishing within budget and deadline.
    public var success: Double { success(afterDelay: 0) }

    /// The same, if the job's work starts `delay` seconds later than it could now.
    public func success(afterDelay delay: Double) -> Double {
        min(1, max(0, onTime(afterDelay: delay) * budgetProbability))
    }

    /// Estimated probability of finishing by the deadline if the job's work starts `delay`
    /// seconds later than it could now, budget aside: the part of ``success`` that the order in
    /// which jobs get slots can change.
    public func onTime(afterDelay delay: Double = 0) -> Double {
        let slack = horizon - delay - pathSeconds
        let time: Double
        if pathDeviation > 1e-9 {
            time = normalCDF(slack / pathDeviation)
        } else {
            time = slack >= 0 ? 1 : 0
        }
        return min(1, max(0, time))
    }

    /// Seconds to spare on the critical path (negative: expected late).
    public var slack: Double { horizon - pathSeconds }

    /// A job with nothing left.
    public static func finished(horizon: Double) -> FleetOutlook {
        FleetOutlook(pathSeconds: 0, pathDeviation: 0, horizon: horizon, budgetProbability: 1, slotSeconds: 0, attemptSeconds: 0)
    }

    /// The outlook of a planning state. `wait[m]`: seconds an attempt of model `m` is expected to
    /// queue before it starts (missing: 0). Nodes in flight count half an attempt plus retries.
    /// `order`: ``topologicalOrder(_:)`` of the state's nodes, where the caller keeps it (it
    /// depends on the nodes' needs only, which do not change while a job runs).
    public static func estimate(_ state: PlanState, wait: [Double] = [], order: [Int]? = nil) -> FleetOutlook {
        let n = state.nodes.count
        guard state.done.count < n else { return .finished(horizon: state.remainingSeconds) }
        var mean = [Double](repeating: 0, count: n)
        var variance = [Double](repeating: 0, count: n)
        var costMean = 0.0, costVariance = 0.0, tokenMean = 0.0, tokenVariance = 0.0
        var slotSeconds = 0.0
        var attemptSeconds = 0.0
        // `done` as flags: the loops below ask about every node and its needs, and a set lookup
        // each (hashing) was most of an outlook refresh of a 10,000-node job.
        var doneFlags = [Bool](repeating: false, count: n)
        for v in state.done where v >= 0 && v < n { doneFlags[v] = true }
        let done = doneFlags
        /// Whether need `u` is done (a need outside the nodes is looked up in the set).
        func isDone(_ u: Int) -> Bool { u >= 0 && u < n ? done[u] : state.done.contains(u) }
        // And `inFlight` likewise: attempts in flight (> 0), and none (== 0, what ``PlanState/ready`` asks).
        var running = [Bool](repeating: false, count: n), idle = [Bool](repeating: true, count: n)
        for (v, k) in state.inFlight where v >= 0 && v < n {
            running[v] = k > 0
            idle[v] = k == 0
        }
        for v in 0..<n where !done[v] {
            var best: (time: Double, m: Int, e: Estimate)?
            for (m, e) in state.nodes[v].estimates.enumerated() {
                guard let e, m < state.models.count else { continue }
                let p = min(max(e.success, 1e-3), 1)
                let w = m < wait.count ? max(wait[m], 0) : 0
                let t = (max(e.seconds, 0) + w) / p
                if best == nil || t < best!.time { best = (t, m, e) }
            }
            guard let (_, m, e) = best else {
                mean[v] = .infinity
                continue
            }
            let p = min(max(e.success, 1e-3), 1)
            let w = m < wait.count ? max(wait[m], 0) : 0
            let s = max(e.seconds, 0)
            let retries = (1 - p) / p
            mean[v] = (running[v] ? s / 2 : s + w) + retries * (s + w)
            variance[v] = (s + w) * (s + w) * (1 - p) / (p * p)
            slotSeconds += (running[v] ? s / 2 : s) + retries * s
            let tokens = running[v] ? retries * e.tokens : e.tokens / p
            let price = max(state.models[m].priceInput, state.models[m].priceOutput) / 1_000_000
            let tv = e.tokens * e.tokens * (1 - p) / (p * p)
            tokenMean += tokens
            tokenVariance += tv
            costMean += tokens * price
            costVariance += tv * price * price
            // The first ready node in index order (``PlanState/ready``), asked only until one is found.
            if attemptSeconds == 0 && idle[v] && state.nodes[v].needs.allSatisfy(isDone) { attemptSeconds = s }
        }
        // Longest mean path (and the variance along it), in topological order.
        var pathMean = [Double](repeating: 0, count: n)
        var pathVar = [Double](repeating: 0, count: n)
        var longest = 0.0, longestVar = 0.0
        for v in order ?? topologicalOrder(state.nodes) where !done[v] {
            var before = 0.0, beforeVar = 0.0
            for u in state.nodes[v].needs where !isDone(u) && pathMean[u] > before {
                before = pathMean[u]
                beforeVar = pathVar[u]
            }
            pathMean[v] = before + mean[v]
            pathVar[v] = beforeVar + variance[v]
            if pathMean[v] > longest { longest = pathMean[v]; longestVar = pathVar[v] }
        }
        var budget = 1.0
        if let usd = state.remainingUSD {
            budget *= costVariance > 0 ? normalCDF((usd - costMean) / costVariance.squareRoot()) : (usd >= costMean ? 1 : 0)
        }
        if let tokens = state.remainingTokens {
            let t = Double(tokens)
            budget *= tokenVariance > 0 ? normalCDF((t - tokenMean) / tokenVariance.squareRoot()) : (t >= tokenMean ? 1 : 0)
        }
        return FleetOutlook(pathSeconds: longest, pathDeviation: longestVar.squareRoot(), horizon: state.remainingSeconds,
                            budgetProbability: budget, slotSeconds: slotSeconds, attemptSeconds: attemptSeconds)
    }

    /// Kahn's order: the nodes with no needs by index, then each node once its last need is
    /// placed, children in index order. The children lists are one flat array (offsets per node),
    /// not an array per node: 10,000 small allocations per outlook refresh otherwise.
    public static func topologicalOrder(_ nodes: [PlanNode]) -> [Int] {
        let n = nodes.count
        var indegree = nodes.map { $0.needs.count }
        var start = [Int](repeating: 0, count: n + 1)
        for v in 0..<n { for u in nodes[v].needs where u >= 0 && u < n { start[u + 1] += 1 } }
        for u in 0..<n { start[u + 1] += start[u] }
        var fill = start
        var children = [Int](repeating: 0, count: start[n])
        for v in 0..<n {
            for u in nodes[v].needs where u >= 0 && u < n {
                children[fill[u]] = v
                fill[u] += 1
            }
        }
        var order: [Int] = []
        order.reserveCapacity(n)
        for v in 0..<n where indegree[v] == 0 { order.append(v) }
        var i = 0
        while i < order.count {
            let u = order[i]
            for k in start[u]..<start[u + 1] {
                let c = children[k]
                indegree[c] -= 1
                if indegree[c] == 0 { order.append(c) }
            }
            i += 1
        }
        return order
    }
}

/// Φ(x), the standard normal CDF.
@inline(__always)
public func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
