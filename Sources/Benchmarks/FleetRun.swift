import AgentFlowCore
import Coordinator
import Foundation
import Planner
import Simulation
import Store
import Wire
import Worker

/// One (policy, load) run of the fleet benchmark: the real coordinator through the simulator's
/// shell (``Simulation/SimulatedCluster``) under virtual time, one worker per pool model with
/// the run's slots, on the calibration rows (or the `sim` backend's draws). Each job arrives as a
/// submission of its pool row's workflow (``PoolWorkflow``) with its budget, deadline, tenant
/// and priority; the row is read back from the store when every job has ended.
final class FleetRun {
    let dags: [PoolDAG]
    let variant: FleetVariant
    let settings: FleetBenchSettings

    init(dags: [PoolDAG], variant: FleetVariant, settings: FleetBenchSettings) {
        self.dags = dags
        self.variant = variant
        self.settings = settings
    }

    var policy: FleetPolicy {
        var weights = settings.tenantWeights
        for t in 0..<max(settings.tenants, 1) where weights["t\(t)"] == nil { weights["t\(t)"] = 1 }
        var policy = FleetPolicy(kind: variant.kind, tenantWeights: weights, agingSeconds: variant.aging ? settings.agingSeconds : .infinity,
                                 fairShare: variant.fairShare)
        if let h = variant.admissionThreshold { policy.admissionThreshold = h }
        return policy
    }

    /// The coordinator serving the pool's models: each priced per 1M tokens at the pool's
    /// reference price on both axes, so an attempt costs tokens × price as in the pool.
    var cluster: Cluster {
        var spec = CoordinatorSpec()
        spec.database = ":memory:"
        // Nothing crashes here: heartbeats only pace the timers (a slow beat, fewer idle events).
        spec.heartbeat = .seconds(5)
        spec.liveness = 3
        // The product's default, pinned: the fleet table compares scheduling policies on slots,
        // with attempts of seconds, where prefetch (which hides the coordinator's millisecond
        // round trip between a slot's attempts) only commits attempts to workers one attempt
        // early — with it on, every policy's goodput falls (docs/benchmarks.md).
        spec.prefetch = 0
        let first = dags[0]
        let models = first.modelIDs.indices.map { m in
            ModelSpec(name: first.modelIDs[m], priceInput: first.price(ofModel: m), priceOutput: first.price(ofModel: m), context: 1_000_000)
        }
        return Cluster(coordinator: spec, models: models, workers: [])
    }

    var coreOptions: CoreOptions {
        let cluster = cluster
        var options = CoreOptions(cluster: cluster, idSeed: settings.seed)
        options.policy = policy
        options.placement = variant.placement
        options.plansBlind = variant.plansBlind
        if variant.preemption {
            var rules = settings.preemptionRules
            if let g = variant.preemptionMinGain { rules.minGain = g }
            options.preemption = rules
        }
        let simulations = settings.simulations, tableSize = settings.tableSize
        options.makePlanner = { spec, seed in
            guard spec == "mcpp" else { return try makeLivePlanner(spec, seed: seed) }
            var config = MCPPPlanner.defaultConfig
            config.simulations = simulations
            config.threads = 1
            var planner = MCPPPlanner(seed: seed, config: config)
            planner.tableSize = tableSize
            return planner
        }
        return options
    }

    func run(_ specs: [FleetJobSpec], load: Double) throws -> FleetRow {
        let cluster = cluster
        let options = coreOptions
        var priors: [String: EstimateBook] = [:]
        for d in Set(specs.map(\.dag)) { priors[PoolWorkflow.name(dags[d])] = dags[d].planNodes().1 }
        let drawLikeSimBackend = settings.drawLikeSimBackend
        let sharing = settings.gpuSharing
        let pool = dags
        let sim = try SimulatedCluster(cluster: cluster, seed: deriveSeed(settings.seed, load.bitPattern), priorBooks: priors,
                                       coreOptions: { _ in options },
                                       backend: { _, seed, clock in
                                           let inner = drawLikeSimBackend ? SimBackend(timeScale: 1, seed: seed, time: clock) as any AttemptBackend
                                               : CalibrationBackend(dags: pool, time: clock)
                                           // One backend per worker: each worker is one GPU.
                                           return sharing.map { SharedGPUBackend(inner, sharing: $0, time: clock) } ?? inner
                                       })
        var jobIDs: [Int: String] = [:]
        var refusals: [Int: String] = [:]
        sim.onReply = { route, reply in
            guard let r = route.first.flatMap({ Int(String(decoding: $0, as: UTF8.self).dropFirst(4)) }) else { return }
            switch reply {
            case .submitted(let job): jobIDs[r] = job
            case .error(_, let message): refusals[r] = message
            default: break
            }
        }
        try sim.startCoordinator()
        let gpus = max(1, settings.gpusPerModel)
        for (m, model) in cluster.models.enumerated() {
            for g in 0..<gpus {
                sim.addWorker(name: gpus == 1 ? "w\(m)" : "w\(m)g\(g)", model: model.name, slots: max(1, settings.slotsPerModel / gpus),
                              seed: deriveSeed(settings.seed, UInt64(m + 1_000 * g)))
            }
        }
        let yaml = Dictionary(Set(specs.map(\.dag)).map { ($0, PoolWorkflow.yaml(dags[$0], timeScale: 1)) }, uniquingKeysWith: { a, _ in a })
        let start = sim.now
        let lastDeadline = specs.map { $0.arrival + $0.deadline }.max() ?? 0
        var next = 0
        // Arrivals are seconds after the start; on the simulated clock they are instants.
        func arrival(_ i: Int) -> MonotonicInstant { start + .clampedSeconds(specs[i].arrival) }
        var checkedAt: MonotonicInstant?
        while true {
            let due = sim.nextEventTime(horizon: .seconds(5))
            sim.time.advance(to: next < specs.count ? min(due, arrival(next)) : due)
            while next < specs.count && arrival(next) <= sim.now {
                let s = specs[next]
                let request = SubmitRequest(yaml: yaml[s.dag]!, file: PoolWorkflow.name(dags[s.dag]) + ".yaml", budgetUSD: s.budgetUSD,
                                            deadline: s.deadline, planner: settings.planner, seed: s.seed & UInt64(Int64.max), priority: s.priority,
                                            minSuccess: variant.minSuccess, tenant: s.tenant)
                sim.send(.submit(request), from: [Data("job-\(next)".utf8)])
                next += 1
            }
            try sim.runDue()
            // Every job answered and ended, nothing reserved: the run is over (checked once a simulated second).
            if next == specs.count && jobIDs.count + refusals.count == specs.count && checkedAt.map({ sim.now - $0 >= .seconds(1) }) ?? true {
                checkedAt = sim.now
                if let shell = sim.shell, shell.core.jobSnapshots.allSatisfy({ $0.state.isTerminal && $0.reserved == .zero }) { break }
            }
            if sim.now - start > .clampedSeconds(lastDeadline + 3_600) {
                throw BenchmarkFailure(description: "\(variant.name) at load \(load): jobs still open an hour past the last deadline")
            }
        }
        guard let shell = sim.shell else { throw BenchmarkFailure(description: "the coordinator is down") }
        return try summary(specs, load: load, jobIDs: jobIDs, store: sim.store, stats: shell.core.stats)
    }

    /// The row, from the store: job states and spend, attempts' slot time, preemptions.
    func summary(_ specs: [FleetJobSpec], load: Double, jobIDs: [Int: String], store: Store, stats: CoordinatorStats) throws -> FleetRow {
        var jobs: [String: (state: String, latency: Double, spent: Double, reason: String)] = [:]
        for r in try store.connection.query("SELECT id, state, ended_at - submitted_at, spent_usd_nano, reason FROM jobs") {
            jobs[r.string(0)] = (r.string(1), r.double(2), Double(r.int(3)) / 1e9, r.string(4))
        }
        let outcomes = specs.indices.map { i in jobIDs[i].flatMap { jobs[$0]?.state } == JobState.succeeded.rawValue }
        let latencies = specs.indices.compactMap { i -> Double? in
            guard let id = jobIDs[i], let j = jobs[id], j.state == JobState.succeeded.rawValue else { return nil }
            return j.latency
        }.sorted()
        // Per job: seconds its attempts waited in the queue (created → dispatched, or → ended if
        // never dispatched), and the slot-seconds they held (dispatched → ended).
        var queuedSeconds: [String: Double] = [:], slotSeconds: [String: Double] = [:]
        for r in try store.connection.query("""
            SELECT job, SUM(COALESCE(dispatched_at, ended_at, created_at) - created_at),
                   SUM(COALESCE(ended_at - dispatched_at, 0)) FROM attempts GROUP BY job
            """) {
            queuedSeconds[r.string(0)] = r.double(1)
            slotSeconds[r.string(0)] = r.double(2)
        }
        var usage: [String: Double] = [:]
        for r in try store.connection.query("""
            SELECT j.tenant, SUM(a.ended_at - a.dispatched_at) FROM attempts a JOIN jobs j ON j.id = a.job
            WHERE a.dispatched_at IS NOT NULL AND a.ended_at IS NOT NULL GROUP BY j.tenant
            """) { usage[r.string(0)] = r.double(1) }
        // Preempted attempts: "preempted for job <id>: charged …".
        var preemptedSeconds = 0.0, preemptions = 0
        var preemptors: Set<String> = [], victims: Set<String> = []
        for r in try store.connection.query("""
            SELECT job, detail, ended_at - dispatched_at FROM attempts WHERE state = 'cancelled' AND detail LIKE 'preempted for job %'
            """) {
            preemptions += 1
            preemptedSeconds += r.double(2)
            victims.insert(r.string(0))
            let by = r.string(1).dropFirst("preempted for job ".count).prefix { $0 != ":" }
            preemptors.insert(String(by))
        }
        // Attempts that ran to their own end: what GPU sharing stretches.
        let ranRow = try store.connection.query("""
            SELECT COUNT(*), COALESCE(AVG(ended_at - dispatched_at), 0) FROM attempts
            WHERE state IN ('succeeded', 'failed') AND dispatched_at IS NOT NULL AND ended_at IS NOT NULL
            """)[0]
        let ran = (count: ranRow.int(0), seconds: ranRow.double(1))
        let succeeded = Set(jobs.filter { $0.value.state == JobState.succeeded.rawValue }.keys)
        let (low, high) = FleetBenchmark.bootstrap(outcomes)
        let n = Double(max(specs.count, 1))
        let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int((0.99 * Double(latencies.count)).rounded(.up)) - 1)]
        let spent = specs.indices.reduce(0.0) { sum, i in
            sum + (jobIDs[i].flatMap { jobs[$0]?.spent } ?? 0) / max(specs[i].budgetUSD, 1e-12)
        }
        let infeasible = jobs.values.filter { $0.state == JobState.infeasible.rawValue }
        var endStates: [String: Int] = [:]
        for i in specs.indices { endStates[jobIDs[i].flatMap { jobs[$0]?.state } ?? "refused", default: 0] += 1 }
        // The cell of each job: its budget and deadline over its DAG's nominal ones.
        var cells: [[Double]: FleetCell] = [:]
        var jobEnds: [FleetJobEnd] = []
        for (i, s) in specs.enumerated() {
            let beta = s.budgetUSD / max(dags[s.dag].nominalBudgetUSD, 1e-12), delta = s.deadline / max(dags[s.dag].nominalDeadlineSeconds, 1e-12)
            let key = [(beta * 1e6).rounded() / 1e6, (delta * 1e6).rounded() / 1e6]
            cells[key, default: FleetCell(budgetRatio: key[0], deadlineRatio: key[1], jobs: 0, succeeded: 0)].jobs += 1
            if outcomes[i] { cells[key]!.succeeded += 1 }
            let end = jobIDs[i].flatMap { jobs[$0] }
            jobEnds.append(FleetJobEnd(dag: s.dag, budgetRatio: key[0], deadlineRatio: key[1], state: end?.state ?? "refused",
                                       reason: end?.reason ?? "", seconds: end?.latency ?? 0,
                                       queuedSeconds: jobIDs[i].flatMap { queuedSeconds[$0] } ?? 0,
                                       slotSeconds: jobIDs[i].flatMap { slotSeconds[$0] } ?? 0,
                                       spentFraction: (end?.spent ?? 0) / max(s.budgetUSD, 1e-12)))
        }
        return FleetRow(
            policy: variant.name, load: load, jobs: specs.count, goodput: Double(outcomes.filter { $0 }.count) / n,
            ciLow: low, ciHigh: high,
            meanLatency: latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count), p99Latency: p99,
            spentFraction: spent / n,
            jain: jainIndex(usage: usage, weights: policy.tenantWeights.filter { usage[$0.key] != nil }),
            tenantUsage: usage, plannerStopped: infeasible.filter { $0.reason.hasPrefix("planner ") }.count,
            refused: infeasible.filter { $0.reason.hasPrefix("estimated completion probability") }.count,
            preemptions: preemptions, preemptedSeconds: preemptedSeconds,
            preemptors: preemptors.count, preemptorsSucceeded: preemptors.intersection(succeeded).count,
            victims: victims.count, victimsSucceeded: victims.intersection(succeeded).count,
            attempts: ran.count, meanAttemptSeconds: ran.seconds,
            decisions: stats.planning.count,
            msPerDecision: stats.planning.count > 0 ? stats.planning.sum * 1000 / Double(stats.planning.count) : 0, outcomes: outcomes,
            endStates: endStates,
            cells: cells.values.sorted { ($0.budgetRatio, $0.deadlineRatio) < ($1.budgetRatio, $1.deadlineRatio) },
            jobEnds: jobEnds)
    }
}
