import Planner
/// What one job of a live run of the fleet benchmark did (real coordinator and worker processes,
/// `agentflow bench fleet-live`), in pool seconds.
public struct FleetLiveJob: Sendable, Equatable {
    /// Ended `succeeded`: every subtask passed within budget and deadline.
    public var succeeded: Bool
    /// Pool seconds from submission to the job's end.
    public var latency: Double
    /// Spent ÷ budget (USD).
    public var spentFraction: Double

    public init(succeeded: Bool, latency: Double, spentFraction: Double) {
        self.succeeded = succeeded
        self.latency = latency
        self.spentFraction = spentFraction
    }
}

extension FleetBenchmark {
    /// The benchmark's row for a live run, with the definitions of ``FleetSimulator``'s summary:
    /// goodput over all jobs with the same bootstrap, latencies over the jobs that succeeded,
    /// Jain's index of slot-seconds (`usage`, per tenant) per unit of weight.
    public static func liveRow(policy: String, load: Double, jobs: [FleetLiveJob], usage: [String: Double],
                               weights: [String: Double]) -> FleetRow {
        let outcomes = jobs.map(\.succeeded)
        let latencies = jobs.filter(\.succeeded).map(\.latency).sorted()
        let (low, high) = bootstrap(outcomes)
        let n = Double(max(jobs.count, 1))
        let p99 = latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int((0.99 * Double(latencies.count)).rounded(.up)) - 1)]
        var w = weights
        for t in usage.keys where w[t] == nil { w[t] = 1 }
        return FleetRow(
            policy: policy, load: load, jobs: jobs.count, goodput: Double(outcomes.filter { $0 }.count) / n,
            ciLow: low, ciHigh: high,
            meanLatency: latencies.isEmpty ? 0 : latencies.reduce(0, +) / Double(latencies.count), p99Latency: p99,
            spentFraction: jobs.reduce(0) { $0 + $1.spentFraction } / n,
            jain: jainIndex(usage: usage, weights: w.filter { usage[$0.key] != nil }),
            tenantUsage: usage, endedBusy: 0, refused: 0, decisions: 0, msPerDecision: 0, outcomes: outcomes)
    }
}
