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
    public static func estimate(_ state: PlanState, wait: [Double] = []) -> FleetOutlook {
        let n = state.nodes.count
        guard state.done.count < n else { return .finished(horizon: state.remainingSeconds) }
        var mean = [Double](repeating: 0, count: n)
        var variance = [Double](repeating: 0, count: n)
        var costMean = 0.0, costVariance = 0.0, tokenMean = 0.0, tokenVariance = 0.0
        var slotSeconds = 0.0
        var attemptSeconds = 0.0
        let ready = Set(state.ready)
        for v in 0..<n where !state.done.contains(v) {
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
            let running = (state.inFlight[v] ?? 0) > 0
            let retries = (1 - p) / p
            mean[v] = (running ? s / 2 : s + w) + retries * (s + w)
            variance[v] = (s + w) * (s + w) * (1 - p) / (p * p)
            slotSeconds += (running ? s / 2 : s) + retries * s
            let tokens = running ? retries * e.tokens : e.tokens / p
            let price = max(state.models[m].priceInput, state.models[m].priceOutput) / 1_000_000
            let tv = e.tokens * e.tokens * (1 - p) / (p * p)
            tokenMean += tokens
            tokenVariance += tv
            costMean += tokens * price
            costVariance += tv * price * price
            if ready.contains(v) && attemptSeconds == 0 { attemptSeconds = s }
        }
        // Longest mean path (and the variance along it), in topological order.
        var pathMean = [Double](repeating: 0, count: n)
        var pathVar = [Double](repeating: 0, count: n)
        var longest = 0.0, longestVar = 0.0
        for v in topologicalOrder(state.nodes) where !state.done.contains(v) {
            var before = 0.0, beforeVar = 0.0
            for u in state.nodes[v].needs where !state.done.contains(u) && pathMean[u] > before {
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

    static func topologicalOrder(_ nodes: [PlanNode]) -> [Int] {
        var indegree = nodes.map { $0.needs.count }
        var children = [[Int]](repeating: [], count: nodes.count)
        for v in nodes.indices { for u in nodes[v].needs where u < nodes.count { children[u].append(v) } }
        var order = nodes.indices.filter { indegree[$0] == 0 }
        var i = 0
        while i < order.count {
            for c in children[order[i]] {
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
