import Planner
import Dispatch
import Foundation
import Synchronization

/// One policy the fleet benchmark runs: a cross-job policy and switches for its parts.
public struct FleetVariant: Sendable, Hashable {
    public var kind: FleetPolicyKind
    /// Each job's planner sees its share of the slots and the queueing delay ahead of it, as the
    /// coordinator's planners do (default: on for `fleet`; `fifo` and `edf` plan as before this
    /// existed, as if the fleet were the job's own, unless `:aware`).
    public var contentionAware: Bool
    public var fairShare: Bool
    public var aging: Bool
    /// A job whose estimated success under the current load is below this is ended early.
    public var minSuccess: Double?
    /// A job whose deadline is at risk may take a slot from a lower-ranked job's running attempt
    /// (``FleetPolicy/preemptions(jobs:waiting:running:freeSlots:now:rules:preemptedAt:)``).
    public var preemption: Bool
    /// Preemption's least net gain, if not ``PreemptionRules/minGain``'s default (`preempt0.3`).
    public var preemptionMinGain: Double?

    public init(kind: FleetPolicyKind, contentionAware: Bool? = nil, fairShare: Bool = true, aging: Bool = true, minSuccess: Double? = nil,
                preemption: Bool = false) {
        self.kind = kind
        self.contentionAware = contentionAware ?? (kind == .fleet)
        self.fairShare = fairShare
        self.aging = aging
        self.minSuccess = minSuccess
        self.preemption = preemption
    }

    /// `fifo`, `edf`, `fleet`, optionally with `:` and `+`-joined switches: `aware`, `blind`,
    /// `nofair`, `noaging`, `admit0.3` (ends jobs whose estimate is below 0.3), `preempt`
    /// (preemption on), `preempt0.3` (on, with a least net gain of 0.3) and `nopreempt` (off, the default).
    public static func parse(_ text: String) throws -> FleetVariant {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let kind = FleetPolicyKind(rawValue: parts[0]) else {
            throw PlannerSpecError(description: "unknown policy '\(text)': expected fifo, edf or fleet, optionally :aware, :blind, :nofair, :noaging, :admitP, :preempt, :nopreempt joined by '+'")
        }
        var v = FleetVariant(kind: kind)
        if parts.count == 2 {
            for s in parts[1].split(separator: "+").map(String.init) {
                switch s {
                case "aware": v.contentionAware = true
                case "blind": v.contentionAware = false
                case "nofair": v.fairShare = false
                case "noaging": v.aging = false
                case "preempt": v.preemption = true
                case "nopreempt": v.preemption = false
                default:
                    if s.hasPrefix("preempt"), let g = Double(s.dropFirst(7)), g >= 0, g <= 1 {
                        v.preemption = true
                        v.preemptionMinGain = g
                        continue
                    }
                    if s.hasPrefix("admit"), let p = Double(s.dropFirst(5)), p >= 0, p <= 1 { v.minSuccess = p; continue }
                    throw PlannerSpecError(description: "policy '\(text)': unknown switch '\(s)'")
                }
            }
        }
        return v
    }

    public var name: String {
        var switches: [String] = []
        if contentionAware != (kind == .fleet) { switches.append(contentionAware ? "aware" : "blind") }
        if !fairShare { switches.append("nofair") }
        if !aging { switches.append("noaging") }
        if let m = minSuccess { switches.append("admit\(m)") }
        if preemption { switches.append("preempt" + (preemptionMinGain.map { "\($0)" } ?? "")) }
        return switches.isEmpty ? kind.rawValue : kind.rawValue + ":" + switches.joined(separator: "+")
    }
}

/// What `agentflow bench fleet` runs.
public struct FleetBenchSettings: Sendable {
    public var loads: [Double] = [0.7, 1, 1.5]
    public var variants: [FleetVariant] = [FleetVariant(kind: .fifo), FleetVariant(kind: .edf), FleetVariant(kind: .fleet)]
    public var jobs = 200
    /// Worker slots serving each of the pool's models.
    public var slotsPerModel = 4
    public var tenants = 1
    /// Tenant `t0`, `t1`, … → weight (missing: 1).
    public var tenantWeights: [String: Double] = [:]
    public var seed: UInt64 = 1
    /// The jobs' planner: `mcpp` or `seq:K`.
    public var planner = "mcpp"
    /// MCPP simulations per pair (M).
    public var simulations = 16
    /// MCPP's pre-drawn batch outcomes per (node, model, k), rebuilt at every decision.
    public var tableSize = 32
    public var budgetRatios: [Double] = [0.5, 1, 2]
    public var deadlineRatios: [Double] = [0.5, 1, 2]
    /// (policy, load) runs simulated at once.
    public var threads = 2
    /// Fleet policy: seconds of waiting that double a job's score.
    public var agingSeconds = 300.0
    /// When a variant with preemption cancels a running attempt.
    public var preemptionRules = PreemptionRules()
    /// Where an attempt's outcome comes from: a calibration row of its (node, model) (the
    /// default), or the `sim` worker backend's draw around the rows' means (``SimulatedDraw``,
    /// capped at the node's token cap as the backend does), which `bench fleet-live` compares
    /// with the live run.
    public var drawLikeSimBackend = false

    public init() {}
}

/// One (policy, load) row of the fleet benchmark.
public struct FleetRow: Sendable, Equatable {
    public var policy: String
    public var load: Double
    public var jobs: Int
    /// Fraction of submitted jobs that completed every subtask within budget and deadline.
    public var goodput: Double
    /// 95% percentile bootstrap over jobs.
    public var ciLow: Double
    public var ciHigh: Double
    /// Seconds from arrival to success, over the jobs that succeeded.
    public var meanLatency: Double
    public var p99Latency: Double
    /// Mean over jobs of spent ÷ budget.
    public var spentFraction: Double
    /// Jain's index of slot-seconds per unit of tenant weight.
    public var jain: Double
    /// Slot-seconds per tenant.
    public var tenantUsage: [String: Double]
    /// Jobs ended because nothing could be launched while slots were busy (must stay 0).
    public var endedBusy: Int
    /// Jobs ended early by admission control.
    public var refused: Int
    /// Running attempts cancelled by preemption, and the slot-seconds they had run (lost work).
    public var preemptions: Int = 0
    public var preemptedSeconds: Double = 0
    /// Jobs that took a slot by preemption, and those of them that succeeded; jobs that lost an
    /// attempt to preemption, and those of them that still succeeded.
    public var preemptors: Int = 0
    public var preemptorsSucceeded: Int = 0
    public var victims: Int = 0
    public var victimsSucceeded: Int = 0
    public var decisions: Int
    public var msPerDecision: Double
    /// Per job (in arrival order): succeeded, latency.
    public var outcomes: [Bool]
}

/// A job of the fleet benchmark: which DAG, when it arrives, its budget and deadline.
public struct FleetJobSpec: Sendable, Equatable {
    public var dag: Int
    public var arrival: Double
    public var budgetUSD: Double
    /// Seconds after arrival.
    public var deadline: Double
    public var tenant: String
    public var priority: Int
    public var seed: UInt64

    public init(dag: Int, arrival: Double, budgetUSD: Double, deadline: Double, tenant: String = "t0", priority: Int = 0, seed: UInt64 = 0) {
        self.dag = dag
        self.arrival = arrival
        self.budgetUSD = budgetUSD
        self.deadline = deadline
        self.tenant = tenant
        self.priority = priority
        self.seed = seed
    }
}

/// The fleet benchmark: open-loop Poisson arrivals of pool DAGs onto a simulated fleet, in
/// virtual time, scheduled by the coordinator's own ``FleetPolicy`` and planned by the
/// coordinator's own ``LivePlanner``s.
public enum FleetBenchmark {
    /// Expected slot-seconds of one run of `dag` under `seq:1` on the reference model:
    /// Σ_v lat_mean_v / p_v (each node retried until it passes).
    public static func seq1SlotSeconds(_ dag: PoolDAG) -> Double {
        let m = dag.referenceModelIndex
        return dag.nodes.indices.reduce(0) { sum, v in
            let t = dag.template(node: v, model: m)
            return sum + t.latency / min(max(t.success, 1e-9), 1)
        }
    }

    /// Arrival rate for load ρ: ρ × slots ÷ mean slot-seconds per job (seq:1, reference model).
    public static func arrivalRate(load: Double, dags: [PoolDAG], totalSlots: Int) -> Double {
        let mean = dags.map(seq1SlotSeconds).reduce(0, +) / Double(max(dags.count, 1))
        return load * Double(totalSlots) / max(mean, 1e-9)
    }

    /// The job sequence of one load point (the same for every policy).
    public static func jobs(dags: [PoolDAG], load: Double, settings: FleetBenchSettings) -> [FleetJobSpec] {
        let models = dags.first?.modelIDs.count ?? 1
        let rate = arrivalRate(load: load, dags: dags, totalSlots: settings.slotsPerModel * models)
        var rng = SplitMix64(seed: deriveSeed(settings.seed, load.bitPattern))
        var t = 0.0
        return (0..<settings.jobs).map { i in
            t += -log(max(1 - rng.unit(), 1e-300)) / rate
            let d = rng.below(dags.count)
            let beta = settings.budgetRatios[rng.below(settings.budgetRatios.count)]
            let delta = settings.deadlineRatios[rng.below(settings.deadlineRatios.count)]
            return FleetJobSpec(dag: d, arrival: t, budgetUSD: beta * dags[d].nominalBudgetUSD,
                                deadline: delta * dags[d].nominalDeadlineSeconds,
                                tenant: "t\(i % max(settings.tenants, 1))", seed: rng.next())
        }
    }

    /// Every (variant, load) of the settings, side by side on the same job sequences.
    public static func run(dags: [PoolDAG], settings: FleetBenchSettings,
                           progress: (@Sendable (String) -> Void)? = nil) -> [FleetRow] {
        var list: [(FleetVariant, Double)] = []
        for load in settings.loads { for v in settings.variants { list.append((v, load)) } }
        let cases = list
        let results = Mutex<[Int: FleetRow]>([:])
        let threads = max(1, min(settings.threads, cases.count))
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var i = t
            while i < cases.count {
                let (variant, load) = cases[i]
                let specs = jobs(dags: dags, load: load, settings: settings)
                let sim = FleetSimulator(dags: dags, variant: variant, settings: settings)
                let row = sim.run(specs, load: load)
                results.withLock { $0[i] = row }
                progress?(String(format: "%@ load %.2f: goodput %.3f; %d attempts preempted (%.0f slot-s lost) for %d jobs (%d succeeded) from %d jobs (%d succeeded)",
                                 variant.name, load, row.goodput, row.preemptions, row.preemptedSeconds, row.preemptors,
                                 row.preemptorsSucceeded, row.victims, row.victimsSucceeded))
                i += threads
            }
        }
        let all = results.withLock { $0 }
        return cases.indices.compactMap { all[$0] }
    }

    /// 95% percentile bootstrap of a success fraction over jobs (1000 resamples, seed 0).
    static func bootstrap(_ outcomes: [Bool]) -> (Double, Double) {
        guard !outcomes.isEmpty else { return (0, 0) }
        var rng = SplitMix64(seed: 0)
        var means: [Double] = []
        for _ in 0..<1000 {
            var s = 0
            for _ in outcomes.indices where outcomes[rng.below(outcomes.count)] { s += 1 }
            means.append(Double(s) / Double(outcomes.count))
        }
        means.sort()
        return (means[24], means[975])
    }
}

/// The discrete-event simulation of one (policy, load) run. Workers are slots per model; an
/// attempt's outcome is a calibration row of its (node, model) drawn when it starts.
public final class FleetSimulator {
    struct Attempt {
        var job: Int
        var node: Int
        var model: Int
        var reserve: Double
        var queuedAt: Double
        var start = 0.0
        var end = 0.0
        var cost = 0.0
        var success = false
        var running = false
        var over = false
    }

    final class Job {
        let spec: FleetJobSpec
        let dag: Int
        let nodes: [PlanNode]
        let planner: any LivePlanner
        var book: EstimateBook
        var rng: SplitMix64
        var deadline: Double
        var spent = 0.0
        var reserved = 0.0
        var done: Set<Int> = []
        var live: [Int: Set<Int>] = [:]      // node → attempt ids
        var queued: [[Int]]                  // per model: attempt ids waiting, oldest first
        var ended = false
        var success = false
        var endedAt = 0.0
        var needsPlanning = true
        var launchedAt: [Int: (model: Int, at: Double)] = [:]
        /// When one of its attempts was last preempted, and the nodes that lost one (never again).
        var preemptedAt: Double?
        var preemptedNodes: Set<Int> = []
        /// It took a slot by preemption at least once.
        var preempted = false

        init(spec: FleetJobSpec, dag: Int, nodes: [PlanNode], planner: any LivePlanner, book: EstimateBook, models: Int) {
            self.spec = spec
            self.dag = dag
            self.nodes = nodes
            self.planner = planner
            self.book = book
            self.rng = SplitMix64(seed: spec.seed)
            self.deadline = spec.arrival + spec.deadline
            self.queued = Array(repeating: [], count: models)
        }

        var inFlight: [Int: Int] { live.compactMapValues { $0.isEmpty ? nil : $0.count } }
        var hasQueued: Bool { queued.contains { !$0.isEmpty } }
        var ready: [Int] {
            nodes.indices.filter { v in !done.contains(v) && (live[v]?.isEmpty ?? true) && nodes[v].needs.allSatisfy(done.contains) }
        }
    }

    enum Event { case arrival(Int), end(Int), deadline(Int) }

    let dags: [PoolDAG]
    let variant: FleetVariant
    let settings: FleetBenchSettings
    let policy: FleetPolicy
    let modelNames: [String]
    let planModels: [PlanModel]
    /// Per DAG: plan nodes and a book holding the pool's calibration rows as observations.
    var dagNodes: [Int: ([PlanNode], EstimateBook)] = [:]
    var heap = EventHeap<Event>()
    var attempts: [Attempt] = []
    var jobs: [Job] = []
    var running: [Int]
    /// Attempts running now.
    var runningIDs: Set<Int> = []
    var meanSeconds: [Double]
    var usage: [String: Double] = [:]
    var decisions = 0
    var planningNanos: Int64 = 0
    var endedBusy = 0
    var refused = 0
    var preemptions = 0
    var preemptedSeconds = 0.0

    public init(dags: [PoolDAG], variant: FleetVariant, settings: FleetBenchSettings) {
        self.dags = dags
        self.variant = variant
        self.settings = settings
        var weights = settings.tenantWeights
        for t in 0..<max(settings.tenants, 1) where weights["t\(t)"] == nil { weights["t\(t)"] = 1 }
        policy = FleetPolicy(kind: variant.kind, tenantWeights: weights, agingSeconds: variant.aging ? settings.agingSeconds : .infinity,
                             fairShare: variant.fairShare)
        let first = dags[0]
        modelNames = first.modelIDs
        planModels = first.modelIDs.indices.map { PlanModel(name: first.modelIDs[$0], priceInput: 0, priceOutput: first.price(ofModel: $0)) }
        running = Array(repeating: 0, count: modelNames.count)
        meanSeconds = modelNames.indices.map { m in
            var total = 0.0, n = 0.0
            for d in dags { for node in d.nodes { for s in node.samples[m] { total += s.latency; n += 1 } } }
            return n > 0 ? total / n : 1
        }
    }

    func problem(_ d: Int) -> ([PlanNode], EstimateBook) {
        if let p = dagNodes[d] { return p }
        let p = dags[d].planNodes()
        dagNodes[d] = p
        return p
    }

    func makePlanner(seed: UInt64) -> any LivePlanner {
        if settings.planner == "mcpp" {
            var config = MCPPPlanner.defaultConfig
            config.simulations = settings.simulations
            config.threads = 1
            var planner = MCPPPlanner(seed: seed, config: config)
            planner.tableSize = settings.tableSize
            return planner
        }
        return (try? makeLivePlanner(settings.planner, seed: seed)) ?? SequentialPlanner(samples: 1)
    }

    /// Runs the jobs to the end and summarizes.
    public func run(_ specs: [FleetJobSpec], load: Double) -> FleetRow {
        for (i, s) in specs.enumerated() { heap.push(s.arrival, .arrival(i)) }
        jobs.reserveCapacity(specs.count)
        var pending = specs
        while let (now, event) = heap.pop() {
            switch event {
            case .arrival(let i):
                let spec = pending[i]
                let (nodes, book) = problem(spec.dag)
                let job = Job(spec: spec, dag: spec.dag, nodes: nodes, planner: makePlanner(seed: spec.seed), book: book,
                              models: modelNames.count)
                precondition(jobs.count == i)
                jobs.append(job)
                heap.push(job.deadline, .deadline(i))
                if let min = variant.minSuccess {
                    let p = FleetOutlook.estimate(planState(job, now: now), wait: waits(for: i, now: now)).success
                    if p < min {
                        refused += 1
                        finish(job, success: false, now: now)
                    }
                }
            case .deadline(let j):
                let job = jobs[j]
                if !job.ended { finish(job, success: false, now: now) }
            case .end(let a):
                attemptEnded(a, now: now)
            }
            // Events at the same instant are all applied before anyone plans.
            if let next = heap.peekTime, next <= now { continue }
            for (j, job) in jobs.enumerated() where !job.ended && job.needsPlanning { plan(j, now: now) }
            dispatch(now: now)
        }
        pending.removeAll()
        return summary(load: load)
    }

    func planState(_ job: Job, now: Double) -> PlanState {
        var s = PlanState(nodes: job.nodes, models: planModels, done: job.done, inFlight: job.inFlight, remainingTokens: nil,
                          remainingUSD: max(0, job.spec.budgetUSD - job.spent - job.reserved), remainingSeconds: max(0, job.deadline - now))
        for (v, l) in job.launchedAt where !(job.live[v]?.isEmpty ?? true) { s.inFlightDetail[v] = InFlightDetail(model: l.model, elapsed: now - l.at) }
        return s
    }

    /// Per model, the seconds an attempt job `j` queued now would wait: the attempts ahead of it
    /// under the policy, beyond the free slots, served at the model's slot rate.
    func waits(for j: Int, now: Double) -> [Double] {
        let active = jobs.indices.filter { !jobs[$0].ended && jobs[$0].hasQueued && $0 != j }
        var ahead = [Int](repeating: 0, count: modelNames.count)
        if !active.isEmpty {
            var views = active.map { view(jobs[$0], now: now) }
            views.append(view(jobs[j], now: now))
            let ranked = policy.rank(views, now: now)
            for r in ranked {
                if r == views.count - 1 { break }
                for m in modelNames.indices { ahead[m] += jobs[active[r]].queued[m].count }
            }
        }
        return modelNames.indices.map { m in
            let free = settings.slotsPerModel - running[m]
            let beyond = ahead[m] + 1 - free
            return beyond > 0 ? Double(beyond) * meanSeconds[m] / Double(settings.slotsPerModel) : 0
        }
    }

    func view(_ job: Job, now: Double) -> FleetJobView {
        var since = now
        for q in job.queued { if let a = q.first { since = min(since, attempts[a].queuedAt) } }
        return FleetJobView(id: String(job.spec.seed), tenant: job.spec.tenant, priority: job.spec.priority,
                            submittedAt: job.spec.arrival, deadline: job.deadline, waitingSince: since,
                            outlook: FleetOutlook.estimate(planState(job, now: now)))
    }

    func plan(_ j: Int, now: Double) {
        let job = jobs[j]
        job.needsPlanning = false
        let ready = job.ready
        guard !ready.isEmpty else { return }
        var state = planState(job, now: now)
        state.estimateBook = job.book
        let own = (0..<modelNames.count).map { m in job.queued[m].count + job.live.values.reduce(0) { $0 + $1.filter { attempts[$0].model == m && attempts[$0].running }.count } }
        if variant.contentionAware {
            let active = max(1, jobs.filter { !$0.ended && $0.spec.arrival <= now }.count)
            let share = max(1, settings.slotsPerModel / active)
            state.queueWait = waits(for: j, now: now)
            for m in state.models.indices {
                // Work-conserving, as the coordinator: slots that stand idle with no attempt
                // waiting for them may be planned for beyond the job's share.
                let waiting = jobs.reduce(0) { $0 + ($1.ended ? 0 : $1.queued[m].count) }
                let idle = settings.slotsPerModel - running[m] - waiting
                state.models[m].freeSlots = max(0, share - own[m], idle)
                state.models[m].totalSlots = settings.slotsPerModel
            }
        } else {
            for m in state.models.indices {
                state.models[m].freeSlots = max(0, settings.slotsPerModel - own[m])
                state.models[m].totalSlots = settings.slotsPerModel
            }
        }
        let clock = ContinuousClock()
        let started = clock.now
        var launches = job.planner.decide(state)
        if !launches.contains(where: { ready.contains($0.node) }) && job.live.values.allSatisfy(\.isEmpty) {
            // As the coordinator: a job is never dropped while its budget covers an attempt.
            launches = keepTrying(state)
        }
        let elapsed = clock.now - started
        planningNanos += elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        decisions += 1
        var launched = false
        for l in launches where ready.contains(l.node) {
            let worst = planModels[l.model].worstCaseUSD(tokens: job.nodes[l.node].tokenCap)
            for _ in 0..<max(1, l.samples) {
                guard job.spent + job.reserved + worst <= job.spec.budgetUSD + 1e-15 else { break }
                job.reserved += worst
                let id = attempts.count
                attempts.append(Attempt(job: j, node: l.node, model: l.model, reserve: worst, queuedAt: now))
                job.live[l.node, default: []].insert(id)
                job.queued[l.model].append(id)
                job.launchedAt[l.node] = (l.model, now)
                launched = true
            }
        }
        if !launched && job.live.values.allSatisfy(\.isEmpty) {
            // Nothing runs and no attempt fits the budget: the job cannot go on (the coordinator's
            // endStuck). Ending it while its budget still covered an attempt would count as ended busy.
            if !keepTrying(state).isEmpty { endedBusy += 1 }
            finish(job, success: false, now: now)
        }
    }

    /// Gives free slots to queued attempts in the policy's order; with preemption, then cancels
    /// the running attempts the policy picks for jobs at risk, replans their jobs and gives the
    /// freed slots out again (as the coordinator does once the cancelled attempts report).
    func dispatch(now: Double) {
        fillFreeSlots(now: now)
        guard variant.preemption else { return }
        let victims = preempt(now: now)
        guard !victims.isEmpty else { return }
        for j in victims where !jobs[j].ended { plan(j, now: now) }
        fillFreeSlots(now: now)
    }

    func fillFreeSlots(now: Double) {
        let waiting = jobs.indices.filter { !jobs[$0].ended && jobs[$0].hasQueued }
        guard !waiting.isEmpty, modelNames.indices.contains(where: { running[$0] < settings.slotsPerModel }) else { return }
        let views = waiting.map { view(jobs[$0], now: now) }
        let totalQueued = waiting.reduce(0) { $0 + jobs[$1].queued.reduce(0) { $0 + $1.count } }
        let meanAll = meanSeconds.reduce(0, +) / Double(max(meanSeconds.count, 1))
        let delay = Double(totalQueued) / Double(settings.slotsPerModel * modelNames.count) * meanAll
        var liveUsage = usage
        for a in runningIDs { liveUsage[jobs[attempts[a].job].spec.tenant, default: 0] += now - attempts[a].start }
        var order = policy.dispatchOrder(views, now: now, usage: liveUsage, delay: delay)
        while true {
            guard let k = order.next(where: { k in
                let job = jobs[waiting[k]]
                return modelNames.indices.contains { !job.queued[$0].isEmpty && running[$0] < settings.slotsPerModel }
            }) else { break }
            let job = jobs[waiting[k]]
            let m = modelNames.indices.first { !job.queued[$0].isEmpty && running[$0] < settings.slotsPerModel }!
            let id = job.queued[m].removeFirst()
            start(id, now: now)
            order.charge(k, seconds: meanSeconds[m])
        }
    }

    /// One preemption round (the coordinator's `preemptForJobsAtRisk`): the jobs whose queued
    /// attempts wait for a model with no free slot, every running attempt, and the shared
    /// policy's decision. Returns the victims' jobs.
    func preempt(now: Double) -> [Int] {
        let full = Set(modelNames.indices.filter { running[$0] >= settings.slotsPerModel })
        let waitingJobs = jobs.indices.filter { j in !jobs[j].ended && full.contains { !jobs[j].queued[$0].isEmpty } }
        guard !waitingJobs.isEmpty else { return [] }
        var involved = waitingJobs
        var local: [Int: Int] = [:]
        for (i, j) in waitingJobs.enumerated() { local[j] = i }
        var runningViews: [RunningAttemptView] = []
        var runningIDs: [Int] = []
        for id in self.runningIDs.sorted() {
            let a = attempts[id]
            let job = jobs[a.job]
            if local[a.job] == nil {
                local[a.job] = involved.count
                involved.append(a.job)
            }
            runningViews.append(RunningAttemptView(job: local[a.job]!, model: a.model, startedAt: a.start,
                                                   expectedSeconds: dags[job.dag].template(node: a.node, model: a.model).latency,
                                                   preemptible: !job.preemptedNodes.contains(a.node)))
            runningIDs.append(id)
        }
        let views = involved.map { view(jobs[$0], now: now) }
        // Attempts queued ahead of each waiting job, per model, in the policy's order.
        var ahead = [Int](repeating: 0, count: modelNames.count)
        var waiting: [WaitingJobView] = []
        for i in policy.rank(views, now: now) where i < waitingJobs.count {
            let job = jobs[waitingJobs[i]]
            for m in full where !job.queued[m].isEmpty {
                waiting.append(WaitingJobView(job: i, model: m, queuedAhead: ahead[m]))
                ahead[m] += job.queued[m].count
            }
        }
        var preemptedAt: [Int: Double] = [:]
        for (i, j) in involved.enumerated() { if let at = jobs[j].preemptedAt { preemptedAt[i] = at } }
        var rules = settings.preemptionRules
        if let g = variant.preemptionMinGain { rules.minGain = g }
        let decisions = policy.preemptions(jobs: views, waiting: waiting, running: runningViews, freeSlots: [:], now: now,
                                           rules: rules, preemptedAt: preemptedAt)
        var victims: [Int] = []
        for d in decisions {
            let id = runningIDs[d.victim]
            let a = attempts[id]
            let job = jobs[a.job]
            preemptions += 1
            preemptedSeconds += now - a.start
            stop(id, now: now)
            job.preemptedAt = now
            job.preemptedNodes.insert(a.node)
            job.needsPlanning = true
            jobs[involved[d.job]].preempted = true
            victims.append(a.job)
        }
        return victims
    }

    func start(_ id: Int, now: Double) {
        var a = attempts[id]
        let job = jobs[a.job]
        let samples = dags[job.dag].nodes[a.node].samples[a.model]
        var row = samples[job.rng.below(samples.count)]
        if settings.drawLikeSimBackend {
            let t = dags[job.dag].template(node: a.node, model: a.model)
            let d = SimulatedDraw.draw(success: t.success, tokens: t.tokens, seconds: t.latency, rng: &job.rng)
            let cap = Double(job.nodes[a.node].tokenCap)
            row = Double(d.tokens) > cap
                ? CalibrationSample(latency: d.seconds * cap / Double(d.tokens), success: false, tokens: cap)
                : CalibrationSample(latency: d.seconds, success: d.passed, tokens: Double(d.tokens))
        }
        a.running = true
        a.start = now
        a.end = now + row.latency
        a.success = row.success
        a.cost = row.tokens * planModels[a.model].priceOutput / 1_000_000
        attempts[id] = a
        running[a.model] += 1
        runningIDs.insert(id)
        heap.push(a.end, .end(id))
    }

    /// Stops an attempt: a queued one is dropped, a running one pays the share of its cost it ran for.
    func stop(_ id: Int, now: Double) {
        var a = attempts[id]
        guard !a.over else { return }
        a.over = true
        let job = jobs[a.job]
        job.reserved -= a.reserve
        if a.running {
            let share = a.end > a.start ? min(1, max(0, (now - a.start) / (a.end - a.start))) : 1
            job.spent += min(a.cost * share, a.reserve)
            running[a.model] -= 1
            runningIDs.remove(id)
            usage[job.spec.tenant, default: 0] += now - a.start
            a.running = false
        } else {
            job.queued[a.model].removeAll { $0 == id }
        }
        attempts[id] = a
        job.live[a.node]?.remove(id)
    }

    func attemptEnded(_ id: Int, now: Double) {
        var a = attempts[id]
        guard !a.over else { return }
        a.over = true
        a.running = false
        attempts[id] = a
        let job = jobs[a.job]
        running[a.model] -= 1
        runningIDs.remove(id)
        usage[job.spec.tenant, default: 0] += now - a.start
        job.reserved -= a.reserve
        job.spent += min(a.cost, a.reserve)
        job.live[a.node]?.remove(id)
        job.needsPlanning = true
        if a.success && !job.done.contains(a.node) {
            job.done.insert(a.node)
            job.launchedAt[a.node] = nil
            for other in job.live[a.node] ?? [] { stop(other, now: now) }
            if job.done.count == job.nodes.count { finish(job, success: now <= job.deadline, now: now) }
        }
    }

    func finish(_ job: Job, success: Bool, now: Double) {
        guard !job.ended else { return }
        for ids in job.live.values { for id in ids { stop(id, now: now) } }
        job.ended = true
        job.success = success && job.spent <= job.spec.budgetUSD + 1e-12
        job.endedAt = now
    }

    func summary(load: Double) -> FleetRow {
        let outcomes = jobs.map(\.success)
        let latencies = jobs.filter(\.success).map { $0.endedAt - $0.spec.arrival }.sorted()
        let (low, high) = FleetBenchmark.bootstrap(outcomes)
        let n = Double(max(jobs.count, 1))
        let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int((0.99 * Double(latencies.count)).rounded(.up)) - 1)]
        return FleetRow(
            policy: variant.name, load: load, jobs: jobs.count, goodput: Double(outcomes.filter { $0 }.count) / n,
            ciLow: low, ciHigh: high,
            meanLatency: latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count), p99Latency: p99,
            spentFraction: jobs.reduce(0) { $0 + $1.spent / max($1.spec.budgetUSD, 1e-12) } / n,
            jain: jainIndex(usage: usage, weights: policy.tenantWeights.filter { usage[$0.key] != nil }),
            tenantUsage: usage, endedBusy: endedBusy, refused: refused, preemptions: preemptions, preemptedSeconds: preemptedSeconds,
            preemptors: jobs.filter(\.preempted).count, preemptorsSucceeded: jobs.filter { $0.preempted && $0.success }.count,
            victims: jobs.filter { $0.preemptedAt != nil }.count, victimsSucceeded: jobs.filter { $0.preemptedAt != nil && $0.success }.count,
            decisions: decisions,
            msPerDecision: decisions > 0 ? Double(planningNanos) / 1e6 / Double(decisions) : 0, outcomes: outcomes)
    }
}

/// A binary min-heap of timed events; ties in insertion order.
struct EventHeap<E> {
    private var items: [(time: Double, seq: Int, event: E)] = []
    private var counter = 0

    var peekTime: Double? { items.first?.time }

    mutating func push(_ time: Double, _ event: E) {
        items.append((time, counter, event))
        counter += 1
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(i, p) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> (Double, E)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count && less(l, m) { m = l }
            if r < items.count && less(r, m) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return (top.time, top.event)
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        items[a].time != items[b].time ? items[a].time < items[b].time : items[a].seq < items[b].seq
    }
}
