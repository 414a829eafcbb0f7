import AgentFlowCore
import Coordinator
import Dispatch
import Foundation
import Observability
import Planner
import Synchronization

/// One policy the fleet benchmark runs: a cross-job policy of the coordinator and switches for
/// its parts.
public struct FleetVariant: Sendable, Hashable {
    public var kind: FleetPolicyKind
    public var fairShare: Bool
    public var aging: Bool
    /// Jobs are submitted with `--min-success` this: the coordinator ends a job early when its
    /// planner estimates a completion probability below it.
    public var minSuccess: Double?
    /// A job whose deadline is at risk may take a slot from a lower-ranked job's running attempt
    /// (the coordinator's `--preemption on`).
    public var preemption: Bool
    /// Preemption's least net gain, if not ``PreemptionRules/minGain``'s default (`preempt0.3`).
    public var preemptionMinGain: Double?
    /// Which of a model's workers takes an attempt (`firstfree`: the rule before issue 20).
    public var placement: Placement = .leastLoaded
    /// `holdP`: the fleet policy's admission test at probability P (``FleetPolicy/admissionThreshold``).
    public var admissionThreshold: Double?
    /// `blind`: every job's planner sees its models' slots as its own, with no queue
    /// (``CoreOptions/plansBlind``) — a baseline, not how the coordinator plans.
    public var plansBlind = false

    public init(kind: FleetPolicyKind, fairShare: Bool = true, aging: Bool = true, minSuccess: Double? = nil, preemption: Bool = false) {
        self.kind = kind
        self.fairShare = fairShare
        self.aging = aging
        self.minSuccess = minSuccess
        self.preemption = preemption
    }

    /// `fifo`, `edf`, `fleet`, optionally with `:` and `+`-joined switches: `nofair`, `noaging`,
    /// `admit0.3` (jobs submitted with `--min-success 0.3`), `preempt` (preemption on),
    /// `preempt0.3` (on, with a least net gain of 0.3), `nopreempt` (off, the default) and
    /// `firstfree` (an attempt goes to the first worker of its model with a free slot, as before
    /// issue 20, instead of the least loaded one), `holdP` (the fleet policy's admission test at
    /// P) and `blind` (jobs plan blind: a baseline). Otherwise every
    /// job's planner sees its share of the slots and the queue ahead of it whatever the policy,
    /// as in the coordinator.
    public static func parse(_ text: String) throws -> FleetVariant {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let kind = FleetPolicyKind(rawValue: parts[0]) else {
            throw PlannerSpecError(description: "unknown policy '\(text)': expected fifo, edf or fleet, optionally :nofair, :noaging, :admitP, :holdP, :preempt, :nopreempt, :firstfree, :blind joined by '+'")
        }
        var v = FleetVariant(kind: kind)
        if parts.count == 2 {
            for s in parts[1].split(separator: "+").map(String.init) {
                switch s {
                case "nofair": v.fairShare = false
                case "noaging": v.aging = false
                case "preempt": v.preemption = true
                case "nopreempt": v.preemption = false
                case "firstfree": v.placement = .firstFree
                case "blind": v.plansBlind = true
                default:
                    if s.hasPrefix("hold"), let p = Double(s.dropFirst(4)), p >= 0, p <= 1 { v.admissionThreshold = p; continue }
                    if s.hasPrefix("preempt"), let g = Double(s.dropFirst(7)), g >= 0, g <= 1 {
                        v.preemption = true
                        v.preemptionMinGain = g
                        continue
                    }
                    if s.hasPrefix("admit"), let p = Double(s.dropFirst(5)), p >= 0, p <= 1 { v.minSuccess = p; continue }
                    if s == "aware" {
                        throw PlannerSpecError(description: "policy '\(text)': every job plans contention-aware on the real coordinator; ':aware' is gone (':blind' plans blind)")
                    }
                    throw PlannerSpecError(description: "policy '\(text)': unknown switch '\(s)'")
                }
            }
        }
        return v
    }

    public var name: String {
        var switches: [String] = []
        if !fairShare { switches.append("nofair") }
        if !aging { switches.append("noaging") }
        if let m = minSuccess { switches.append("admit\(m)") }
        if preemption { switches.append("preempt" + (preemptionMinGain.map { "\($0)" } ?? "")) }
        if placement == .firstFree { switches.append("firstfree") }
        if let h = admissionThreshold { switches.append("hold\(h)") }
        if plansBlind { switches.append("blind") }
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
    /// Workers (GPUs) each model's slots are spread over, evenly (`slotsPerModel` a multiple of it).
    public var gpusPerModel = 1
    /// How an attempt's latency grows with the attempts sharing its GPU (nil: it does not).
    public var gpuSharing: GPUSharing?
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
    /// default, ``CalibrationBackend``), or the `sim` worker backend's draw around the rows'
    /// means (``Worker/SimBackend``).
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
    /// Jobs the coordinator ended because their planner launched nothing although their budget
    /// covered an attempt (`infeasible`; a busy fleet alone never ends a job).
    public var plannerStopped: Int
    /// Jobs ended early by admission control (`--min-success`).
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
    /// Attempts that ran to their own end (succeeded or failed), and their mean seconds from
    /// dispatch to result: what GPU sharing stretches.
    public var attempts: Int = 0
    public var meanAttemptSeconds: Double = 0
    public var decisions: Int
    public var msPerDecision: Double
    /// Per job (in arrival order): succeeded.
    public var outcomes: [Bool]
    /// How the jobs ended: state → jobs (`succeeded`, `deadline_exceeded`, `budget_exhausted`, …).
    public var endStates: [String: Int] = [:]
    /// Goodput per (budget ratio, deadline ratio) cell of the job stream: where jobs fail.
    public var cells: [FleetCell] = []
    /// Per job (in arrival order): how it ended, to compare policies job by job.
    public var jobEnds: [FleetJobEnd] = []
}

/// How one job of a fleet run ended (`job_ends` in `--json`).
public struct FleetJobEnd: Sendable, Equatable {
    /// The job's DAG (index into the selected pool rows), budget ratio and deadline ratio.
    public var dag: Int
    public var budgetRatio: Double
    public var deadlineRatio: Double
    /// Its end state (`succeeded`, `deadline_exceeded`, …, or `refused`) and the coordinator's reason.
    public var state: String
    public var reason: String
    /// Seconds from submission to its end; seconds its attempts waited queued for a slot, summed.
    public var seconds: Double
    public var queuedSeconds: Double
    /// Slot-seconds its attempts held (dispatch to end).
    public var slotSeconds: Double
    /// Spent ÷ budget.
    public var spentFraction: Double
}

/// The jobs of one (budget ratio β, deadline ratio δ) cell of a fleet run, and how many succeeded.
public struct FleetCell: Sendable, Equatable {
    public var budgetRatio: Double
    public var deadlineRatio: Double
    public var jobs: Int
    public var succeeded: Int
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

/// The fleet benchmark: open-loop Poisson arrivals of pool DAGs onto a fleet, in virtual time,
/// submitted to the real coordinator — its core in its shell, its policies and planners —
/// through the simulator (``FleetRun``); nothing of the coordinator is written again here.
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
                           progress: (@Sendable (String) -> Void)? = nil) throws -> [FleetRow] {
        var list: [(FleetVariant, Double)] = []
        for load in settings.loads { for v in settings.variants { list.append((v, load)) } }
        let cases = list
        let results = Mutex<[Int: Result<FleetRow, any Error>]>([:])
        let threads = max(1, min(settings.threads, cases.count))
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var i = t
            while i < cases.count {
                let (variant, load) = cases[i]
                let specs = jobs(dags: dags, load: load, settings: settings)
                let result = Result { try FleetRun(dags: dags, variant: variant, settings: settings).run(specs, load: load) }
                results.withLock { $0[i] = result }
                if case .success(let row) = result {
                    progress?(String(format: "%@ load %.2f: goodput %.3f; %d attempts preempted (%.0f slot-s lost) for %d jobs (%d succeeded) from %d jobs (%d succeeded)",
                                     variant.name, load, row.goodput, row.preemptions, row.preemptedSeconds, row.preemptors,
                                     row.preemptorsSucceeded, row.victims, row.victimsSucceeded))
                }
                i += threads
            }
        }
        let all = results.withLock { $0 }
        return try cases.indices.compactMap { try all[$0]?.get() }
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

    /// The rows as CSV (`policy,load,jobs,goodput,ci_low,ci_high,mean_latency,p99_latency,spent_fraction,jain`).
    public static func csv(_ rows: [FleetRow]) -> String {
        var lines = ["policy,load,jobs,goodput,ci_low,ci_high,mean_latency,p99_latency,spent_fraction,jain"]
        for r in rows {
            lines.append([r.policy, fmt(r.load), String(r.jobs), fmt(r.goodput), fmt(r.ciLow), fmt(r.ciHigh),
                          fmt(r.meanLatency), fmt(r.p99Latency), fmt(r.spentFraction), fmt(r.jain)].joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }

    /// The rows as one JSON array (every field but the per-job outcomes; how each job ended is in
    /// `job_ends`).
    public static func json(_ rows: [FleetRow]) -> String {
        let objects = rows.map { r -> String in
            "{\"policy\":\"\(r.policy)\",\"load\":\(fmt(r.load)),\"jobs\":\(r.jobs),\"goodput\":\(fmt(r.goodput)),"
                + "\"ci_low\":\(fmt(r.ciLow)),\"ci_high\":\(fmt(r.ciHigh)),\"mean_latency\":\(fmt(r.meanLatency)),"
                + "\"p99_latency\":\(fmt(r.p99Latency)),\"spent_fraction\":\(fmt(r.spentFraction)),\"jain\":\(fmt(r.jain)),"
                + "\"planner_stopped\":\(r.plannerStopped),\"refused\":\(r.refused),\"preemptions\":\(r.preemptions),"
                + "\"preempted_seconds\":\(fmt(r.preemptedSeconds)),\"preemptors\":\(r.preemptors),"
                + "\"preemptors_succeeded\":\(r.preemptorsSucceeded),\"victims\":\(r.victims),"
                + "\"victims_succeeded\":\(r.victimsSucceeded),\"decisions\":\(r.decisions),"
                + "\"attempts\":\(r.attempts),\"mean_attempt_seconds\":\(fmt(r.meanAttemptSeconds)),"
                + "\"ms_per_decision\":\(fmt(r.msPerDecision)),"
                + "\"end_states\":{" + r.endStates.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",") + "},"
                + "\"cells\":[" + r.cells.map { c in
                    "{\"budget_ratio\":\(fmt(c.budgetRatio)),\"deadline_ratio\":\(fmt(c.deadlineRatio)),\"jobs\":\(c.jobs),\"succeeded\":\(c.succeeded)}"
                }.joined(separator: ",") + "],"
                + "\"job_ends\":[" + r.jobEnds.map { e in
                    "{\"dag\":\(e.dag),\"budget_ratio\":\(fmt(e.budgetRatio)),\"deadline_ratio\":\(fmt(e.deadlineRatio)),"
                        + "\"state\":\(LineLogHandler.jsonString(e.state)),\"reason\":\(LineLogHandler.jsonString(e.reason)),\"seconds\":\(fmt(e.seconds)),"
                        + "\"queued_seconds\":\(fmt(e.queuedSeconds)),\"slot_seconds\":\(fmt(e.slotSeconds)),"
                        + "\"spent_fraction\":\(fmt(e.spentFraction))}"
                }.joined(separator: ",") + "]}"
        }
        return "[" + objects.joined(separator: ",") + "]"
    }

    /// The rows as a table for a person.
    public static func table(_ rows: [FleetRow]) -> String {
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
        }
        var lines = ["policy".padding(toLength: 24, withPad: " ", startingAt: 0) + pad("load", 6) + pad("jobs", 6) + pad("goodput", 9)
            + pad("95% CI", 17) + pad("mean lat", 10) + pad("p99 lat", 10) + pad("spent", 7) + pad("jain", 7)
            + pad("stopped", 8) + pad("refused", 8) + pad("preempted", 10) + pad("attempt s", 10) + pad("ms/decision", 12)]
        for r in rows {
            lines.append(r.policy.padding(toLength: 24, withPad: " ", startingAt: 0) + pad(fmt(r.load), 6) + pad(String(r.jobs), 6)
                + pad(String(format: "%.3f", r.goodput), 9) + pad(String(format: "[%.3f, %.3f]", r.ciLow, r.ciHigh), 17)
                + pad(String(format: "%.1f", r.meanLatency), 10) + pad(String(format: "%.1f", r.p99Latency), 10)
                + pad(String(format: "%.2f", r.spentFraction), 7) + pad(String(format: "%.3f", r.jain), 7)
                + pad(String(r.plannerStopped), 8) + pad(String(r.refused), 8) + pad(String(r.preemptions), 10)
                + pad(String(format: "%.1f", r.meanAttemptSeconds), 10)
                + pad(String(format: "%.2f", r.msPerDecision), 12))
        }
        return lines.joined(separator: "\n")
    }

    static func fmt(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
        return String(format: "%.6g", x)
    }
}
