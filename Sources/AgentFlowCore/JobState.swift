/// Job states (DESIGN.md §2): `queued → running → succeeded | failed | cancelled |
/// deadline_exceeded | budget_exhausted | infeasible`.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled
    case deadlineExceeded = "deadline_exceeded"
    case budgetExhausted = "budget_exhausted"
    case infeasible

    public var isTerminal: Bool {
        switch self {
        case .queued, .running: return false
        default: return true
        }
    }
}

/// Subtask states within a job.
public enum SubtaskState: String, Codable, Sendable {
    /// Waiting for its needs.
    case pending
    /// Needs done; waiting for the planner or a slot.
    case ready
    /// Has attempts in flight.
    case running
    case succeeded
    case failed
    /// The job ended before it finished.
    case abandoned
}

/// Attempt states as stored.
public enum AttemptState: String, Codable, Sendable {
    /// Reserved, waiting for a free slot of its model.
    case queued
    /// Sent to a worker.
    case dispatched
    case succeeded, failed
    /// Its worker died or its result never came: charged in full.
    case lost
    case cancelled
}
