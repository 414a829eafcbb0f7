import AgentFlowCore
import Foundation
import Planner

/// A simulated model. Success, tokens and latency are drawn from the attempt's
/// `Estimate` (the workflow's estimates), seeded per attempt; latency is the drawn
/// seconds × `timeScale`. It holds no thread: the outcome is computed at once and its delivery
/// delayed. It honours the token cap (a draw above it ends `cap_reached` at the cap) and the
/// deadline (ends `deadline` with the tokens used up to then), and stops early when cancelled.
public struct SimBackend: AttemptBackend {
    public var timeScale: Double
    public var seed: UInt64
    let time: any TimeSource

    public init(timeScale: Double, seed: UInt64, time: any TimeSource = SystemTime()) {
        self.timeScale = timeScale
        self.seed = seed
        self.time = time
    }

    /// Splits simulated tokens over two roles, as the real scaffold would (agent, then corrector),
    /// so per-role accounting is exercised by every simulated run.
    static func usage(_ tokens: Int) -> [TokenUsage] {
        let agent = tokens - tokens / 5
        let corrector = tokens - agent
        return [TokenUsage(role: .agent, input: agent * 3 / 10, output: agent - agent * 3 / 10),
                TokenUsage(role: .corrector, input: corrector / 2, output: corrector - corrector / 2)]
    }

    public func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle {
        let now = time.monotonic
        let behaviour = spec.simulated ?? .prior
        var rng = SplitMix64(seed: spec.seed ^ seed)
        // Log-normal spread around the estimate (σ = 0.25, mean preserved).
        let draw = SimulatedDraw.draw(success: behaviour.success, tokens: behaviour.tokens, seconds: behaviour.seconds, rng: &rng)
        let (passed, tokens, seconds) = (draw.passed, draw.tokens, draw.seconds)
        let (end, used, delay) = SimulatedAttempt.limited(end: passed ? .succeeded : .failed, tokens: tokens, delay: seconds * timeScale,
                                                          cap: spec.tokenCap, left: spec.deadline.seconds - now)
        var outcome = AttemptOutcome(
            end: end, usage: SimBackend.usage(used), output: end == .succeeded ? "# simulated solution for \(spec.id.subtask)\n" : nil,
            detail: "simulated", seconds: delay / max(timeScale, 1e-12) * (timeScale == 0 ? 0 : 1))
        if let judge = spec.work?.judge, end == .succeeded || end == .failed {
            outcome.judgement = Judgement(score: end == .succeeded ? 1 : 0, passed: end == .succeeded, reason: "simulated judge of \(judge.judged)")
        } else if end == .succeeded, let work = spec.work {
            let made = SimOutputs.make(for: spec, work: work)
            outcome.output = made.text
            outcome.outputs = made.bundle
        }
        let handle = SimulatedAttempt.Handle(id: spec.id, events: events, started: now, delay: delay, tokens: used, time: time,
                                             usage: SimBackend.usage)
        events.finish(spec.id, outcome, after: delay)
        return handle
    }
}
