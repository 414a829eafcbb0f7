import ArgumentParser
import Benchmarks
import Foundation
import Logging
import Planner

/// `agentflow bench fleet`: many budgeted jobs on a shared fleet, in virtual time, run by the
/// real coordinator through the simulator (``Benchmarks/FleetBenchmark``, docs/benchmarks.md).
struct BenchFleetCommand: ParsableCommand, LoggingCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Goodput of the coordinator's cross-job policies under open-loop Poisson arrivals of pool DAGs (the real coordinator, simulated fleet and time).")

    @OptionGroup var source: PoolOptions

    @Option(help: "Loads ρ = arrival rate × mean slot-seconds per job (seq:1, reference model) ÷ the fleet's slots.")
    var loads = "0.7,1,1.5"

    @Option(help: "Policies: fifo, edf, fleet, each optionally :nofair, :noaging, :admitP, :preempt, :preemptG (least net gain G), :nopreempt, :firstfree (first worker with a free slot, not the least loaded), :holdP (the fleet policy holds back new jobs whose outlook after the queue is below P), :blind (jobs plan blind: a baseline) joined by '+'.")
    var policies = "fifo,edf,fleet"

    @Option(help: "Jobs per (policy, load).")
    var jobs = 200

    @Option(help: "Worker slots serving each of the pool's models.")
    var slots = 4

    @Option(help: "Workers (GPUs) each model's slots are spread over, evenly (--slots must be a multiple).")
    var gpus = 1

    @Option(help: "How an attempt's latency grows with the attempts on its GPU: 'llama.cpp' (measured, docs/benchmarks.md), K=F pairs like 1=1,2=1.3,4=2.1,8=4, or 'off'.")
    var gpuSharing = "off"

    @Option(help: "Tenants the jobs are spread over, round robin (t0, t1, …).")
    var tenants = 1

    @Option(help: "Tenant weights, like t0=2,t1=1 (default 1 each).")
    var weights = ""

    @Option(help: "Base seed.")
    var seed: UInt64 = 1

    @Option(help: "The jobs' planner: mcpp or seq:K.")
    var planner = "mcpp"

    @Option(help: "MCPP simulations per (action, continuation) pair (M).")
    var simulations = 16

    @Option(help: "MCPP's pre-drawn batch outcomes per (node, model, k > 1), rebuilt at every decision.")
    var tableSize = 32

    @Option(help: "Attempt outcomes: 'rows' (a calibration row of the pair) or 'backend' (the sim worker backend's draw around the rows' means).")
    var draws = "rows"

    @Option(help: "(policy, load) runs simulated at once.")
    var threads = 2

    @Flag(help: "Print CSV: policy,load,jobs,goodput,ci_low,ci_high,mean_latency,p99_latency,spent_fraction,jain.")
    var csv = false

    @Flag(help: "Print one JSON array.")
    var json = false

    @OptionGroup var logging: LogOptions
    /// The coordinator's own log lines would drown the table; `--log-level info` shows them.
    var defaultLogLevel: Logger.Level { .critical }

    func validate() throws {
        guard !(json && csv) else { throw ValidationError("choose one of --json and --csv") }
        guard jobs >= 1 && jobs <= 1_000_000 else { throw ValidationError("--jobs must be between 1 and 1000000") }
        guard slots >= 1 && slots <= 100_000 else { throw ValidationError("--slots must be between 1 and 100000") }
        guard gpus >= 1 && gpus <= slots && slots % gpus == 0 else {
            throw ValidationError("--gpus must be from 1 to --slots and divide it (\(slots) slots), got \(gpus)")
        }
        _ = try sharing()
        guard tenants >= 1 && tenants <= 10_000 else { throw ValidationError("--tenants must be between 1 and 10000") }
        guard simulations >= 1 && simulations <= 4096 else { throw ValidationError("--simulations must be between 1 and 4096") }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard tableSize >= 0 && tableSize <= 4096 else { throw ValidationError("--table-size must be between 0 and 4096") }
        guard draws == "rows" || draws == "backend" else { throw ValidationError("--draws must be rows or backend, got '\(draws.prefix(64))'") }
        _ = try loadList()
        _ = try variants()
        _ = try weightTable()
        if planner != "mcpp" {
            do { _ = try makeLivePlanner(planner, seed: 0) } catch { throw ValidationError("--planner: \(error)") }
        }
    }

    func loadList() throws -> [Double] {
        let values = loads.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ v in v.map { $0 > 0 && $0 <= 100 } ?? false }) else {
            throw ValidationError("--loads must be a comma-separated list of numbers in (0, 100], got '\(loads)'")
        }
        return values.map { $0! }
    }

    func variants() throws -> [FleetVariant] {
        do {
            return try policies.split(separator: ",").map { try FleetVariant.parse($0.trimmingCharacters(in: .whitespaces)) }
        } catch {
            throw ValidationError("--policies: \(error)")
        }
    }

    func sharing() throws -> GPUSharing? {
        guard gpuSharing != "off" else { return nil }
        do { return try GPUSharing.parse(gpuSharing) } catch { throw ValidationError("--gpu-sharing: \(error)") }
    }

    func weightTable() throws -> [String: Double] {
        var out: [String: Double] = [:]
        for part in weights.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[0].isEmpty, let w = Double(kv[1]), w.isFinite, w > 0 else {
                throw ValidationError("--weights: expected TENANT=W with W > 0, got '\(part)'")
            }
            out[kv[0]] = w
        }
        return out
    }

    func run() throws {
        // Dictionary order must not differ between runs, or the same seed would not give the same table.
        try reexecWithDeterministicHashing()
        let chosen = try source.selected()
        var settings = FleetBenchSettings()
        settings.loads = try loadList()
        settings.variants = try variants()
        settings.jobs = jobs
        settings.slotsPerModel = slots
        settings.gpusPerModel = gpus
        settings.gpuSharing = try sharing()
        settings.tenants = tenants
        settings.tenantWeights = try weightTable()
        settings.seed = seed
        settings.planner = planner
        settings.simulations = simulations
        settings.threads = threads
        settings.tableSize = tableSize
        settings.drawLikeSimBackend = draws == "backend"
        let started = Date()
        let results: [FleetRow]
        do {
            results = try FleetBenchmark.run(dags: chosen, settings: settings) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        } catch {
            throw CLIError(code: 1, message: "bench fleet: \(error)")
        }
        FileHandle.standardError.write(Data(String(format: "total %.1f s\n", Date().timeIntervalSince(started)).utf8))
        print(csv ? FleetBenchmark.csv(results) : json ? FleetBenchmark.json(results) : FleetBenchmark.table(results))
    }
}
