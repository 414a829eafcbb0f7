import Foundation

/// When a job whose deadline is at risk may take a slot from another job's running attempt
/// (`scheduling.preemption` in cluster.yaml, `agentflow coordinator --preemption`,
/// `fleet:preempt` in `agentflow bench fleet`). Pure: the coordinator and the benchmark both call
/// ``FleetPolicy/preemptions(jobs:waiting:running:freeSlots:now:rules:preemptedAt:)``.
public struct PreemptionRules: Sendable, Equatable {
    /// Least net gain in success probability (the waiting job's gain less the victim job's loss)
    /// that justifies cancelling a running attempt.
    public var minGain: Double
    /// A victim attempt has run at most this fraction of its expected length (work done is lost).
    public var maxProgress: Double
    /// Seconds after one of its attempts was preempted during which a job neither preempts nor is
    /// preempted again (no ping-pong).
    public var cooldown: Double

    public init(minGain: Double = 0.1, maxProgress: Double = 0.5, cooldown: Double = 60) {
        self.minGain = minGain
        self.maxProgress = maxProgress
        self.cooldown = cooldown
    }
}

/// A running attempt, as preemption sees it.
public struct RunningAttemptView: Sendable, Equatable {
    /// Index of its job in the `jobs` given to ``FleetPolicy/preemptions(jobs:waiting:running:freeSlots:now:rules:preemptedAt:)``.
    public var job: Int
    public var model: Int
    public var startedAt: Double
    /// Expected seconds of the attempt (the model's mean attempt length, or the node's estimate).
    public var expectedSeconds: Double
    /// False for an attempt that re-runs a preempted one (a subtask is preempted at most once).
    public var preemptible: Bool

    public init(job: Int, model: Int, startedAt: Double, expectedSeconds: Double, preemptible: Bool = true) {
        self.job = job
        self.model = model
        self.startedAt = startedAt
        self.expectedSeconds = expectedSeconds
        self.preemptible = preemptible
    }
}

/// A job with attempts queued for a model, as preemption sees it.
public struct WaitingJobView: Sendable, Equatable {
    public var job: Int
    public var model: Int
    /// Attempts queued for the model by jobs the policy serves before this one.
    public var queuedAhead: Int

    public init(job: Int, model: Int, queuedAhead: Int = 0) {
        self.job = job
        self.model = model
        self.queuedAhead = queuedAhead
    }
}

/// One decision: cancel running attempt `victim` (index into `running`) so that job `job` gets its slot.
public struct Preemption: Sendable, Equatable {
    public var job: Int
    public var victim: Int
    /// The waiting job's gain in success probability, and what the victim's job loses.
    public var gain: Double
    public var loss: Double
}

extension FleetPolicy {
    /// Seconds until a slot of a model frees for a job with `ahead` attempts in front of it: the
    /// `ahead`-th earliest expected end among the running attempts (an attempt past its expected
    /// length is expected to need a tenth of it more), then whole rounds of the mean length.
    static func slotWait(remaining: [Double], ahead: Int, meanSeconds: Double) -> Double {
        guard !remaining.isEmpty else { return 0 }
        let sorted = remaining.sorted()
        if ahead < sorted.count { return sorted[ahead] }
        let rounds = Double(ahead / sorted.count)
        return sorted[ahead % sorted.count] + rounds * meanSeconds
    }

    /// Which running attempts to cancel, and for which waiting job. A job qualifies when no slot
    /// of the model is free, a freed slot would reach it (no attempt queued ahead of it on the
    /// model that this round has not already freed a slot for), its deadline slack is below what
    /// waiting for a slot costs, and starting now rather than after the wait raises its success
    /// probability by at least `rules.minGain` more than the victim's job loses (its attempt's
    /// work so far, redone after one attempt of the waiting job). The victim is a preemptible
    /// attempt on that model, of a job of no higher priority that the policy ranks strictly below
    /// the waiting one, that has run at most `rules.maxProgress` of its expected length; among
    /// those, the one with the best net gain, then the least work done. Jobs preempted within
    /// `rules.cooldown` seconds neither preempt nor lose another attempt (`preemptedAt`: job
    /// index → when one of its attempts was last preempted); each job and each attempt appears
    /// at most once.
    public func preemptions(jobs: [FleetJobView], waiting: [WaitingJobView], running: [RunningAttemptView],
                            freeSlots: [Int: Int], now: Double, rules: PreemptionRules,
                            preemptedAt: [Int: Double] = [:]) -> [Preemption] {
        guard !waiting.isEmpty, !running.isEmpty else { return [] }
        let order = rank(jobs, now: now)
        var place = [Int](repeating: Int.max, count: jobs.count)
        for (p, j) in order.enumerated() { place[j] = p }
        func recentlyPreempted(_ j: Int) -> Bool {
            guard let at = preemptedAt[j] else { return false }
            return now - at < rules.cooldown
        }
        var remaining: [Int: [Double]] = [:]
        var meanSeconds: [Int: Double] = [:]
        for a in running {
            let left = max(a.expectedSeconds - (now - a.startedAt), 0.1 * a.expectedSeconds)
            remaining[a.model, default: []].append(left)
            meanSeconds[a.model, default: 0] += a.expectedSeconds
        }
        for (m, total) in meanSeconds { meanSeconds[m] = total / Double(remaining[m]?.count ?? 1) }
        var taken = Set<Int>()
        var served = Set<Int>()
        // Slots this round has freed per model: they go to the queued attempts in the policy's order.
        var freed: [Int: Int] = [:]
        var out: [Preemption] = []
        // Most urgent first: the policy's order.
        for w in waiting.sorted(by: { (place[$0.job], $0.model) < (place[$1.job], $1.model) }) {
            guard !served.contains(w.job), (freeSlots[w.model] ?? 0) <= 0, jobs.indices.contains(w.job) else { continue }
            // A freed slot goes to the first queued attempt: only the job it would reach may preempt.
            guard max(0, w.queuedAhead) <= freed[w.model, default: 0], !recentlyPreempted(w.job) else { continue }
            let me = jobs[w.job]
            let o = me.outlook
            let wait = Self.slotWait(remaining: remaining[w.model] ?? [], ahead: max(0, w.queuedAhead), meanSeconds: meanSeconds[w.model] ?? 0)
            // At risk: the slack left is less than the wait for a slot.
            guard o.slack < wait else { continue }
            let gain = o.success - o.success(afterDelay: wait)
            guard gain >= rules.minGain else { continue }
            var best: (index: Int, net: Double, loss: Double, elapsed: Double)?
            for (i, a) in running.enumerated() where a.model == w.model && a.preemptible && !taken.contains(i) {
                guard jobs.indices.contains(a.job), a.job != w.job else { continue }
                let victim = jobs[a.job]
                guard victim.priority <= me.priority, place[a.job] > place[w.job] else { continue }
                guard !recentlyPreempted(a.job) else { continue }
                let elapsed = max(0, now - a.startedAt)
                guard a.expectedSeconds > 0, elapsed <= rules.maxProgress * a.expectedSeconds else { continue }
                let lost = elapsed + max(o.attemptSeconds, 0)
                let loss = max(0, victim.outlook.success - victim.outlook.success(afterDelay: lost))
                let net = gain - loss
                guard net >= rules.minGain else { continue }
                if best == nil || net > best!.net + 1e-12 || (abs(net - best!.net) <= 1e-12 && elapsed < best!.elapsed) {
                    best = (i, net, loss, elapsed)
                }
            }
            guard let best else { continue }
            taken.insert(best.index)
            served.insert(w.job)
            freed[w.model, default: 0] += 1
            out.append(Preemption(job: w.job, victim: best.index, gain: gain, loss: best.loss))
        }
        return out
    }
}
