import AgentFlowCore
import Coordinator
import Store

/// Everything ends: once the faults stop, the run settles — every job ended with a reason,
/// nothing reserved, nothing but heartbeats in flight — within a bounded simulated time; a run
/// that does not says which jobs are open and what is still travelling.
struct LivenessChecker {
    /// Settled: no job open, nothing reserved, no packet in flight but heartbeats.
    static func settled(_ jobs: [JobSnapshot], workInFlight: Int) -> Bool {
        jobs.allSatisfy { $0.state.isTerminal && $0.reserved == .zero } && workInFlight == 0
    }

    /// Why the run has not settled: the open jobs, whether the coordinator is down, what is in flight.
    static func unsettled(_ jobs: [JobSnapshot]?, inFlight: String) -> String {
        let open = (jobs ?? []).filter { !$0.state.isTerminal || $0.reserved != .zero }
        var parts = open.map { "\($0.id) \($0.state.rawValue) reserved \($0.reserved.tokens)" }
        if jobs == nil { parts.append("the coordinator is down") }
        parts.append("in flight: " + (inFlight.isEmpty ? "nothing" : inFlight))
        return parts.joined(separator: "; ")
    }

    /// At the end: the coordinator is up, every job it holds ended with a reason and holds
    /// nothing, and every stored job (also those no longer in memory) ended with a reason.
    static func finalCheck(_ jobs: [JobSnapshot]?, store: Store) -> String? {
        guard let jobs else { return "the coordinator is down at the end" }
        for j in jobs {
            if !j.state.isTerminal { return "job \(j.id) never ended" }
            if j.reason.isEmpty { return "job \(j.id) ended without a reason" }
            if j.reserved != .zero { return "job \(j.id) still holds \(j.reserved.tokens) reserved tokens at the end" }
        }
        let open = (try? store.connection.query("SELECT id, state FROM jobs WHERE state IN ('queued', 'running') OR reason = ''")) ?? []
        if let o = open.first { return "stored job \(o.string(0)) is \(o.string(1)) at the end, or has no reason" }
        return nil
    }
}
