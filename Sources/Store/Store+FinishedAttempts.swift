import Foundation

/// One finished attempt of a workflow's jobs, with what pairs a judged attempt with its judge
/// (its job, number and detail: `judged by #N on M`, `judge of #N: …`).
public struct FinishedAttemptRow: Sendable, Equatable {
    public var job: String
    public var subtask: String
    public var n: Int
    public var model: String
    public var passed: Bool
    public var tokens: Int
    public var seconds: Double
    public var detail: String

    public init(job: String, subtask: String, n: Int, model: String, passed: Bool, tokens: Int, seconds: Double, detail: String) {
        self.job = job
        self.subtask = subtask
        self.n = n
        self.model = model
        self.passed = passed
        self.tokens = tokens
        self.seconds = seconds
        self.detail = detail
    }
}

extension Store {
    /// Finished attempts of every job of a workflow, oldest first, with job, number and detail
    /// (``finishedAttempts(workflow:)`` with what judged subtasks need to be read right).
    public func finishedAttemptRows(workflow: String) throws -> [FinishedAttemptRow] {
        try connection.query(
            """
            SELECT a.job, a.subtask, a.n, a.model, a.state = 'succeeded', a.tokens_in + a.tokens_out, a.ended_at - a.dispatched_at, a.detail
            FROM attempts a JOIN jobs j ON j.id = a.job
            WHERE j.workflow = ? AND a.state IN ('succeeded', 'failed') AND a.dispatched_at IS NOT NULL
            ORDER BY a.ended_at
            """, workflow
        ).map {
            FinishedAttemptRow(job: $0.string(0), subtask: $0.string(1), n: $0.int(2), model: $0.string(3), passed: $0.int(4) != 0,
                               tokens: $0.int(5), seconds: $0.double(6), detail: $0.string(7))
        }
    }
}
