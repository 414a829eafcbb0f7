import Foundation

/// Which job's queued attempt gets a freed worker slot (`scheduling: {policy: …}` in cluster.yaml,
/// `agentflow coordinator --policy`).
public enum FleetPolicyKind: String, Sendable, CaseIterable, Codable {
    /// Priority, then submission time (first come, first served).
    case fifo
    /// Priority, then earliest deadline.
    case edf
    /// Priority, deadline slack and the marginal gain in the probability of finishing by the
    /// deadline per slot-second, with aging and weighted fair share between tenants.
    case fleet
}

/// What the cross-job policy knows of one job that has attempts waiting for slots.
public struct FleetJobView: Sendable, Equatable {
    public var id: String
    public var tenant: String
    public var priority: Int
    public var submittedAt: Double
    /// Absolute deadline.
    public var deadline: Double
    /// When the job's oldest waiting attempt was queued.
    public var waitingSince: Double
    public var outlook: FleetOutlook
    /// The job has had a slot (it is `running`); a job not yet admitted has not.
    public var admitted: Bool
    /// Seconds the job's next attempt is expected to queue behind the admitted jobs' attempts
    /// before a slot frees (what admission weighs its outlook against).
    public var startWait: Double
    /// Seconds the job's attempts wait if it is passed over now: the queueing delay in front of
    /// the soonest of the models it has queued for (`nil`: not known, ``FleetPolicy/defaultDelay``).
    public var queueDelay: Double?

    public init(id: String, tenant: String = "default", priority: Int = 0, submittedAt: Double, deadline: Double,
                waitingSince: Double, outlook: FleetOutlook, admitted: Bool = true, startWait: Double = 0, queueDelay: Double? = nil) {
        self.id = id
        self.tenant = tenant
        self.priority = priority
        self.submittedAt = submittedAt
        self.deadline = deadline
        self.waitingSince = waitingSince
        self.outlook = outlook
        self.admitted = admitted
        self.startWait = startWait
        self.queueDelay = queueDelay
    }
}

/// A cross-job dispatch policy. Pure: the coordinator and `agentflow bench fleet` both call it.
public struct FleetPolicy: Sendable, Equatable {
    public var kind: FleetPolicyKind
    /// Tenant → weight of its fair share (missing: 1).
    public var tenantWeights: [String: Double]
    /// Fleet: a job's score doubles for every `agingSeconds` it has waited (no starvation).
    public var agingSeconds: Double
    /// Fleet: weighted fair share between tenants (the tenant furthest below its share goes first).
    public var fairShare: Bool
    /// Fleet: the delay a job is charged for being passed over (seconds), when neither the caller
    /// nor the job's view (``FleetJobView/queueDelay``) knows the queueing delay in front of its
    /// models.
    public var defaultDelay: Double
    /// Fleet: a job not yet admitted whose outlook, started after the wait in front of it
    /// (``FleetJobView/startWait``), is below this probability is held back: ranked after every
    /// job that is admitted or can still make it, so slots go to jobs that can finish by their
    /// deadline. It is not ended (DESIGN §10): it takes slots nobody else wants, climbs by aging,
    /// and is weighed again each round as the queue drains. `nil`: no admission test.
    public var admissionThreshold: Double?

    public init(kind: FleetPolicyKind, tenantWeights: [String: Double] = [:], agingSeconds: Double = 300,
                fairShare: Bool = true, defaultDelay: Double = 30, admissionThreshold: Double? = nil) {
        self.kind = kind
        self.tenantWeights = tenantWeights
        self.agingSeconds = agingSeconds
        self.fairShare = fairShare
        self.defaultDelay = defaultDelay
        self.admissionThreshold = admissionThreshold
    }

    /// Fleet: what a held job's score loses (more than the whole range of gains, so it goes after
    /// every job that is not held, until aging lifts it: 32 × `agingSeconds` / ln 2 of waiting).
    public static let heldPenalty = 32.0

    /// Whether admission holds `job` back (not admitted, and its outlook after the wait in front
    /// of it is below ``admissionThreshold``).
    public func holds(_ job: FleetJobView) -> Bool {
        guard kind == .fleet, let t = admissionThreshold, !job.admitted else { return false }
        guard !job.startWait.isNaN else { return false }
        let wait = job.startWait.isFinite ? max(0, job.startWait) : Double.greatestFiniteMagnitude
        return job.outlook.success(afterDelay: wait) < t
    }

    public func weight(of tenant: String) -> Double {
        let w = tenantWeights[tenant] ?? 1
        return w.isFinite && w > 0 ? w : 1
    }

    /// The fleet policy's score of a job, as a logarithm (larger goes first): the marginal gain in
    /// its probability of finishing by the deadline per slot-second if it is served now rather
    /// than after the delay it would wait if passed over (`delay`, else the view's
    /// ``FleetJobView/queueDelay``, else ``defaultDelay``; at least one attempt of its own), plus
    /// its average gain per slot-second (that probability over the slot-seconds it still needs);
    /// each priority level outweighs any such value; doubled per `agingSeconds` waited.
    ///
    /// The delay is the real one: with slots free and no queue, passing a job over costs it about
    /// one attempt, so jobs that do the most per slot-second go first; behind a long queue the
    /// jobs whose deadline the wait would cost go first. (A fixed 30 s charged every job the same
    /// whatever the queue; docs/benchmarks.md, "The fleet score charges the real queueing delay".)
    ///
    /// The outlook's budget probability is left out: when a job gets its slots does not change
    /// what its attempts cost, and its own planner fits them to what is left of its budget
    /// (choosing cheaper models than the fastest ones the outlook prices). Weighing it put jobs
    /// with half their nominal budget behind the others though they succeed about as often
    /// (docs/benchmarks.md, "The fleet order ranks on time").
    public func fleetScore(_ job: FleetJobView, now: Double, delay: Double? = nil) -> Double {
        let o = job.outlook
        let known = job.queueDelay.flatMap { $0.isFinite && $0 >= 0 ? $0 : nil }
        let d = max(delay ?? known ?? defaultDelay, o.attemptSeconds, 1e-3)
        let p0 = o.onTime()
        let gain = max(0, p0 - o.onTime(afterDelay: d)) / max(o.attemptSeconds, 1e-3)
        let density = p0 / max(o.slotSeconds, 1e-3)
        // Values span [1e-6, ~1], so 16 per priority level puts every higher-priority job first
        // (until aging: a job that waited 23 × agingSeconds has climbed one level).
        // An outlook with NaN in it (nothing known) ranks as hopeless, so the order stays total.
        let raw = gain + density
        let value = raw.isNaN ? 1e-6 : min(max(raw, 1e-6), 1e3)
        let aged = max(0, now - job.waitingSince) / max(agingSeconds, 1e-9)
        return log(value) + Double(max(-64, min(64, job.priority))) * 16 + aged * log(2.0) - (holds(job) ? Self.heldPenalty : 0)
    }

    /// Jobs in the policy's order (indices into `jobs`), best first, ignoring fair share.
    public func rank(_ jobs: [FleetJobView], now: Double, delay: Double? = nil) -> [Int] {
        let scores = scores(jobs, now: now, delay: delay)
        return jobs.indices.sorted { a, b in
            precedes(jobs[a], scores.isEmpty ? 0 : scores[a], jobs[b], scores.isEmpty ? 0 : scores[b])
        }
    }

    /// The fleet score of each job at `now` (empty for `fifo` and `edf`, which need none).
    public func scores(_ jobs: [FleetJobView], now: Double, delay: Double? = nil) -> [Double] {
        kind == .fleet ? jobs.map { fleetScore($0, now: now, delay: delay) } : []
    }

    /// Whether the policy serves job `x` (fleet score `sx`) before job `y` (score `sy`): a strict
    /// total order, so a rank kept as jobs arrive (binary-searched) is the one `rank` would sort.
    public func precedes(_ x: FleetJobView, _ sx: Double, _ y: FleetJobView, _ sy: Double) -> Bool {
        switch kind {
        case .fifo:
            if x.priority != y.priority { return x.priority > y.priority }
            if x.submittedAt != y.submittedAt { return x.submittedAt < y.submittedAt }
            return x.id < y.id
        case .edf:
            if x.priority != y.priority { return x.priority > y.priority }
            if x.deadline != y.deadline { return x.deadline < y.deadline }
            if x.submittedAt != y.submittedAt { return x.submittedAt < y.submittedAt }
            return x.id < y.id
        case .fleet:
            if sx != sy { return sx > sy }
            if x.deadline != y.deadline { return x.deadline < y.deadline }
            return x.id < y.id
        }
    }

    /// How much a waiting job's fleet score grows per second (aging): every waiting job's grows
    /// alike, so scores taken at different times compare after this shift.
    public var agingPerSecond: Double { log(2.0) / max(agingSeconds, 1e-9) }

    /// One dispatch round: which job's attempt gets each freed slot. `usage[tenant]`: slot-seconds
    /// the tenant has used so far (finished attempts, plus what its running attempts have run).
    public func dispatchOrder(_ jobs: [FleetJobView], now: Double, usage: [String: Double], delay: Double? = nil) -> DispatchOrder {
        DispatchOrder(policy: self, ranked: rank(jobs, now: now, delay: delay), jobs: jobs, usage: usage)
    }
}

/// Serves freed slots one at a time in a policy's order. With the fleet policy's fair share, each
/// slot goes to the tenant with the least slot-seconds per unit of weight among those with an
/// eligible job (counting what this round already gave it), and within the tenant to its best job.
public struct DispatchOrder: Sendable {
    public let policy: FleetPolicy
    /// Job indices, best first.
    public private(set) var ranked: [Int]
    let tenants: [String]
    var usage: [String: Double]

    /// Whether slots go by tenants' fair share: the fleet policy with it on, and more than one
    /// tenant among the jobs (fixed for the round; `next` asks for every slot).
    let usesFairShare: Bool

    init(policy: FleetPolicy, ranked: [Int], jobs: [FleetJobView], usage: [String: Double]) {
        self.policy = policy
        self.ranked = ranked
        let tenants = jobs.map(\.tenant)
        self.tenants = tenants
        self.usage = usage
        usesFairShare = policy.kind == .fleet && policy.fairShare && tenants.contains { $0 != tenants.first }
    }

    /// The next job to serve among those for which `eligible` holds (it has an attempt waiting
    /// for a model with a free slot); `nil` when none is eligible.
    public func next(where eligible: (Int) -> Bool) -> Int? {
        guard usesFairShare else { return ranked.first(where: eligible) }
        var bestTenant: String?
        var bestLoad = Double.infinity
        var bestJob: Int?
        var seen = Set<String>()
        for j in ranked {
            let t = tenants[j]
            guard !seen.contains(t), eligible(j) else { continue }
            seen.insert(t)
            let load = (usage[t] ?? 0) / policy.weight(of: t)
            if load < bestLoad || (load == bestLoad && bestTenant.map { t < $0 } ?? true) {
                bestLoad = load
                bestTenant = t
                bestJob = j
            }
        }
        return bestJob
    }

    /// Keeps only the jobs for which `eligible` holds, in their order. For a predicate that can
    /// only turn false during a round (a job with no attempt for a model with a free slot gets
    /// none later in it), `next` then picks as it would have, walking only these: a full round
    /// ranks every waiting job, and each slot walked all 10,000 of them when the jobs that could
    /// take it ranked last.
    public mutating func keep(where eligible: (Int) -> Bool) {
        ranked.removeAll { !eligible($0) }
    }

    /// Records that job `j` was given a slot for about `seconds` (so the next pick sees it).
    public mutating func charge(_ j: Int, seconds: Double) {
        usage[tenants[j], default: 0] += max(seconds, 0)
    }
}

/// Jain's fairness index of slot-seconds per unit of weight: 1 when every tenant got exactly its
/// weighted share, 1/n when one tenant got everything.
public func jainIndex(usage: [String: Double], weights: [String: Double] = [:]) -> Double {
    let x = usage.map { t, u in u / max(weights[t] ?? 1, 1e-12) }
    guard !x.isEmpty else { return 1 }
    let sum = x.reduce(0, +), squares = x.reduce(0) { $0 + $1 * $1 }
    return squares > 0 ? sum * sum / (Double(x.count) * squares) : 1
}
