import AgentFlowCore
import Synchronization

/// An attempt whose outcome a simulated backend knows at once and delivers later (the `sim`
/// backend's draws, the benchmarks' calibration rows): the rules both follow for the token cap,
/// the deadline and a cancel.
public enum SimulatedAttempt {
    /// The end, tokens and delay of an attempt that would end `end` after using `tokens` over
    /// `delay` seconds, held to the token cap (`capReached` at the cap, the delay scaled down)
    /// and to the `left` seconds until its deadline (`deadline` with the tokens used until then).
    public static func limited(end: AttemptEnd, tokens: Int, delay: Double, cap: Int, left: Double) -> (end: AttemptEnd, tokens: Int, delay: Double) {
        var (end, used, delay) = (end, tokens, delay)
        if used > cap {
            end = .capReached
            delay *= Double(cap) / Double(max(used, 1))
            used = cap
        }
        if delay > left {
            end = .deadline
            used = Int((Double(used) * max(0, left) / max(delay, 1e-9)).rounded(.down))
            delay = max(0, left)
        }
        return (end, used, delay)
    }

    /// The handle of such an attempt: cancelled before its outcome is delivered, it finishes at
    /// once as `cancelled`, charged the share of its tokens for the time it ran, split over the
    /// scaffold's roles by `usage` (the same split its outcome uses).
    public final class Handle: AttemptHandle {
        let id: AttemptID
        let events: any AttemptEvents
        let started: Double
        let delay: Double
        let tokens: Int
        let time: any TimeSource
        let usage: @Sendable (Int) -> [TokenUsage]
        let finished = Atomic<Bool>(false)

        public init(id: AttemptID, events: any AttemptEvents, started: Double, delay: Double, tokens: Int, time: any TimeSource,
                    usage: @escaping @Sendable (Int) -> [TokenUsage]) {
            self.id = id
            self.events = events
            self.started = started
            self.delay = delay
            self.tokens = tokens
            self.time = time
            self.usage = usage
        }

        public func cancel() {
            guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
            let fraction = delay > 0 ? min(1, max(0, (time.monotonic - started) / delay)) : 1
            let used = Int((Double(tokens) * fraction).rounded())
            events.finish(id, AttemptOutcome(end: .cancelled, usage: usage(used), detail: "cancelled", seconds: time.monotonic - started), after: 0)
        }
    }
}
