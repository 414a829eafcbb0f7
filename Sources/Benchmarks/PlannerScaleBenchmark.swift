import AgentFlowCore
import Coordinator
import Foundation
import Planner
import Simulation
import Wire

/// `agentflow bench planner-scale`: live planners on large synthetic DAGs, one job at a time,
/// on the real coordinator through the simulator, in virtual time: how long each decision takes
/// and what the job achieves (docs/benchmarks.md).
///
/// A synthetic DAG is layered and random: about √n layers of about √n nodes, each node after the
/// first layer needing 1–3 nodes of the layer before (and, one time in four, one of the layer
/// before that). Each node copies the calibration rows of a node drawn from the pool (every
/// model's rows), so its success rates, latencies and costs are the pool's. Budget and deadline
/// are ratios of the DAG's nominal ones (the pool's definitions, ../shared/bench/README.md §3).
public enum PlannerScaleBenchmark {
    /// A layered random DAG of `nodes` nodes whose rows are drawn from `pool`'s nodes.
    public static func syntheticDAG(nodes count: Int, pool: [PoolDAG], seed: UInt64) -> PoolDAG {
        precondition(count >= 1 && !pool.isEmpty)
        var rng = SplitMix64(seed: seed)
        let source = pool.flatMap { dag in dag.nodes.map { $0.samples } }
        let width = max(1, Int(Double(count).squareRoot().rounded()))
        var layers: [[Int]] = []
        var nodes: [PoolNode] = []
        while nodes.count < count {
            let size = min(count - nodes.count, max(1, width / 2 + rng.below(width + 1)))
            var layer: [Int] = []
            for _ in 0..<size {
                let v = nodes.count
                var parents = Set<Int>()
                if let previous = layers.last {
                    for _ in 0..<(1 + rng.below(3)) { parents.insert(previous[rng.below(previous.count)]) }
                    if layers.count >= 2 && rng.below(4) == 0 {
                        let older = layers[layers.count - 2]
                        parents.insert(older[rng.below(older.count)])
                    }
                }
                nodes.append(PoolNode(id: v, parents: parents.sorted(), samples: source[rng.below(source.count)]))
                layer.append(v)
            }
            layers.append(layer)
        }
        return PoolDAG(index: 0, kind: "synthetic_layered", modelIDs: pool[0].modelIDs, nodes: nodes)
    }


    /// One job run to its end.
    public struct Run: Sendable {
        /// The planner's name as a job reports it.
        public var planner: String
        public var success: Bool
        /// Nodes that passed.
        public var completed: Int
        public var spentUSD: Double
        public var makespan: Double
        /// Milliseconds of each decision.
        public var decisionMillis: [Double]
    }

    /// What `bench planner-scale` runs.
    public struct Settings: Sendable {
        public var sizes = [50, 200, 500]
        /// Synthetic DAGs (one job each) per size.
        public var trials = 4
        /// The jobs' `--planner` values, compared on the same DAGs.
        public var planners = ["mcpp", "seq:1"]
        public var budgetRatio = 1.0
        public var deadlineRatio = 1.0
        /// Worker slots per model (nil: as many as a worker may have, more than any job uses).
        public var slots: Int?
        public var seed: UInt64 = 1
        /// Builds a job's planner (the command's MCPP settings).
        public var makePlanner: @Sendable (String, UInt64) throws -> any LivePlanner = makeLivePlanner

        public init() {}
    }

    /// Runs one job of `dag` on the real coordinator, through the simulator under virtual time:
    /// one worker per model with `slots` slots, every attempt's outcome a calibration row of its
    /// (node, model) (``CalibrationBackend``), the job's planner built by `makePlanner` and
    /// started with the pool's rows as its estimate book. The coordinator does the rest —
    /// reservations, dispatch, sibling cancellation, when to ask the planner.
    public static func run(dag: PoolDAG, planner spec: String, makePlanner: @escaping @Sendable (String, UInt64) throws -> any LivePlanner,
                           budgetUSD: Double, deadline: Double, slots: Int?, seed: UInt64) throws -> Run {
        var coordinator = CoordinatorSpec()
        coordinator.database = ":memory:"
        coordinator.heartbeat = .seconds(5)
        coordinator.liveness = 3
        let models = dag.modelIDs.indices.map { m in
            ModelSpec(name: dag.modelIDs[m], priceInput: dag.price(ofModel: m), priceOutput: dag.price(ofModel: m), context: 1_000_000)
        }
        let cluster = Cluster(coordinator: coordinator, models: models, workers: [])
        var options = CoreOptions(cluster: cluster, idSeed: seed)
        options.makePlanner = makePlanner
        let core = options
        let sim = try SimulatedCluster(cluster: cluster, seed: seed, priorBooks: [PoolWorkflow.name(dag): dag.planNodes().1],
                                       coreOptions: { _ in core }, backend: { _, _, clock in CalibrationBackend(dags: [dag], time: clock) })
        var millis: [Double] = []
        var plannerName = spec
        sim.onNotes = { notes in
            for case .decision(_, let name, _, _, let ms) in notes {
                plannerName = name
                if let ms { millis.append(ms) }
            }
        }
        var job: String?
        var refusal: String?
        sim.onReply = { _, reply in
            switch reply {
            case .submitted(let id): job = id
            case .error(_, let message): refusal = message
            default: break
            }
        }
        try sim.startCoordinator()
        for (m, model) in models.enumerated() {
            sim.addWorker(name: "w\(m)", model: model.name, slots: slots ?? Limits.maxSlots, seed: deriveSeed(seed, UInt64(m)))
        }
        sim.send(.submit(SubmitRequest(yaml: PoolWorkflow.yaml(dag, timeScale: 1), file: PoolWorkflow.name(dag) + ".yaml", budgetUSD: budgetUSD,
                                       deadline: deadline, planner: spec, seed: seed & UInt64(Int64.max))), from: [Data("job".utf8)])
        let start = sim.now
        while true {
            sim.time.advance(to: sim.nextEventTime(horizon: .seconds(5)))
            try sim.runDue()
            if let refusal { throw BenchmarkFailure(description: "the coordinator refused the job: \(refusal)") }
            if job != nil, let shell = sim.shell, shell.core.jobSnapshots.allSatisfy({ $0.state.isTerminal && $0.reserved == .zero }) { break }
            if sim.now - start > .clampedSeconds(deadline + 3_600) { throw BenchmarkFailure(description: "the job was still open an hour past its deadline") }
        }
        let row = try sim.store.connection.query("SELECT state, spent_usd_nano, ended_at - submitted_at FROM jobs WHERE id = ?", job!).first
        let completed = try sim.store.connection.query("SELECT COUNT(*) FROM subtasks WHERE job = ? AND state = 'succeeded'", job!).first?.int(0) ?? 0
        return Run(planner: plannerName, success: row?.string(0) == JobState.succeeded.rawValue, completed: completed,
                   spentUSD: Double(row?.int(1) ?? 0) / 1e9, makespan: row?.double(2) ?? 0, decisionMillis: millis)
    }

    /// Every (size, trial, planner) of the settings; the report as the command prints it.
    public static func run(pool: [PoolDAG], settings: Settings, csv: Bool, progress: ((String) -> Void)? = nil) throws -> String {
        var lines: [String] = []
        if csv { lines.append("nodes,planner,runs,success,completed,spent_fraction,makespan_fraction,decisions,p50_ms,p99_ms,max_ms") }
        else {
            lines.append("nodes  planner     runs  success  completed  spent/budget  makespan/deadline  decisions/run  p50 ms  p99 ms  max ms")
        }
        for n in settings.sizes {
            var rows: [String: (runs: [Run], budget: [Double], deadline: [Double])] = [:]
            for t in 0..<settings.trials {
                let dagSeed = deriveSeed(settings.seed, UInt64(n) << 20 | UInt64(t))
                let dag = syntheticDAG(nodes: n, pool: pool, seed: dagSeed)
                let budget = settings.budgetRatio * dag.nominalBudgetUSD
                let deadline = settings.deadlineRatio * dag.nominalDeadlineSeconds
                for name in settings.planners {
                    let started = Date()
                    let r = try run(dag: dag, planner: name, makePlanner: settings.makePlanner, budgetUSD: budget, deadline: deadline,
                                    slots: settings.slots, seed: deriveSeed(dagSeed, 1))
                    progress?(String(format: "%d nodes, DAG %d, %@ (job planner %@): %@, %d/%d nodes, spent %.3f of budget, %d decisions, %.1f s",
                                     n, t, name, r.planner, r.success ? "succeeded" : "failed", r.completed, n, r.spentUSD / budget,
                                     r.decisionMillis.count, Date().timeIntervalSince(started)))
                    rows[name, default: ([], [], [])].runs.append(r)
                    rows[name]!.budget.append(budget)
                    rows[name]!.deadline.append(deadline)
                }
            }
            for name in settings.planners {
                guard let row = rows[name] else { continue }
                let runs = row.runs
                let count = Double(runs.count)
                let success = Double(runs.filter(\.success).count) / count
                let completed = runs.reduce(0) { $0 + Double($1.completed) / Double(n) } / count
                let spent = zip(runs, row.budget).reduce(0) { $0 + $1.0.spentUSD / $1.1 } / count
                let makespan = zip(runs, row.deadline).reduce(0) { $0 + min($1.0.makespan, $1.1) / $1.1 } / count
                let millis = runs.flatMap(\.decisionMillis).sorted()
                let decisions = Double(millis.count) / count
                func quantile(_ q: Double) -> Double {
                    millis.isEmpty ? 0 : millis[min(millis.count - 1, max(0, Int((q * Double(millis.count)).rounded(.up)) - 1))]
                }
                let label = runs.first?.planner ?? name
                if csv {
                    lines.append([String(n), label, String(runs.count), f(success, 3), f(completed, 3), f(spent, 3), f(makespan, 3),
                                  f(decisions, 1), f(quantile(0.5), 2), f(quantile(0.99), 2), f(millis.last ?? 0, 2)].joined(separator: ","))
                } else {
                    lines.append(pad(String(n), 5) + "  " + label.padding(toLength: 10, withPad: " ", startingAt: 0)
                        + pad(String(runs.count), 6) + pad(f(success, 3), 9) + pad(f(completed, 3), 11) + pad(f(spent, 3), 14)
                        + pad(f(makespan, 3), 19) + pad(f(decisions, 1), 15) + pad(f(quantile(0.5), 2), 8)
                        + pad(f(quantile(0.99), 2), 8) + pad(f(millis.last ?? 0, 2), 8))
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
