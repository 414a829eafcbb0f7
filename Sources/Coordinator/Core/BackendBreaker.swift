import AgentFlowCore
import Foundation
import Wire

/// A circuit breaker on a worker's model server. Attempts that end in an error having used no
/// tokens (the server refuses connections, answers 5xx, or is gone) are the backend's fault, not
/// the task's: after ``threshold`` in a row the worker gets no attempts for a cooldown (2 s,
/// doubling to 30 s), then one round to try again; any attempt that reaches the model closes it.
/// Without it, a job whose server is down would burn through attempts until its deadline.
/// A refused key (HTTP 401/403) opens it at the first such error: the next try sends the same key.
struct BackendBreaker {
    static let threshold = 3
    static let longestCooldown: Duration = .seconds(30)
    var failuresInARow = 0
    var trips = 0
    var suspendedUntil: MonotonicInstant?
    /// The last failure, for the job's reason and `agentflow workers`.
    var problem: String?

    /// Records how an attempt on this worker ended; true when the breaker has just opened.
    mutating func record(end: AttemptEnd, tokens: Int, detail: String, now: MonotonicInstant) -> Bool {
        switch end {
        case .cancelled:
            return false
        case .error where tokens == 0:
            failuresInARow += 1
            problem = detail
            let refusedKey = BackendProblem.kind(detail) == .refusedKey
            guard failuresInARow >= Self.threshold || refusedKey, suspendedUntil == nil else { return false }
            trips += 1
            suspendedUntil = now + min(Self.longestCooldown, .clampedSeconds(2 * pow(2, Double(trips - 1))))
            return true
        default:
            self = BackendBreaker()
            return false
        }
    }
}
