import AgentFlowCore
import Foundation
import Store
import Wire

/// A job's report (`agentflow status`, `GET /api/v1/jobs/ID`) from its stored rows.
enum JobReports {
    static func make(_ r: JobRecord, subtasks: [SubtaskReport], reserved: Amount, now: WallInstant) -> JobReport {
        JobReport(
            id: r.id, workflow: r.workflowName, state: r.state, reason: r.reason, planner: r.planner,
            budget: BudgetReport(limitTokens: r.limitTokens, limitUSD: r.limitUSD?.usd, spentTokens: r.spentTokens, spentUSD: r.spentUSD.usd,
                                 reservedTokens: reserved.tokens, reservedUSD: reserved.usd.usd),
            submittedAt: isoTime(r.submittedAt), deadline: isoTime(r.deadline), startedAt: r.startedAt.map(isoTime),
            endedAt: r.endedAt.map(isoTime), deadlineSeconds: r.deadline.seconds(since: r.submittedAt),
            // From when the job could run (its first slot), not from submission.
            elapsedSeconds: r.startedAt.map { max(0, (r.endedAt ?? now).seconds(since: $0)) } ?? 0, subtasks: subtasks)
    }

    /// Per subtask: its record, the ledger's tokens by role, and how its latest attempt ended.
    static func subtasks(_ job: String, _ records: [SubtaskRecord], reader: Store, needs: [String: [String]] = [:]) throws -> [SubtaskReport] {
        let roles = try reader.roleTokens(of: job)
        let notes = try reader.lastAttemptDetails(of: job)
        let kept = Dictionary(try OutputQueries.outputs(of: job, reader: reader).map { ($0.subtask, $0.files) }, uniquingKeysWith: { a, _ in a })
        return records.map { r in
            let used = Role.allCases.compactMap { role in
                roles[r.id]?[role.rawValue].map { RoleTokens(role: role.rawValue, tokens: $0) }
            }
            var report = SubtaskReport(
                id: r.id, state: r.state, model: r.model, attempts: r.attempts, tokens: r.tokens, usd: r.usd.usd,
                output: r.output, roles: used, note: notes[r.id] ?? "", needs: needs[r.id] ?? [])
            report.outputs = kept[r.id] ?? []
            return report
        }
    }
}
