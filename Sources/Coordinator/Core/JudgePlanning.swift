import AgentFlowCore
import Foundation
import Planner

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
    static func estimate(_ estimate: PairEstimate, judge: ModelSpec?, judged: ModelSpec, usd: Bool) -> PairEstimate {
        let scale = tokenScale(judge: judge, judged: judged, usd: usd)
        return PairEstimate(success: estimate.success, tokens: estimate.tokens + prior.tokens * scale,
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
