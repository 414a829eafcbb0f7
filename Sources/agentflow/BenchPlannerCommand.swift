import ArgumentParser
import Foundation
import Planner
import Benchmarks

/// `agentflow bench planner`: the reference planner experiment on a DAG pool (docs/benchmarks.md).
struct BenchPlannerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "planner",
        abstract: "Constrained completion probability, ms per decision and rollouts/s of MCPP and the baselines on a DAG pool.")

    @OptionGroup var source: PoolOptions

    @Option(help: "Budget ratios β (budget = β × nominal budget).")
    var budgetRatios = "0.5,1,2"

    @Option(help: "Deadline ratios δ (deadline = δ × nominal deadline).")
    var deadlineRatios = "0.5,1,2"

    @Option(help: "Policies: mcpp, baselines, seqK, uniform, random, latency_weighted, success_rate_weighted, critical_path_static, each optionally @MODEL.")
    var policies = "mcpp,seq1,seq4,uniform,critical_path_static,success_rate_weighted"

    @Option(help: "Trials per (DAG, cell, policy).")
    var trials = 20

    @Option(help: "Base seed (the reference's is 42).")
    var seed: UInt64 = 42

    @Flag(help: "Print one JSON array.")
    var json = false

    @Flag(help: "Print CSV: policy,budget_ratio,deadline_ratio,n_runs,success,ci_low,ci_high,mean_cost,mean_makespan,decisions,ms_per_decision,rollouts_per_s.")
    var csv = false

    @Option(help: "reference (the reference simulator's rules) or live (the coordinator's: reserve the worst case, never launch what does not fit).")
    var semantics = "reference"

    @Option(help: "MCPP simulations per (action, continuation) pair (M).")
    var simulations = 64

    @Flag(help: "Successive halving: screen every pair with M/8 simulations, then ×4 for the best quarter, racing the last round at 2M.")
    var adaptive = false

    @Flag(help: "Independent random streams per pair (no common random numbers).")
    var noCrn = false

    @Flag(help: "MCPP also tries every one-node change of its best action (coordinate ascent beyond the reference's candidates).")
    var localSearch = false

    @Flag(help: "Simulate every pair fully instead of stopping pairs that can no longer win (same decisions, slower).")
    var noPruning = false

    @Flag(help: "The reference's MCPP settings: M = 8, no successive halving, no common random numbers (overrides --simulations, --adaptive, --no-crn).")
    var referenceSettings = false

    @Flag(help: "Stop a batch's other attempts once one passes.")
    var cancelSiblings = false

    @Flag(help: "MCPP samples the remaining time of running attempts instead of being told it.")
    var sampleInflight = false

    @Option(help: "Pre-drawn batch outcomes per (node, model, k > 1); 0 = draw every attempt.")
    var tableSize = 1024

    @Option(help: "Threads MCPP simulates on.")
    var threads = 2

    @Option(help: "Live semantics: attempts of each model that may run at once (default unlimited). Applies to MCPP only.")
    var slots: Int?

    @Flag(help: "With --slots: MCPP plans as if capacity were unlimited (only the executor enforces the slots).")
    var slotBlindPlanner = false

    func validate() throws {
        guard trials >= 1 else { throw ValidationError("--trials must be at least 1") }
        guard simulations >= 1 else { throw ValidationError("--simulations must be at least 1") }
        guard Semantics(rawValue: semantics) != nil else { throw ValidationError("--semantics must be 'reference' or 'live'") }
        guard !(json && csv) else { throw ValidationError("choose one of --json and --csv") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard tableSize >= 0 else { throw ValidationError("--table-size must be ≥ 0") }
        if let slots, slots < 1 { throw ValidationError("--slots must be at least 1") }
        _ = try ratios(budgetRatios, "--budget-ratios")
        _ = try ratios(deadlineRatios, "--deadline-ratios")
    }

    func ratios(_ text: String, _ flag: String) throws -> [Double] {
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("\(flag) must be a comma-separated list of positive numbers, got '\(text)'")
        }
        return values.map { $0! }
    }


    func run() throws {
        let chosen = try source.selected()
        var settings = BenchSettings()
        settings.budgetRatios = try ratios(budgetRatios, "--budget-ratios")
        settings.deadlineRatios = try ratios(deadlineRatios, "--deadline-ratios")
        settings.trials = trials
        settings.seed = seed
        settings.semantics = Semantics(rawValue: semantics)!
        settings.cancelSiblings = cancelSiblings
        settings.tableSize = tableSize
        settings.slotsPerModel = slots
        settings.plannerSeesSlots = !slotBlindPlanner
        var config = referenceSettings ? MCPPConfig.reference
            : MCPPConfig(simulations: simulations, commonRandomNumbers: !noCrn, adaptive: adaptive)
        config.threads = threads
        config.pruning = !noPruning
        config.localSearch = localSearch
        config.rollout.sampleInFlight = sampleInflight
        settings.mcpp = config
        let models = chosen.first?.modelIDs ?? []
        let policyList: [BenchPolicy]
        do { policyList = try BenchPolicy.parse(policies, models: models) } catch { throw ValidationError("--policies: \(error)") }

        let started = Date()
        let results = PlannerBenchmark.run(dags: chosen, policies: policyList, settings: settings) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        FileHandle.standardError.write(Data(String(format: "total %.1f s\n", Date().timeIntervalSince(started)).utf8))
        print(render(results))
    }

    func render(_ rows: [CellSummary]) -> String {
        if csv {
            var lines = ["policy,budget_ratio,deadline_ratio,n_runs,success,ci_low,ci_high,mean_cost,mean_makespan,decisions,ms_per_decision,rollouts_per_s"]
            for r in rows {
                lines.append([r.policy, fmt(r.budgetRatio), fmt(r.deadlineRatio), String(r.runs), fmt(r.success), fmt(r.ciLow),
                              fmt(r.ciHigh), fmt(r.meanCost), fmt(r.meanMakespan), fmt(r.decisions), fmt(r.msPerDecision),
                              fmt(r.rolloutsPerSecond)].joined(separator: ","))
            }
            return lines.joined(separator: "\n")
        }
        if json {
            let objects = rows.map { r -> String in
                "{\"policy\":\"\(r.policy)\",\"budget_ratio\":\(fmt(r.budgetRatio)),\"deadline_ratio\":\(fmt(r.deadlineRatio)),"
                    + "\"n_runs\":\(r.runs),\"success\":\(fmt(r.success)),\"ci_low\":\(fmt(r.ciLow)),\"ci_high\":\(fmt(r.ciHigh)),"
                    + "\"mean_cost\":\(fmt(r.meanCost)),\"mean_makespan\":\(fmt(r.meanMakespan)),\"decisions\":\(fmt(r.decisions)),"
                    + "\"ms_per_decision\":\(fmt(r.msPerDecision)),\"rollouts_per_s\":\(fmt(r.rolloutsPerSecond)),"
                    + "\"max_ms_per_decision\":\(fmt(r.maxMsPerDecision))}"
            }
            return "[" + objects.joined(separator: ",") + "]"
        }
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
        }
        var lines = ["policy".padding(toLength: 34, withPad: " ", startingAt: 0)
            + pad("β", 5) + pad("δ", 5) + pad("runs", 6) + pad("success", 9) + pad("95% CI (DAGs)", 18) + pad("mean cost", 11)
            + pad("makespan", 10) + pad("decisions", 10) + pad("ms/decision", 12) + pad("max ms", 9) + pad("rollouts/s", 12)]
        for r in rows {
            lines.append(r.policy.padding(toLength: 34, withPad: " ", startingAt: 0)
                + pad(fmt(r.budgetRatio), 5) + pad(fmt(r.deadlineRatio), 5) + pad(String(r.runs), 6)
                + pad(String(format: "%.3f", r.success), 9) + pad(String(format: "[%.3f, %.3f]", r.ciLow, r.ciHigh), 18)
                + pad(String(format: "%.5f", r.meanCost), 11) + pad(String(format: "%.1f", r.meanMakespan), 10)
                + pad(String(format: "%.1f", r.decisions), 10) + pad(String(format: "%.4f", r.msPerDecision), 12)
                + pad(String(format: "%.2f", r.maxMsPerDecision), 9) + pad(String(format: "%.0f", r.rolloutsPerSecond), 12))
        }
        return lines.joined(separator: "\n")
    }

    func fmt(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
        return String(format: "%.6g", x)
    }
}
