import AgentFlowCore
import Foundation
import Store
import Wire

/// Client requests for a job's history: attempts, ledger, events, and filtered job lists.
extension Coordinator {
    func history(_ request: ClientRequest) throws -> ClientReply {
        let now = time.now
        switch request {
        case .attempts(let id):
            guard try jobs[id] != nil || readStore().job(id) != nil else { return .error(code: 4, message: "no job '\(id)'") }
            let live = jobs[id]?.live ?? [:]
            return .attempts(try readStore().attempts(of: id)
                .map { rec in
                    // In-memory state is newer than the store's for live attempts.
                    let current = live[rec.id]
                    return (current?.record ?? rec).info(progress: current?.progressTokens)
                }
                .sorted { ($0.createdAt, $0.subtask, $0.n) < ($1.createdAt, $1.subtask, $1.n) })
        case .ledger(let id):
            guard try jobs[id] != nil || readStore().job(id) != nil else { return .error(code: 4, message: "no job '\(id)'") }
            return .ledger(try readStore().ledgerLines(of: id).map { seq, e in
                LedgerLine(seq: seq, attempt: e.attempt.description, subtask: e.attempt.subtask, n: e.attempt.n, role: e.role, model: e.model,
                           tokensIn: e.tokensIn, tokensOut: e.tokensOut, usd: e.usd.usd, kind: e.kind, at: isoTime(e.at))
            })
        case .events(let id, let after):
            if let job = jobs[id] {
                return .events(telemetry.batch(id, after: after, live: !(job.isTerminal && job.live.isEmpty)))
            }
            guard (try readStore().job(id)) != nil else { return .error(code: 4, message: "no job '\(id)'") }
            return .events(telemetry.batch(id, after: after, live: false))
        case .queryJobs(let q):
            guard (1...500).contains(q.limit), q.offset >= 0 else {
                return .error(code: 2, message: "limit must be 1…500 and offset at least 0")
            }
            if let s = q.state, JobState(rawValue: s) == nil {
                return .error(code: 2, message: "unknown state '\(s)' (expected one of \(JobState.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let page = try readStore().jobs(state: q.state, workflow: q.workflow, tenant: q.tenant, limit: q.limit, offset: q.offset)
            return .jobPage(JobPage(jobs: try page.jobs.map { r in
                if let job = jobs[r.id] { return report(job, now: now) }
                return try storedReport(r, now: now)
            }, total: page.total, limit: q.limit, offset: q.offset))
        default:
            return .error(code: 1, message: "not a history request")
        }
    }
}
