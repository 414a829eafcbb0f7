import AgentFlowCore
import Foundation
import Planner
import Store

/// What planning expects of a judged subtask (`judge:`, DESIGN.md §3). Such a subtask is done
/// only after a judge attempt agrees, and that attempt is reserved and charged to the job like
/// any other; so one attempt of it, as the planner sees it, costs the agent's tokens plus the
/// judge's, takes the agent's time plus the judge's, and its worst case includes the judge's cap.
/// MCPP then plans every kind alike: a judged subtask simply costs more.
///
/// The planner prices a pair's tokens at the pair's model. Judge tokens are priced at the judge
/// model, so under a USD limit they are counted in the judged model's tokens scaled by the ratio
/// of the dearer prices when the judge is dearer (right on the USD axis, over on the token axis);
/// otherwise one for one (right on the token axis, over on the USD axis when the judge is
/// cheaper): never under on an axis the job is limited on.
enum JudgePlanning {
    /// What one judge attempt is assumed to use before any is observed (the judged result, the
    /// rubric and a short verdict; the judge's own cap is ``CoordinatorCore/judgeTokenCap``).
    static let prior = Estimate(success: 1, tokens: 1000, seconds: 5)

    /// How many of `judged`'s tokens one token of `judge` counts as (≥ 1; 1 without a USD limit).
    /// A judge model the cluster does not know counts one for one.
    static func tokenScale(judge: ModelSpec?, judged: ModelSpec, usd: Bool) -> Double {
        guard usd, let judge else { return 1 }
        let a = max(judge.priceInput, judge.priceOutput), b = max(judged.priceInput, judged.priceOutput)
        guard a.isFinite, b.isFinite, a > b else { return 1 }
        // A free judged model with a priced judge: no finite ratio covers the USD axis; the
        // reservation of the judge itself still does.
        return b > 0 ? a / b : 1
    }

    /// `estimate` of an attempt of a subtask judged on `judge`, run on `judged`, with the judge added.
    static func estimate(_ estimate: Estimate, judge: ModelSpec?, judged: ModelSpec, usd: Bool) -> Estimate {
        let scale = tokenScale(judge: judge, judged: judged, usd: usd)
        return Estimate(success: estimate.success, tokens: estimate.tokens + prior.tokens * scale,
                            seconds: estimate.seconds + prior.seconds)
    }

    /// The planning worst case of such an attempt. The agent's reservation is settled (charged
    /// what it used) before the judge's is made, so the two are never held at once: what must be
    /// left for the subtask to pass is the agent's expected use plus the judge's whole cap, and
    /// never less than the agent's own cap (what its launch reserves).
    static func tokenCap(_ cap: Int, expected: Double, judge: ModelSpec?, judged: ModelSpec, usd: Bool) -> Int {
        let agent = expected.isFinite ? min(max(expected, 0), Double(cap)).rounded(.up) : Double(cap)
        let judgeCap = Double(CoordinatorCore.judgeTokenCap) * tokenScale(judge: judge, judged: judged, usd: usd)
        return max(cap, Int(min(agent + judgeCap, Double(Int.max / 2))))
    }

    /// A finished judge's usage in the judged model's tokens (what the estimates learn).
    static func observedTokens(judgeTokens: Int, judge: ModelSpec?, judged: ModelSpec, usd: Bool) -> Int {
        let t = (Double(max(judgeTokens, 0)) * tokenScale(judge: judge, judged: judged, usd: usd)).rounded(.up)
        return Int(min(t, Double(Int.max / 2)))
    }
}

extension JudgePlanning {
    /// What the estimates learn from a workflow's stored attempts, read the way a live job
    /// learns them: a judged attempt (`…; judged by #M on …`) is one observation with its
    /// judge's verdict as its pass and the judge's tokens and time added; a judge attempt is
    /// no observation of its own (it is not agent work on the judge model); a judged attempt
    /// whose judge never finished teaches nothing. Everything else is as stored.
    static func observations(_ rows: [AttemptRecord]) -> [(subtask: String, model: String, passed: Bool, tokens: Int, seconds: Double)] {
        var judges: [AttemptID: AttemptRecord] = [:]
        for r in rows where r.detail.hasPrefix(CoordinatorCore.judgeDetailPrefix) { judges[r.id] = r }
        return rows.compactMap { r in
            if r.detail.hasPrefix(CoordinatorCore.judgeDetailPrefix) { return nil }
            // Passed its own checks but the budget could not pay for a judge: a failure, as live.
            if r.detail.contains("; not judged: ") { return (r.id.subtask, r.model, false, r.tokens, r.seconds) }
            guard let m = judgedBy(r.detail) else { return (r.id.subtask, r.model, r.passed, r.tokens, r.seconds) }
            guard let judge = judges[AttemptID(job: r.id.job, subtask: r.id.subtask, n: m)] else { return nil }
            let (tokens, overflow) = r.tokens.addingReportingOverflow(max(judge.tokens, 0))
            return (r.id.subtask, r.model, judge.passed, overflow ? Int.max : tokens, r.seconds + max(judge.seconds, 0))
        }
    }

    /// N of `…; judged by #N on MODEL` in a judged attempt's detail.
    static func judgedBy(_ detail: String) -> Int? {
        guard let range = detail.range(of: "; judged by #", options: .backwards) else { return nil }
        return Int(detail[range.upperBound...].prefix { $0.isNumber })
    }
}
