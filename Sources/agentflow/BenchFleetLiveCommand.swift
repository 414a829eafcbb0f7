import AgentFlowCore
import ArgumentParser
import Foundation
import Planner
import Benchmarks
import Wire
import ZeroMQ

/// `agentflow bench fleet-live`: one load point of `bench fleet` run for real — a real
/// coordinator process and one real `sim` worker process per pool model, the pool DAGs as
/// workflows, the same Poisson arrivals submitted through the client socket — and the
/// virtual-time simulation of exactly those arrivals beside it (docs/benchmarks.md).
struct BenchFleetLiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-live",
        abstract: "One load point of `bench fleet` through real coordinator and sim worker processes, beside its simulation.")

    @OptionGroup var source: PoolOptions

    @Option(help: "The load ρ (as in bench fleet).")
    var load = 1.0

    @Option(help: "Policies, each run live on a fresh coordinator: fifo, edf, fleet.")
    var policies = "fleet"

    @Option(help: "Jobs per policy.")
    var jobs = 40

    @Option(help: "Worker slots serving each of the pool's models (one worker process per model).")
    var slots = 4

    @Option(help: "Tenants the jobs are spread over, round robin (t0, t1, …).")
    var tenants = 1

    @Option(help: "Budget ratios β the jobs draw from (× the DAG's nominal budget).")
    var budgetRatios = "0.5,1,2"

    @Option(help: "Deadline ratios δ the jobs draw from (× the DAG's nominal deadline).")
    var deadlineRatios = "0.5,1,2"

    @Option(help: "Base seed (the arrivals are bench fleet's for this seed and load).")
    var seed: UInt64 = 1

    @Option(help: "The jobs' planner: mcpp or seq:K.")
    var planner = "mcpp"

    @Option(help: "Real seconds per pool second: latencies, deadlines, arrivals and aging are multiplied by it.")
    var timeScale = 0.25

    @Option(help: "The simulation's MCPP simulations per pair (default: the coordinator's M).")
    var simulations = MCPPPlanner.defaultConfig.simulations

    @Option(help: "The simulation's MCPP pre-drawn outcomes per (node, model, k) (default: the coordinator's).")
    var tableSize = MCPPPlanner().tableSize

    @Option(help: "Keep the cluster file, workflows, database and logs in this folder (default: a temporary one, removed).")
    var keep: String?

    @Flag(help: "Print CSV: policy,load,jobs,goodput,ci_low,ci_high,mean_latency,p99_latency,spent_fraction,jain (policy@live, policy@sim, policy@sim-draws).")
    var csv = false

    @Flag(help: "Print one JSON array.")
    var json = false

    func validate() throws {
        guard !(json && csv) else { throw ValidationError("choose one of --json and --csv") }
        guard load.isFinite && load > 0 && load <= 100 else { throw ValidationError("--load must be in (0, 100], got \(load)") }
        guard jobs >= 1 && jobs <= 10_000 else { throw ValidationError("--jobs must be between 1 and 10000") }
        guard slots >= 1 && slots <= 256 else { throw ValidationError("--slots must be between 1 and 256") }
        guard tenants >= 1 && tenants <= 100 else { throw ValidationError("--tenants must be between 1 and 100") }
        guard timeScale.isFinite && timeScale >= 0.001 && timeScale <= 100 else {
            throw ValidationError("--time-scale must be between 0.001 and 100, got \(timeScale)")
        }
        guard simulations >= 1 && simulations <= 4096 else { throw ValidationError("--simulations must be between 1 and 4096") }
        guard tableSize >= 0 && tableSize <= 4096 else { throw ValidationError("--table-size must be between 0 and 4096") }
        _ = try kinds()
        _ = try ratios(budgetRatios, "--budget-ratios")
        _ = try ratios(deadlineRatios, "--deadline-ratios")
        if planner != "mcpp" {
            do { _ = try makeLivePlanner(planner, seed: 0) } catch { throw ValidationError("--planner: \(error)") }
        }
    }

    func ratios(_ text: String, _ flag: String) throws -> [Double] {
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.count <= 100, values.allSatisfy({ v in v.map { $0 > 0 && $0 <= 1000 } ?? false }) else {
            throw ValidationError("\(flag) must be a comma-separated list of numbers in (0, 1000], got '\(text.prefix(64))'")
        }
        return values.map { $0! }
    }

    func kinds() throws -> [FleetPolicyKind] {
        let list = policies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !list.isEmpty else { throw ValidationError("--policies is empty") }
        return try list.map { p in
            guard let k = FleetPolicyKind(rawValue: p) else { throw ValidationError("--policies: unknown policy '\(p)' (fifo, edf or fleet)") }
            return k
        }
    }

    func run() throws {
        let chosen = try source.selected()
        guard Set(chosen.map(\.modelIDs)).count == 1 else { throw ValidationError("--dags: the rows do not share one model list") }
        // Model ids become model and worker names in the cluster file.
        for m in chosen[0].modelIDs {
            if let problem = Limits.name(m, "a model id of \(source.pool)") { throw ValidationError(problem) }
        }
        guard Set(chosen[0].modelIDs).count == chosen[0].modelIDs.count else { throw ValidationError("\(source.pool): a model id is repeated") }

        var settings = FleetBenchSettings()
        settings.loads = [load]
        settings.jobs = jobs
        settings.slotsPerModel = slots
        settings.tenants = tenants
        settings.seed = seed
        settings.planner = planner
        settings.simulations = simulations
        settings.tableSize = tableSize
        settings.threads = 1
        settings.budgetRatios = try ratios(budgetRatios, "--budget-ratios")
        settings.deadlineRatios = try ratios(deadlineRatios, "--deadline-ratios")
        let specs = FleetBenchmark.jobs(dags: chosen, load: load, settings: settings)

        let stop = StopSignal()
        let signals = onTerminationSignals(stop)
        defer { _ = signals }
        var results: [LivePoint] = []
        let list = try kinds()
        for kind in list {
            let folder = keep.map { list.count > 1 ? "\($0)/\(kind.rawValue)" : $0 }
            let runner = try LiveFleet(dags: chosen, specs: specs, kind: kind, settings: settings, timeScale: timeScale,
                                       keep: folder, stop: stop)
            let live = try runner.run()
            // The coordinator plans contention-aware under every policy: simulate it so (`fifo:aware`, `edf:aware`).
            let variant = FleetVariant(kind: kind, contentionAware: true)
            printError("simulating \(variant.name) on the same \(specs.count) arrivals")
            let sim = FleetSimulator(dags: chosen, variant: variant, settings: settings).run(specs, load: load)
            // The same simulation with the sim worker backend's draws instead of the pool's rows:
            // what is left between it and the live run is the real system, not the outcome model.
            var backendDraws = settings
            backendDraws.drawLikeSimBackend = true
            let draws = FleetSimulator(dags: chosen, variant: variant, settings: backendDraws).run(specs, load: load)
            results.append(LivePoint(kind: kind, live: live, sim: sim, simDraws: draws))
        }
        print(render(results))
        if csv || json {
            for p in results { printError("\(p.kind.rawValue): " + summary(p)) }
        }
    }

    func summary(_ p: LivePoint) -> String {
        let states = p.live.states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let (d, dl, dh) = p.difference(p.sim), (e, el, eh) = p.difference(p.simDraws)
        return String(format: "live: %@; %d attempts; submissions at most %.3f s late; %.0f s wall. Same fate live and simulated: %.0f%% of jobs (sim-draws: %.0f%%). "
                        + "Goodput live − sim %+.3f [%+.3f, %+.3f], live − sim-draws %+.3f [%+.3f, %+.3f] (95%% paired bootstrap)",
                      states, p.live.attempts, p.live.maxSubmitLag, p.live.wallSeconds, 100 * p.sameOutcome(p.sim), 100 * p.sameOutcome(p.simDraws),
                      d, dl, dh, e, el, eh)
    }

    struct LivePoint {
        var kind: FleetPolicyKind
        var live: LiveFleet.Outcome
        var sim: FleetRow
        /// Simulated with the sim backend's draws (``FleetBenchSettings/drawLikeSimBackend``).
        var simDraws: FleetRow
        /// Live goodput − `row`'s, with a 95% paired bootstrap over jobs (1000 resamples, seed 0).
        func difference(_ row: FleetRow) -> (value: Double, low: Double, high: Double) {
            let a = live.row.outcomes.map { $0 ? 1.0 : 0 }, b = row.outcomes.map { $0 ? 1.0 : 0 }
            let n = min(a.count, b.count)
            guard n > 0 else { return (0, 0, 0) }
            var rng = SplitMix64(seed: 0)
            var diffs: [Double] = []
            for _ in 0..<1000 {
                var d = 0.0
                for _ in 0..<n {
                    let i = rng.below(n)
                    d += a[i] - b[i]
                }
                diffs.append(d / Double(n))
            }
            diffs.sort()
            let value = (0..<n).reduce(0.0) { $0 + a[$1] - b[$1] } / Double(n)
            return (value, diffs[24], diffs[975])
        }

        /// Jobs whose outcome (succeeded or not) is the same live and in `row`.
        func sameOutcome(_ row: FleetRow) -> Double {
            let pairs = zip(live.row.outcomes, row.outcomes)
            return Double(pairs.filter { $0 == $1 }.count) / Double(max(row.outcomes.count, 1))
        }
    }

    func render(_ points: [LivePoint]) -> String {
        func csvLine(_ name: String, _ r: FleetRow) -> String {
            [name, fmt(r.load), String(r.jobs), fmt(r.goodput), fmt(r.ciLow), fmt(r.ciHigh), fmt(r.meanLatency), fmt(r.p99Latency),
             fmt(r.spentFraction), fmt(r.jain)].joined(separator: ",")
        }
        if csv {
            var lines = ["policy,load,jobs,goodput,ci_low,ci_high,mean_latency,p99_latency,spent_fraction,jain"]
            for p in points {
                lines.append(csvLine(p.kind.rawValue + "@live", p.live.row))
                lines.append(csvLine(p.kind.rawValue + "@sim", p.sim))
                lines.append(csvLine(p.kind.rawValue + "@sim-draws", p.simDraws))
            }
            return lines.joined(separator: "\n")
        }
        if json {
            func object(_ mode: String, _ r: FleetRow, extra: String) -> String {
                "{\"policy\":\"\(r.policy)\",\"mode\":\"\(mode)\",\"load\":\(fmt(r.load)),\"jobs\":\(r.jobs),\"goodput\":\(fmt(r.goodput)),"
                    + "\"ci_low\":\(fmt(r.ciLow)),\"ci_high\":\(fmt(r.ciHigh)),\"mean_latency\":\(fmt(r.meanLatency)),"
                    + "\"p99_latency\":\(fmt(r.p99Latency)),\"spent_fraction\":\(fmt(r.spentFraction)),\"jain\":\(fmt(r.jain))\(extra)}"
            }
            var objects: [String] = []
            for p in points {
                let states = p.live.states.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
                objects.append(object("live", p.live.row, extra: ",\"states\":{\(states)},\"attempts\":\(p.live.attempts),"
                    + "\"max_submit_lag\":\(fmt(p.live.maxSubmitLag)),\"max_overspend\":\(fmt(p.live.maxOverspend)),"
                    + "\"wall_seconds\":\(fmt(p.live.wallSeconds)),\"same_outcome\":\(fmt(p.sameOutcome(p.sim))),"
                    + "\"same_outcome_draws\":\(fmt(p.sameOutcome(p.simDraws))),"
                    + "\"minus_sim\":\(interval(p.difference(p.sim))),\"minus_sim_draws\":\(interval(p.difference(p.simDraws)))"))
                for (mode, r) in [("sim", p.sim), ("sim-draws", p.simDraws)] {
                    objects.append(object(mode, r, extra: ",\"ended_busy\":\(r.endedBusy),\"ms_per_decision\":\(fmt(r.msPerDecision))"))
                }
            }
            return "[" + objects.joined(separator: ",") + "]"
        }
        var lines = ["policy  mode        load  jobs  goodput           95% CI  mean lat   p99 lat  spent   jain"]
        for p in points {
            for (mode, r) in [("live", p.live.row), ("sim", p.sim), ("sim-draws", p.simDraws)] {
                lines.append(p.kind.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0) + mode.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%5.2f %5d %8.3f %16@ %9.1f %9.1f %6.2f %6.3f", r.load, r.jobs, r.goodput,
                             String(format: "[%.3f, %.3f]", r.ciLow, r.ciHigh), r.meanLatency, r.p99Latency, r.spentFraction, r.jain))
            }
            lines.append("  " + summary(p))
        }
        return lines.joined(separator: "\n")
    }

    func fmt(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
        return String(format: "%.6g", x)
    }

    /// `[value, low, high]` of a goodput difference, for the JSON output.
    func interval(_ d: (value: Double, low: Double, high: Double)) -> String {
        "[\(fmt(d.value)),\(fmt(d.low)),\(fmt(d.high))]"
    }
}

/// One live run: a coordinator and one `sim` worker per model as child processes on free
/// loopback ports, a fresh SQLite file, the jobs submitted at their arrival times × the time
/// scale, then every job's report and attempts read back over the client socket.
final class LiveFleet {
    struct Outcome {
        var row: FleetRow
        var states: [String: Int]
        var attempts: Int
        /// Real seconds a submission went out after its scheduled time, at most.
        var maxSubmitLag: Double
        /// Largest spent − limit over jobs, USD (must be ≤ 0).
        var maxOverspend: Double
        var wallSeconds: Double
    }

    let dags: [PoolDAG]
    let specs: [FleetJobSpec]
    let kind: FleetPolicyKind
    let settings: FleetBenchSettings
    let timeScale: Double
    let dir: URL
    let removeDir: Bool
    let stop: StopSignal
    var children: [Process] = []

    init(dags: [PoolDAG], specs: [FleetJobSpec], kind: FleetPolicyKind, settings: FleetBenchSettings, timeScale: Double,
         keep: String?, stop: StopSignal) throws {
        self.dags = dags
        self.specs = specs
        self.kind = kind
        self.settings = settings
        self.timeScale = timeScale
        self.stop = stop
        if let keep {
            dir = URL(fileURLWithPath: keep)
            removeDir = false
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("agentflow.db").path) {
                throw CLIError.badInput("--keep \(keep): it already holds a database; give an empty or new folder")
            }
        } else {
            dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("agentflow-fleet-live-\(UUID().uuidString)")
            removeDir = true
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    deinit {
        stopChildren()
        if removeDir { try? FileManager.default.removeItem(at: dir) }
    }

    var models: [String] { dags[0].modelIDs }

    func workerName(_ model: String) -> String { "w-\(model)" }

    /// The cluster file: the pool's models at their reference prices, one sim worker per model
    /// (`--slots` each, timeScale 1: the workflows carry scaled seconds), the policy and its aging
    /// scaled like everything else.
    func clusterYAML(workersPort: Int, clientsPort: Int) -> String {
        var yaml = """
        coordinator:
          workers: tcp://127.0.0.1:\(workersPort)
          clients: tcp://127.0.0.1:\(clientsPort)
          database: \(dir.appendingPathComponent("agentflow.db").path)
          heartbeat: 1s
          liveness: 3
        models:

        """
        yaml += PoolWorkflow.clusterModels(dags[0])
        yaml += "workers:\n"
        for (i, m) in models.enumerated() {
            yaml += "  - {name: \(workerName(m)), gpus: [\(i)], model: \(m), slots: \(settings.slotsPerModel), backend: {kind: sim, timeScale: 1, seed: \(i + 1)}}\n"
        }
        yaml += "scheduling: {policy: \(kind.rawValue), aging: \(PoolWorkflow.number(max(settings.agingSeconds * timeScale, 0.001)))s}\n"
        return yaml
    }

    func spawn(_ args: [String], log: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.executable)
        p.arguments = args
        p.currentDirectoryURL = dir
        let path = dir.appendingPathComponent(log).path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        children.append(p)
    }

    static var executable: String {
        if let path = Bundle.main.executablePath { return path }
        return CommandLine.arguments[0]
    }

    func stopChildren() {
        // Workers first (they drain), then the coordinator (it commits and exits).
        for p in children.reversed() where p.isRunning { kill(p.processIdentifier, SIGTERM) }
        let end = Date().addingTimeInterval(10)
        while children.contains(where: \.isRunning) && Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        for p in children where p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        children.removeAll()
    }

    func checkStop() throws {
        if stop.isSet { throw CLIError(code: 130, message: "interrupted; logs in \(dir.path)") }
        for p in children where !p.isRunning {
            throw CLIError(code: 1, message: "a child process (\(p.arguments?.prefix(3).joined(separator: " ") ?? "")) exited with status \(p.terminationStatus); logs in \(dir.path)")
        }
    }

    func run() throws -> Outcome {
        let workersPort = freeLoopbackPort(), clientsPort = freeLoopbackPort()
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        try clusterYAML(workersPort: workersPort, clientsPort: clientsPort).write(toFile: clusterFile, atomically: true, encoding: .utf8)
        var workflows: [Int: (file: String, yaml: String)] = [:]
        for d in Set(specs.map(\.dag)).sorted() {
            let yaml = PoolWorkflow.yaml(dags[d], timeScale: timeScale)
            let file = dir.appendingPathComponent(PoolWorkflow.name(dags[d]) + ".yaml").path
            try yaml.write(toFile: file, atomically: true, encoding: .utf8)
            workflows[d] = (file, yaml)
        }
        defer { stopChildren() }
        try spawn(["coordinator", "--cluster", clusterFile, "--policy", kind.rawValue], log: "coordinator.log")
        for m in models { try spawn(["worker", "--name", workerName(m), "--cluster", clusterFile, "--drain-grace", "1s"], log: "\(workerName(m)).log") }
        let client = try CoordinatorClient(endpoint: "tcp://127.0.0.1:\(clientsPort)", context: ZMQContext())

        // Every worker registered.
        let ready = Date().addingTimeInterval(60)
        while true {
            try checkStop()
            if case .workers(let list)? = try? client.request(.workers, timeout: 2),
               list.filter({ $0.state == "alive" }).count == models.count { break }
            guard Date() < ready else { throw CLIError(code: 1, message: "the workers did not all register within 60 s; logs in \(dir.path)") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        printError("fleet-live \(kind.rawValue): \(specs.count) jobs over \(String(format: "%.0f", (specs.last?.arrival ?? 0) * timeScale)) s "
            + "on \(models.count) × \(settings.slotsPerModel) slots (time scale \(timeScale)); logs in \(dir.path)")

        // Submissions at the arrival times.
        let started = Date()
        var ids: [String] = []
        var lag = 0.0
        for spec in specs {
            let due = spec.arrival * timeScale
            while true {
                try checkStop()
                let wait = due - Date().timeIntervalSince(started)
                if wait <= 0 { break }
                Thread.sleep(forTimeInterval: min(wait, 0.2))
            }
            lag = max(lag, Date().timeIntervalSince(started) - due)
            let w = workflows[spec.dag]!
            let request = SubmitRequest(yaml: w.yaml, file: w.file, budgetUSD: spec.budgetUSD, deadline: spec.deadline * timeScale,
                                        planner: settings.planner, seed: spec.seed & UInt64(Int64.max), priority: spec.priority,
                                        tenant: spec.tenant)
            switch try client.request(.submit(request), timeout: 60) {
            case .submitted(let id): ids.append(id)
            case .error(_, let message): throw CLIError(code: 1, message: "submission \(ids.count + 1) refused: \(message)")
            default: throw CLIError(code: 1, message: "unexpected reply to a submission")
            }
        }

        // Every job ends by its deadline; then in-flight attempts settle what they used.
        let last = zip(specs, ids).map { ($0.0.arrival + $0.0.deadline) * timeScale }.max() ?? 0
        let giveUp = started.addingTimeInterval(last + 60)
        var reports: [String: JobReport] = [:]
        var pending = Set(ids)
        while !pending.isEmpty {
            try checkStop()
            for id in pending {
                let r = try client.job(.status(job: id))
                reports[id] = r
                if r.state.isTerminal && r.budget.reservedTokens == 0 && r.budget.reservedUSD == 0 { pending.remove(id) }
            }
            guard Date() < giveUp else {
                throw CLIError(code: 1, message: "\(pending.count) jobs had not ended 60 s after the last deadline; logs in \(dir.path)")
            }
            if !pending.isEmpty { Thread.sleep(forTimeInterval: 0.25) }
        }
        let wall = Date().timeIntervalSince(started)

        var jobs: [FleetLiveJob] = []
        var usage: [String: Double] = [:]
        var states: [String: Int] = [:]
        var attempts = 0
        var overspend = -Double.infinity
        for (spec, id) in zip(specs, ids) {
            let r = reports[id]!
            states[r.state.rawValue, default: 0] += 1
            let limit = r.budget.limitUSD ?? spec.budgetUSD
            overspend = max(overspend, r.budget.spentUSD - limit)
            let latency = (Self.time(r.endedAt) ?? 0) - (Self.time(r.submittedAt) ?? 0)
            jobs.append(FleetLiveJob(succeeded: r.state == .succeeded, latency: latency / timeScale,
                                     spentFraction: r.budget.spentUSD / max(limit, 1e-12)))
            guard case .attempts(let list) = try client.request(.attempts(job: id), timeout: 30) else {
                throw CLIError(code: 1, message: "unexpected reply to attempts \(id)")
            }
            attempts += list.count
            for a in list {
                guard let from = Self.time(a.dispatchedAt), let to = Self.time(a.endedAt) else { continue }
                usage[r.tenant ?? spec.tenant, default: 0] += max(0, to - from) / timeScale
            }
        }
        var weights = settings.tenantWeights
        for t in 0..<max(settings.tenants, 1) where weights["t\(t)"] == nil { weights["t\(t)"] = 1 }
        let row = FleetBenchmark.liveRow(policy: kind.rawValue, load: settings.loads.first ?? 0, jobs: jobs, usage: usage, weights: weights)
        return Outcome(row: row, states: states, attempts: attempts, maxSubmitLag: lag, maxOverspend: overspend, wallSeconds: wall)
    }

    static func time(_ iso: String?) -> Double? {
        guard let iso else { return nil }
        return (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(iso))?.timeIntervalSince1970
    }
}
