import AgentFlowCore

extension Store {
    /// Finished (succeeded or failed) dispatched attempts of every job of a workflow, oldest
    /// first: what the planner learns from, so a rerun of the workflow starts calibrated (the
    /// attempts table is the one source). Each is the attempt's whole record: its job, number
    /// and detail pair a judged attempt with its judge (`judged by #N on M`, `judge of #N: …`).
    public func finishedAttempts(workflow: String) throws -> [AttemptRecord] {
        try connection.query(
            """
            SELECT \(Self.attemptColumns) FROM attempts JOIN jobs j ON j.id = attempts.job
            WHERE j.workflow = ? AND attempts.state IN ('succeeded', 'failed') AND attempts.dispatched_at IS NOT NULL
            ORDER BY attempts.ended_at
            """, workflow
        ).map(Self.attemptRecord)
    }
}

extension AttemptRecord {
    /// What a finished attempt teaches the estimates: whether it passed, the tokens it used and
    /// how long it ran (dispatch to end).
    public var passed: Bool { state == .succeeded }
    public var tokens: Int { tokensIn.addingSaturated(tokensOut) }
    public var seconds: Double { (endedAt?.secondsSince1970 ?? 0) - (dispatchedAt?.secondsSince1970 ?? 0) }
}
