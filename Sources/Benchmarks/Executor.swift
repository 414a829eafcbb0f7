import Planner
import Foundation

/// How a simulated run ended.
public enum Termination: String, Sendable {
    case completed
    case budgetExhausted = "budget_exhausted"
    case deadlineExhausted = "deadline_exhausted"
    case stalled
}

/// One simulated execution of a workflow under a policy.
public struct RunResult: Sendable, Equatable {
    public var completed: Bool
    /// Completed with makespan ≤ deadline and cost ≤ budget.
    public var constrainedSuccess: Bool
    public var termination: Termination
    public var makespan: Double
    public var cost: Double
    public var rollouts: Int
    public var decisions: Int
    /// Wall-clock nanoseconds spent in the planner, and simulations it ran.
    public var plannerNanoseconds: Int64
    public var plannerRollouts: Int
    /// The slowest single decision.
    public var maxDecisionNanoseconds: Int64 = 0
}

/// A fixed baseline of the reference (README §4), run on a single-model view of a DAG.
public enum Baseline: Sendable, Equatable, Hashable {
    /// Every dispatchable node gets k attempts at every decision point (Seq-k; k = 1 is Seq-1).
    case sequential(k: Int)
    /// Dispatch once with a per-node budget share b_v = B / n.
    case uniform
    /// b_v from a Dirichlet(1) split.
    case random
    /// b_v ∝ mean latency.
    case latencyWeighted
    /// b_v ∝ 1 − p_v.
    case successRateWeighted
    /// b_v ∝ the longest mean-latency path from v to a sink.
    case criticalPathStatic

    public var name: String {
        switch self {
        case .sequential(let k): "seq\(k)"
        case .uniform: "uniform"
        case .random: "random"
        case .latencyWeighted: "latency_weighted"
        case .successRateWeighted: "success_rate_weighted"
        case .criticalPathStatic: "critical_path_static"
        }
    }

    public static let all: [Baseline] = [1, 2, 4, 8, 16, 32, 64].map { .sequential(k: $0) }
        + [.uniform, .random, .latencyWeighted, .successRateWeighted, .criticalPathStatic]

    public init?(name: String) {
        if name.hasPrefix("seq"), let k = Int(name.dropFirst(3)), k >= 1 { self = .sequential(k: k); return }
        guard let b = Baseline.all.first(where: { $0.name == name }) else { return nil }
        self = b
    }

    /// Per-node budget caps of a static split (nil for Seq-k). `problem` has one model.
    public func budgetShares(_ problem: PlanProblem, budget: Double, rng: inout SplitMix64) -> [Double]? {
        let n = problem.nodeCount
        var weight: [Double]
        switch self {
        case .sequential: return nil
        case .uniform: weight = Array(repeating: 1, count: n)
        case .random: weight = (0..<n).map { _ in -log(max(rng.unit(), 1e-300)) }
        case .latencyWeighted: weight = (0..<n).map { problem.meanLatency(node: $0, model: 0) }
        case .successRateWeighted: weight = (0..<n).map { max(1 - problem.successRate(node: $0, model: 0), 1e-9) }
        case .criticalPathStatic:
            var children = [[Int]](repeating: [], count: n)
            for v in 0..<n { for p in problem.parents[v] { children[p].append(v) } }
            var dist = [Double?](repeating: nil, count: n)
            func longest(_ v: Int) -> Double {
                if let d = dist[v] { return d }
                let d = problem.meanLatency(node: v, model: 0) + (children[v].map(longest).max() ?? 0)
                dist[v] = d
                return d
            }
            weight = (0..<n).map(longest)
        }
        let total = weight.reduce(0, +)
        return weight.map { total > 0 ? budget * $0 / total : budget / Double(n) }
    }
}

/// The execution side of the benchmark: draws real outcomes and asks a policy what to launch.
public struct Executor: Sendable {
    public var semantics: Semantics
    /// Stop a batch's other attempts once one passes (saves time; under live semantics money too).
    public var cancelSiblings: Bool

    public init(semantics: Semantics = .reference, cancelSiblings: Bool = false) {
        self.semantics = semantics
        self.cancelSiblings = cancelSiblings
    }

    /// A batch in execution: its attempts' end times (absolute), outcomes and costs.
    struct Batch {
        var model: Int
        var start: Double
        var ends: [Double]
        var passes: [Bool]
        var costs: [Double]
        var reserved: Double

        /// When the node's batch is over: the last end, or with cancellation the first pass.
        func finish(cancel: Bool) -> Double {
            if cancel, let first = zip(ends, passes).filter({ $0.1 }).map(\.0).min() { return first }
            return ends.max() ?? start
        }

        /// What the batch costs if it ends at `t` (the siblings still running pay their share).
        func cost(endingAt t: Double) -> Double {
            zip(ends, costs).reduce(0) { sum, ec in
                let (end, c) = ec
                let duration = end - start
                return sum + (end <= t || duration <= 0 ? c : c * (t - start) / duration)
            }
        }
    }

    /// What one run keeps between decision points — the clock, the money, the nodes done, the
    /// batches in flight — and how it settles its next batch and ends, which MCPP's run and the
    /// baselines' share.
    struct Run {
        let budget: Double
        let deadline: Double
        let live: Bool
        let cancelSiblings: Bool
        let allMask: UInt64
        var now = 0.0
        var remaining: Double
        var spent = 0.0
        var done: UInt64 = 0
        var batches = [Int: Batch]()
        var result = RunResult(completed: false, constrainedSuccess: false, termination: .stalled, makespan: 0, cost: 0,
                               rollouts: 0, decisions: 0, plannerNanoseconds: 0, plannerRollouts: 0)

        init(budget: Double, deadline: Double, live: Bool, cancelSiblings: Bool, allMask: UInt64) {
            self.budget = budget
            self.deadline = deadline
            self.live = live
            self.cancelSiblings = cancelSiblings
            self.allMask = allMask
            remaining = budget
        }

        func finish(_ termination: Termination, at t: Double) -> RunResult {
            var result = result
            result.termination = termination
            result.completed = termination == .completed
            result.makespan = t
            result.cost = spent
            result.constrainedSuccess = result.completed && t <= deadline && spent <= budget + 1e-12
            return result
        }

        /// Ends the batch that finishes first: the clock moves to its end, its cost is settled
        /// (with cancellation, the siblings pay their share), its node is done if an attempt
        /// passed. Returns the run's result when the run is over — nothing in flight (`idle`),
        /// the batch ending past the deadline (when `checkDeadline`), or every node done — and
        /// nil while it goes on.
        mutating func settleNext(idle: Termination, checkDeadline: Bool) -> RunResult? {
            guard let (v, b) = batches.min(by: { ($0.value.finish(cancel: cancelSiblings), $0.key) < ($1.value.finish(cancel: cancelSiblings), $1.key) }) else {
                return finish(idle, at: now)
            }
            let t = b.finish(cancel: cancelSiblings)
            if checkDeadline && t > deadline { return finish(.deadlineExhausted, at: deadline) }
            now = t
            batches[v] = nil
            let actual = cancelSiblings ? b.cost(endingAt: t) : b.costs.reduce(0, +)
            if live {
                remaining += b.reserved - actual
                spent += actual
            } else if cancelSiblings {
                let refund = b.costs.reduce(0, +) - actual
                remaining += refund
                spent -= refund
            }
            if zip(b.ends, b.passes).contains(where: { $0.0 <= t && $0.1 }) {
                done |= 1 << UInt64(v)
                if done == allMask { return finish(.completed, at: now) }
            }
            return nil
        }
    }

    /// Runs MCPP (multi-model problem) on one execution seed.
    /// `slots` limits the attempts of each model running at once (live semantics); with
    /// `plannerSeesSlots` false the planner plans as if capacity were unlimited (for comparison).
    public func runMCPP(_ planner: MCPP, budget: Double, deadline: Double, slots: [Int]? = nil, plannerSeesSlots: Bool = true,
                        execSeed: UInt64, policySeed: UInt64) -> RunResult {
        let model = planner.model
        var rng = SplitMix64(seed: execSeed)
        let live = semantics == .live
        var run = Run(budget: budget, deadline: deadline, live: live, cancelSiblings: cancelSiblings, allMask: model.allMask)
        let clock = ContinuousClock()
        var policyRNG = SplitMix64(seed: policySeed)

        while true {
            // Decision point.
            let now = run.now
            let state = SimState(
                done: run.done, budget: run.remaining, horizon: deadline - now,
                inFlight: run.batches.sorted { $0.key < $1.key }.map { v, b in
                    let running = b.ends.filter { $0 > now }.count
                    let knownPass = zip(b.ends, b.passes).contains { $0.0 <= now && $0.1 }
                    return InFlightBatch(node: v, model: b.model, running: running, knownPass: knownPass,
                                         elapsed: now - b.start, remaining: b.finish(cancel: cancelSiblings) - now,
                                         reserved: live ? b.reserved - zip(b.ends, b.costs).filter { $0.0 <= now }.reduce(0) { $0 + $1.1 } : 0)
                },
                slots: plannerSeesSlots ? slots : nil)
            let started = clock.now
            let decision = planner.decide(state, seed: policyRNG.next())
            let elapsed = clock.now - started
            run.result.decisions += 1
            let nanos = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            run.result.plannerNanoseconds += nanos
            run.result.maxDecisionNanoseconds = max(run.result.maxDecisionNanoseconds, nanos)
            run.result.plannerRollouts += decision.rollouts

            var launched: [(Int, Batch)] = []
            var usedSlots = [Int](repeating: 0, count: model.modelCount)
            if slots != nil { for b in run.batches.values { usedSlots[b.model] += b.ends.filter { $0 > now }.count } }
            var actionCost = 0.0, latest = 0.0
            var reservedNow = 0.0
            for a in decision.action {
                let p = model.pair(a.node, a.model)
                var k = model.ks[a.kIndex]
                var reserve = 0.0
                if live {
                    let worst = model.worstCost(pair: p)
                    var ki = a.kIndex
                    let free = slots.map { $0[a.model] - usedSlots[a.model] } ?? Int.max
                    let affordable = worst > 0 ? Int(min((run.remaining - reservedNow) / worst, 1e9)) : Int.max
                    while ki > 0 && model.ks[ki] > min(free, affordable) { ki -= 1 }
                    k = model.ks[ki]
                    if k > min(free, affordable) { continue }
                    reserve = Double(k) * worst
                    reservedNow += reserve
                    usedSlots[a.model] += k
                }
                var b = Batch(model: a.model, start: now, ends: [], passes: [], costs: [], reserved: reserve)
                for _ in 0..<k {
                    let d = model.drawOne(pair: p, rng: &rng)
                    b.ends.append(now + d.latency); b.passes.append(d.success); b.costs.append(d.cost)
                    actionCost += d.cost
                }
                latest = max(latest, b.finish(cancel: cancelSiblings) - now)
                launched.append((a.node, b))
            }
            if !live && !launched.isEmpty {
                if latest > deadline - now { return run.finish(.deadlineExhausted, at: deadline) }
                if actionCost > run.remaining { return run.finish(.budgetExhausted, at: now) }
                run.remaining -= actionCost
                run.spent += actionCost
            } else if live {
                run.remaining -= reservedNow
            }
            for (v, b) in launched { run.batches[v] = b; run.result.rollouts += b.ends.count }

            // Next event: the batch that finishes first.
            if let end = run.settleNext(idle: live ? .budgetExhausted : .stalled, checkDeadline: true) { return end }
        }
    }

    /// Runs a fixed baseline on a single-model problem (the reference's baseline semantics:
    /// no online deadline, launches one attempt at a time, skips what does not fit).
    public func runBaseline(_ baseline: Baseline, model: SimModel, budget: Double, deadline: Double,
                            execSeed: UInt64, policySeed: UInt64) -> RunResult {
        let n = model.nodeCount
        var rng = SplitMix64(seed: execSeed)
        var policyRNG = SplitMix64(seed: policySeed)
        let caps = baseline.budgetShares(model.problem, budget: budget, rng: &policyRNG)
        let live = semantics == .live
        var nodeSpent = [Double](repeating: 0, count: n)
        var dispatched = [Bool](repeating: false, count: n)
        var run = Run(budget: budget, deadline: deadline, live: live, cancelSiblings: cancelSiblings, allMask: model.allMask)
        var rejected = false

        while true {
            run.result.decisions += 1
            var requests: [(node: Int, count: Int)] = []
            for v in 0..<n where run.done & (1 << UInt64(v)) == 0 && run.batches[v] == nil && model.parents(v) & ~run.done == 0 {
                switch baseline {
                case .sequential(let k): requests.append((v, k))
                default:
                    guard !dispatched[v], let caps else { continue }
                    dispatched[v] = true
                    let kappa = model.problem.meanCost(node: v, model: 0)
                    requests.append((v, max(1, kappa > 0 ? Int(max(0, min((caps[v] / kappa).rounded(.down), 1e9))) : 1)))
                }
            }
            requests.sort { ($0.count, $0.node) > ($1.count, $1.node) }
            for (v, count) in requests {
                var b = Batch(model: 0, start: run.now, ends: [], passes: [], costs: [], reserved: 0)
                for _ in 0..<count {
                    let p = model.pair(v, 0)
                    let d = model.drawOne(pair: p, rng: &rng)
                    let charge = live ? model.worstCost(pair: p) : d.cost
                    if charge > run.remaining || (caps.map { nodeSpent[v] + charge > $0[v] } ?? false) {
                        rejected = true
                        break
                    }
                    run.remaining -= charge
                    nodeSpent[v] += charge
                    if live { b.reserved += charge } else { run.spent += d.cost }
                    b.ends.append(run.now + d.latency); b.passes.append(d.success); b.costs.append(d.cost)
                }
                if !b.ends.isEmpty { run.batches[v] = b; run.result.rollouts += b.ends.count }
            }
            if let end = run.settleNext(idle: rejected ? .budgetExhausted : .stalled, checkDeadline: live) { return end }
        }
    }
}
