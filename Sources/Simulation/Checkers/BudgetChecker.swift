import AgentFlowCore
import Coordinator

/// Budgets are promises: for every job the core holds, `spent + reserved ≤ limit` on both
/// axes and its reservations add up; once a job has ended, its spend may only settle what it
/// held at that moment (attempts still in flight report), never grow past it.
struct BudgetChecker {
    /// For a job seen ended: spent + reserved at that moment.
    private var endBound: [String: Amount] = [:]

    mutating func check(_ jobs: [JobSnapshot]) -> String? {
        for j in jobs {
            if !j.consistent {
                return "job \(j.id): ledger inconsistent (spent \(j.spent), reserved \(j.reserved), limits \(String(describing: j.limitTokens)) tokens / \(String(describing: j.limitUSD)))"
            }
            if let l = j.limitTokens, j.spent.tokens + j.reserved.tokens > l {
                return "job \(j.id): tokens spent+reserved \(j.spent.tokens + j.reserved.tokens) > \(l)"
            }
            if let l = j.limitUSD, j.spent.usd + j.reserved.usd > l {
                return "job \(j.id): usd spent+reserved \(j.spent.usd.value + j.reserved.usd.value) > \(l.value)"
            }
            guard j.state.isTerminal else { continue }
            if j.reason.isEmpty { return "job \(j.id) ended \(j.state.rawValue) without a reason" }
            let held = Amount(tokens: j.spent.tokens + j.reserved.tokens, usd: j.spent.usd + j.reserved.usd)
            if let bound = endBound[j.id] {
                if held.tokens > bound.tokens || held.usd > bound.usd {
                    return "job \(j.id): after it ended its spend+reserved grew from \(bound) to \(held.tokens) tokens"
                }
            } else {
                endBound[j.id] = held
            }
        }
        return nil
    }
}
