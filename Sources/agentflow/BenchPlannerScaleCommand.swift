import ArgumentParser
import Foundation
import Planner
import Benchmarks

/// `agentflow bench planner-scale`: the coordinator's planners on large synthetic DAGs
/// (docs/benchmarks.md): decision latency per DAG size, and success and cost against `seq:1`.
struct BenchPlannerScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planner-scale",
        abstract: "MCPP decision latency (p50/p99/max) and success vs seq:1 on layered random DAGs of the given sizes, rows drawn from a pool.")

    @Option(help: "The pool JSONL file whose nodes' calibration rows the synthetic DAGs copy.")
    var pool: String

    @Option(help: "DAG sizes (nodes), comma-separated.")
    var nodes = "50,200,500"

    @Option(help: "Synthetic DAGs (one job each) per size.")
    var trials = 4

    @Option(help: "Planners to compare, comma-separated: mcpp, seq:K, uniform.")
    var planners = "mcpp,seq:1"

    @Option(help: "Budget = ratio × the DAG's nominal budget.")
    var budgetRatio = 1.0

    @Option(help: "Deadline = ratio × the DAG's nominal deadline.")
    var deadlineRatio = 1.0

    @Option(help: "Worker slots per model (default: unlimited).")
    var slots: Int?

    @Option(help: "MCPP simulations per (action, continuation) pair (M; the coordinator's is 64).")
    var simulations = 64

    @Option(help: "MCPP's rolling window over 64 nodes (at most 64).")
    var window = MCPPPlanner().windowNodes

    @Option(help: "MCPP's pre-drawn batch outcomes per (node, model, k), rebuilt at every decision, for DAGs of up to 64 nodes (the coordinator's: 256).")
    var tableSize = MCPPPlanner().tableSize

    @Option(help: "The same on a rolling window, for DAGs over 64 nodes (the coordinator's: 64).")
    var windowTableSize = MCPPPlanner().windowTableSize

    @Option(help: "Candidate actions of a window decision (the coordinator's: 32).")
    var windowCandidates = MCPPPlanner().windowMaxCandidates

    @Option(help: "Simulations per pair of a window decision (default: --simulations).")
    var windowSimulations: Int?

    @Flag(help: "Window decisions screen pairs by successive halving instead of racing them.")
    var windowAdaptive = false

    @Option(help: "Threads MCPP simulates on (the coordinator's: 2).")
    var threads = 2

    @Option(help: "Base seed.")
    var seed: UInt64 = 1

    @Flag(help: "Print CSV: nodes,planner,runs,success,completed,spent_fraction,makespan_fraction,decisions,p50_ms,p99_ms,max_ms.")
    var csv = false

    func validate() throws {
        guard trials >= 1 && trials <= 10_000 else { throw ValidationError("--trials must be between 1 and 10000") }
        guard (1...64).contains(window) else { throw ValidationError("--window must be between 1 and 64") }
        guard simulations >= 1 && simulations <= 100_000 else { throw ValidationError("--simulations must be between 1 and 100000") }
        guard tableSize >= 0 && tableSize <= 1_000_000 && windowTableSize >= 0 && windowTableSize <= 1_000_000 else {
            throw ValidationError("--table-size and --window-table-size must be between 0 and 1000000")
        }
        guard windowCandidates >= 1 && windowCandidates <= 100_000 else { throw ValidationError("--window-candidates must be between 1 and 100000") }
        if let w = windowSimulations { guard w >= 1 && w <= 100_000 else { throw ValidationError("--window-simulations must be between 1 and 100000") } }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        if let slots { guard slots >= 1 && slots <= 100_000 else { throw ValidationError("--slots must be between 1 and 100000") } }
        guard budgetRatio.isFinite && budgetRatio > 0 && budgetRatio <= 1_000 else { throw ValidationError("--budget-ratio must be in (0, 1000]") }
        guard deadlineRatio.isFinite && deadlineRatio > 0 && deadlineRatio <= 1_000 else { throw ValidationError("--deadline-ratio must be in (0, 1000]") }
        _ = try sizes()
        for p in plannerNames() { _ = try makePlanner(p, seed: 0) }
    }

    func sizes() throws -> [Int] {
        let values = nodes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 20_000 }) else {
            throw ValidationError("--nodes must be a comma-separated list of sizes from 1 to 20000, got '\(nodes)'")
        }
        return values.map { $0! }
    }

    func plannerNames() -> [String] { planners.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func makePlanner(_ name: String, seed: UInt64) throws -> any LivePlanner {
        if name == "mcpp" {
            var config = MCPPPlanner.defaultConfig
            config.simulations = simulations
            config.threads = threads
            var planner = MCPPPlanner(seed: seed, config: config)
            planner.windowNodes = window
            planner.tableSize = tableSize
            planner.windowTableSize = windowTableSize
            planner.windowMaxCandidates = windowCandidates
            planner.windowSimulations = windowSimulations
            planner.windowAdaptive = windowAdaptive
            return planner
        }
        do { return try makeLivePlanner(name, seed: seed) } catch { throw ValidationError("--planners: \(error)") }
    }

    func run() throws {
        let poolDAGs = try PoolOptions.read(pool)
        guard !poolDAGs.isEmpty else { throw ValidationError("\(pool): no DAGs") }
        var lines: [String] = []
        if csv { lines.append("nodes,planner,runs,success,completed,spent_fraction,makespan_fraction,decisions,p50_ms,p99_ms,max_ms") }
        else {
            lines.append("nodes  planner     runs  success  completed  spent/budget  makespan/deadline  decisions/run  p50 ms  p99 ms  max ms")
        }
        for n in try sizes() {
            var rows: [String: (runs: [ScaleBenchmark.Run], budget: [Double], deadline: [Double])] = [:]
            for t in 0..<trials {
                let dagSeed = deriveSeed(seed, UInt64(n) << 20 | UInt64(t))
                let dag = ScaleBenchmark.syntheticDAG(nodes: n, pool: poolDAGs, seed: dagSeed)
                let (planNodes, book) = dag.planNodes()
                let budget = budgetRatio * dag.nominalBudgetUSD
                let deadline = deadlineRatio * dag.nominalDeadlineSeconds
                for name in plannerNames() {
                    let planner = try makePlanner(name, seed: deriveSeed(dagSeed, 1))
                    let started = Date()
                    let r = ScaleBenchmark.run(dag: dag, nodes: planNodes, book: book, planner: planner, budgetUSD: budget,
                                               deadline: deadline, slots: slots, seed: deriveSeed(dagSeed, 2))
                    FileHandle.standardError.write(Data(String(
                        format: "%d nodes, DAG %d, %@ (job planner %@): %@, %d/%d nodes, spent %.3f of budget, %d decisions, %.1f s\n",
                        n, t, name, r.planner, r.success ? "succeeded" : "failed", r.completed, n, r.spentUSD / budget,
                        r.decisionMillis.count, Date().timeIntervalSince(started)).utf8))
                    rows[name, default: ([], [], [])].runs.append(r)
                    rows[name]!.budget.append(budget)
                    rows[name]!.deadline.append(deadline)
                }
            }
            for name in plannerNames() {
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
        print(lines.joined(separator: "\n"))
    }

    func f(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

    func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }
}
