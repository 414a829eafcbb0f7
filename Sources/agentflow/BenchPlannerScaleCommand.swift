import ArgumentParser
import Benchmarks
import Foundation
import Logging
import Planner

/// `agentflow bench planner-scale`: the coordinator's planners on large synthetic DAGs, on the
/// real coordinator through the simulator (``Benchmarks/PlannerScaleBenchmark``,
/// docs/benchmarks.md): decision latency per DAG size, and success and cost against `seq:1`.
struct BenchPlannerScaleCommand: ParsableCommand, LoggingCommand {
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

    @OptionGroup var logging: LogOptions
    /// The coordinator's own log lines would drown the table; `--log-level info` shows them.
    var defaultLogLevel: Logger.Level { .critical }

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

    /// The jobs' planners: MCPP with this command's settings, or any `--planner` value.
    var plannerFactory: @Sendable (String, UInt64) throws -> any LivePlanner {
        let (simulations, threads, window, tableSize, windowTableSize) = (self.simulations, self.threads, self.window, self.tableSize, self.windowTableSize)
        let (windowCandidates, windowSimulations, windowAdaptive) = (self.windowCandidates, self.windowSimulations, self.windowAdaptive)
        return { name, seed in
            guard name == "mcpp" else { return try makeLivePlanner(name, seed: seed) }
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
    }

    func makePlanner(_ name: String, seed: UInt64) throws -> any LivePlanner {
        do { return try plannerFactory(name, seed) } catch { throw ValidationError("--planners: \(error)") }
    }

    func run() throws {
        let poolDAGs = try PoolOptions.read(pool)
        guard !poolDAGs.isEmpty else { throw ValidationError("\(pool): no DAGs") }
        var settings = PlannerScaleBenchmark.Settings()
        settings.sizes = try sizes()
        settings.trials = trials
        settings.planners = plannerNames()
        settings.budgetRatio = budgetRatio
        settings.deadlineRatio = deadlineRatio
        settings.slots = slots
        settings.seed = seed
        settings.makePlanner = plannerFactory
        do {
            print(try PlannerScaleBenchmark.run(pool: poolDAGs, settings: settings, csv: csv) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            })
        } catch let e as BenchmarkFailure {
            throw CLIError(code: 1, message: "bench planner-scale: \(e)")
        }
    }
}
