import Planner
import Foundation

/// A policy the planner benchmark runs.
public enum BenchPolicy: Sendable, Hashable {
    case mcpp
    case baseline(Baseline, model: String)

    public var name: String {
        switch self {
        case .mcpp: "mcpp"
        case .baseline(let b, let model): "\(b.name)@\(model)"
        }
    }

    /// Parses `mcpp`, `baselines` (all of them on every model), `NAME` (every model) or `NAME@MODEL`.
    public static func parse(_ list: String, models: [String]) throws -> [BenchPolicy] {
        var out: [BenchPolicy] = []
        for token in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !token.isEmpty {
            if token == "mcpp" { out.append(.mcpp); continue }
            if token == "baselines" {
                for b in Baseline.all { for m in models { out.append(.baseline(b, model: m)) } }
                continue
            }
            let parts = token.split(separator: "@", maxSplits: 1).map(String.init)
            guard let b = Baseline(name: parts[0]) else {
                throw PlannerSpecError(description: "unknown policy '\(token)': expected mcpp, baselines, seqK, uniform, random, latency_weighted, success_rate_weighted or critical_path_static, optionally @MODEL")
            }
            if parts.count == 2 {
                guard models.contains(parts[1]) else {
                    throw PlannerSpecError(description: "policy '\(token)': unknown model '\(parts[1])' (models: \(models.joined(separator: ", ")))")
                }
                out.append(.baseline(b, model: parts[1]))
            } else {
                for m in models { out.append(.baseline(b, model: m)) }
            }
        }
        var seen = Set<BenchPolicy>()
        return out.filter { seen.insert($0).inserted }
    }

    /// Per-method execution seed offset (the reference's scheme: multiples of 104729).
    var seedOffset: UInt64 {
        switch self {
        case .mcpp: 104_729
        case .baseline(let b, _):
            switch b {
            case .sequential(let k): UInt64(104_729 * (k.trailingZeroBitCount + 1))
            case .uniform: 837_832
            case .random: 942_561
            case .latencyWeighted: 1_047_290
            case .successRateWeighted: 1_152_019
            case .criticalPathStatic: 1_256_748
            }
        }
    }
}

/// What the benchmark runs.
public struct BenchSettings: Sendable {
    public var budgetRatios: [Double] = [0.5, 1, 2]
    public var deadlineRatios: [Double] = [0.5, 1, 2]
    public var trials = 20
    public var seed: UInt64 = 42
    public var mcpp = MCPPConfig()
    public var semantics: Semantics = .reference
    public var cancelSiblings = false
    /// Pre-drawn batch outcomes per (node, model, k); 0 = exact draws.
    public var tableSize = 1024
    /// Live semantics: attempts of each model that may run at once (nil: unlimited).
    public var slotsPerModel: Int?
    /// Whether MCPP's simulations know the slot limit (else only the executor enforces it).
    public var plannerSeesSlots = true

    public init() {}
}

/// One (policy, cell) row of the benchmark.
public struct CellSummary: Sendable, Equatable {
    public var policy: String
    public var budgetRatio: Double
    public var deadlineRatio: Double
    public var runs: Int
    public var success: Double
    /// 95% percentile bootstrap CI that resamples whole DAGs (runs of one DAG are correlated).
    public var ciLow: Double
    public var ciHigh: Double
    public var meanCost: Double
    public var meanMakespan: Double
    /// Planner decisions per run.
    public var decisions: Double
    public var msPerDecision: Double
    public var rolloutsPerSecond: Double
    /// The slowest single decision of the cell.
    public var maxMsPerDecision: Double = 0
}

/// The reference experiment (README §3–5) on a set of pool DAGs.
public enum PlannerBenchmark {
    /// The 50 DAG rows of the reference runs (`indices-public.json`).
    public static let referenceIndices = [5, 6, 9, 12, 13, 14, 15, 17, 18, 22, 23, 24, 28, 31, 37, 38, 39, 47, 50, 53, 54, 57, 61,
                                          69, 71, 73, 74, 81, 82, 87, 93, 101, 104, 107, 108, 109, 111, 112, 120, 125, 126, 127,
                                          129, 130, 132, 134, 137, 143, 145, 146]

    /// Runs every policy on every DAG, cell and trial; `progress` hears one line per DAG.
    public static func run(dags: [PoolDAG], policies: [BenchPolicy], settings: BenchSettings,
                           progress: (@Sendable (String) -> Void)? = nil) -> [CellSummary] {
        struct Key: Hashable { var policy: BenchPolicy; var beta: Double; var delta: Double }
        var runs: [Key: [(dag: Int, run: RunResult)]] = [:]
        let executor = Executor(semantics: settings.semantics, cancelSiblings: settings.cancelSiblings)
        var mcppRollout = settings.mcpp.rollout
        mcppRollout.semantics = settings.semantics
        mcppRollout.cancelSiblings = settings.cancelSiblings
        var config = settings.mcpp
        config.rollout = mcppRollout
        let clock = ContinuousClock()
        for dag in dags {
            let started = clock.now
            let budgetNominal = dag.nominalBudgetUSD, deadlineNominal = dag.nominalDeadlineSeconds
            let full = policies.contains(.mcpp)
                ? SimModel(dag.problem(), tableSize: settings.tableSize, seed: deriveSeed(settings.seed, UInt64(dag.index))) : nil
            var single: [String: SimModel] = [:]
            for case .baseline(_, let m) in policies where single[m] == nil {
                if let mi = dag.modelIDs.firstIndex(of: m) { single[m] = SimModel(dag.singleModelProblem(model: mi), tableSize: 0) }
            }
            for beta in settings.budgetRatios {
                for delta in settings.deadlineRatios {
                    let budget = beta * budgetNominal, deadline = delta * deadlineNominal
                    for policy in policies {
                        var list: [(Int, RunResult)] = []
                        for t in 0..<settings.trials {
                            let exec = settings.seed &+ 10_007 &* UInt64(dag.index) &+ 7 &* UInt64(t) &+ 1 &+ policy.seedOffset
                            let policySeed = deriveSeed(UInt64(dag.index) &+ 1009 &* UInt64(t), settings.seed)
                            let r: RunResult
                            switch policy {
                            case .mcpp:
                                let slots = settings.slotsPerModel.map { Array(repeating: $0, count: dag.modelIDs.count) }
                                r = executor.runMCPP(MCPP(model: full!, config: config), budget: budget, deadline: deadline,
                                                     slots: settings.semantics == .live ? slots : nil,
                                                     plannerSeesSlots: settings.plannerSeesSlots,
                                                     execSeed: exec, policySeed: policySeed)
                            case .baseline(let b, let m):
                                guard let sm = single[m] else { continue }
                                r = executor.runBaseline(b, model: sm, budget: budget, deadline: deadline,
                                                         execSeed: exec, policySeed: policySeed)
                            }
                            list.append((dag.index, r))
                        }
                        runs[Key(policy: policy, beta: beta, delta: delta), default: []].append(contentsOf: list)
                    }
                }
            }
            let seconds = Double((clock.now - started).components.seconds) + Double((clock.now - started).components.attoseconds) * 1e-18
            progress?("dag \(dag.index) (\(dag.nodes.count) nodes): \(String(format: "%.1f", seconds)) s")
        }
        var out: [CellSummary] = []
        for policy in policies {
            for beta in settings.budgetRatios {
                for delta in settings.deadlineRatios {
                    guard let list = runs[Key(policy: policy, beta: beta, delta: delta)], !list.isEmpty else { continue }
                    out.append(summarize(policy.name, beta, delta, list))
                }
            }
        }
        return out
    }

    static func summarize(_ name: String, _ beta: Double, _ delta: Double, _ list: [(dag: Int, run: RunResult)]) -> CellSummary {
        let n = Double(list.count)
        let success = list.filter(\.run.constrainedSuccess).count
        let decisions = list.reduce(0) { $0 + $1.run.decisions }
        let nanos = list.reduce(Int64(0)) { $0 + $1.run.plannerNanoseconds }
        let rollouts = list.reduce(0) { $0 + $1.run.plannerRollouts }
        let (low, high) = clusterBootstrap(list.map { ($0.dag, $0.run.constrainedSuccess) })
        return CellSummary(
            policy: name, budgetRatio: beta, deadlineRatio: delta, runs: list.count, success: Double(success) / n,
            ciLow: low, ciHigh: high,
            meanCost: list.reduce(0) { $0 + $1.run.cost } / n,
            meanMakespan: list.reduce(0) { $0 + $1.run.makespan } / n,
            decisions: Double(decisions) / n,
            msPerDecision: decisions > 0 ? Double(nanos) / 1e6 / Double(decisions) : 0,
            rolloutsPerSecond: nanos > 0 ? Double(rollouts) / (Double(nanos) / 1e9) : 0,
            maxMsPerDecision: Double(list.map(\.run.maxDecisionNanoseconds).max() ?? 0) / 1e6)
    }

    /// 95% percentile bootstrap of the success rate, resampling whole DAGs (1000 resamples, seed 0).
    public static func clusterBootstrap(_ outcomes: [(dag: Int, success: Bool)], resamples: Int = 1000) -> (Double, Double) {
        var byDag: [Int: (s: Int, n: Int)] = [:]
        for o in outcomes { byDag[o.dag, default: (0, 0)].s += o.success ? 1 : 0; byDag[o.dag, default: (0, 0)].n += 1 }
        let groups = byDag.keys.sorted().map { byDag[$0]! }
        guard !groups.isEmpty else { return (0, 0) }
        var rng = SplitMix64(seed: 0)
        var means: [Double] = []
        for _ in 0..<resamples {
            var s = 0, n = 0
            for _ in groups.indices { let g = groups[rng.below(groups.count)]; s += g.s; n += g.n }
            means.append(Double(s) / Double(n))
        }
        means.sort()
        return (means[Int(0.025 * Double(resamples - 1))], means[Int((0.975 * Double(resamples - 1)).rounded(.up))])
    }
}
