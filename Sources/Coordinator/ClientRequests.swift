import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

extension Coordinator {
    // MARK: - Client requests

    func handle(_ request: ClientRequest) throws -> ClientReply {
        let now = time.now
        // Replies that read the store see this iteration's writes (`readStore()`).
        switch request {
        case .submit:
            return .error(code: 1, message: "submissions are handled by the intake thread")
        case .status(let id):
            if let job = jobs[id] { return .job(report(job, now: now)) }
            guard let record = try readStore().job(id) else { return .error(code: 4, message: "no job \(Limits.printable(id))") }
            return .job(try storedReport(record, now: now, withNeeds: true))
        case .jobs:
            return .jobs(try readStore().recentJobs(limit: 100).map { r in
                if let job = jobs[r.id] { return report(job, now: now) }
                return try storedReport(r, now: now)
            })
        case .workers:
            return .workers(workers.values.sorted { $0.info.name < $1.info.name }.map(workerReport))
        case .drain(let name, let drained):
            return setDrained(name, drained)
        case .cancel(let id):
            guard let job = jobs[id] else {
                guard let record = try readStore().job(id) else { return .error(code: 4, message: "no job \(Limits.printable(id))") }
                return .job(try storedReport(record, now: now))
            }
            try end(job, .cancelled, reason: "cancelled by the user", now: now)
            return .job(report(job, now: now))
        case .attempts, .ledger, .events, .queryJobs:
            return try history(request)
        case .queue:
            return .queue(queueEntries(now: now))
        }
    }

    /// Creates a job from a parsed submission. Its deadline counts from when the request arrived.
    func submit(_ s: SubmitRequest, parsed: Result<Workflow, ConfigError>, received now: Double) throws -> ClientReply {
        // The file name comes back in every message about the workflow: checked before any of them.
        if let problem = Limits.fileName(s.file, "the workflow's file name") { return refuse(problem) }
        let workflow: Workflow
        switch parsed {
        case .success(let w): workflow = w
        case .failure(let error): return refuse(error.description)
        }
        // MCPP plans DAGs of any size (over 64 nodes on a rolling window, `PlanWindow`).
        let plannerName = s.planner ?? "mcpp"
        let seed = s.seed ?? (idGenerator.next() & UInt64(Int64.max))
        let planner: any LivePlanner
        do {
            planner = try makeLivePlanner(plannerName, seed: seed)
        } catch {
            return refuse("\(error)")
        }
        // Every number in the request is range-checked here, once; past this point arithmetic on it cannot trap.
        if let t = s.budgetTokens, let problem = Limits.budgetTokens(t) { return refuse("--budget-tokens: \(problem)") }
        if let u = s.budgetUSD, let problem = Limits.budgetUSD(u) { return refuse("--budget-usd: \(problem)") }
        if let d = s.deadline, let problem = Limits.seconds(d, "--deadline") { return refuse(problem) }
        if let p = s.minSuccess, let problem = Limits.probability(p, "--min-success") { return refuse(problem) }
        if let t = s.tenant, let problem = Limits.name(t, "--tenant") { return refuse(problem) }
        if let problem = Limits.priority(s.priority) { return refuse("--priority: \(problem)") }
        let limitTokens = s.budgetTokens ?? workflow.budget.tokens
        let limitUSD = s.budgetUSD ?? workflow.budget.usd
        guard let relative = s.deadline ?? workflow.deadline else {
            return .error(code: 2, message: "\(s.file): no deadline: set 'deadline:' in the workflow or pass --deadline")
        }
        guard limitTokens != nil || limitUSD != nil else {
            return .error(code: 2, message: "\(s.file): no budget: set 'budget:' in the workflow or pass --budget-tokens/--budget-usd")
        }
        let id = newJobID()
        let record = JobRecord(
            id: id, workflowName: workflow.name, yaml: s.yaml, file: s.file, state: .queued, reason: "", planner: plannerName,
            seed: seed, priority: s.priority, limitTokens: limitTokens, limitUSD: limitUSD.map { NanoUSD(limitUSD: $0) },
            spentTokens: 0, spentUSD: .zero, submittedAt: now, deadline: now + relative, startedAt: nil, endedAt: nil,
            minSuccess: s.minSuccess)
        let job = JobRun(record: record, workflow: workflow, cluster: cluster, planner: planner)
        job.tenant = s.tenant ?? "default"
        loadBook(for: workflow.name)
        persist(.insertJob(job.record))
        for s in workflow.subtasks { persist(.subtask(job.subtasks[s.id]!)) }
        jobs[id] = job
        noteSubmitted(job)
        return .submitted(job: id)
    }

    /// A refused request: counted, answered with exit code 2.
    func refuse(_ message: String) -> ClientReply {
        stats.refusedRequests += 1
        return .error(code: 2, message: message)
    }

    func newJobID() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        while true {
            let id = "j-" + String((0..<8).map { _ in alphabet[idGenerator.below(alphabet.count)] })
            if jobs[id] == nil { return id }
        }
    }

    // MARK: - Reports

    func report(_ job: JobRun, now: Double) -> JobReport {
        let reserved = job.ledger.reserved
        let needs = Dictionary(uniqueKeysWithValues: job.workflow.subtasks.map { ($0.id, $0.needs) })
        var record = job.record
        if !job.isTerminal, let waiting = job.waitReason { record.reason = waiting }
        var r = makeReport(record, subtasks: subtaskReports(job.record.id, job.workflow.subtasks.map { job.subtasks[$0.id]! }, needs: needs),
                           reserved: reserved, now: now)
        let outage = waitingNote(for: job)
        r.waiting = outage.isEmpty && !job.isTerminal ? job.waitReason ?? "" : outage
        r.successEstimate = successEstimate(job, now: now)
        r.tenant = job.tenant
        return r
    }

    func makeReport(_ r: JobRecord, subtasks: [SubtaskReport], reserved: Amount, now: Double) -> JobReport {
        JobReport(
            id: r.id, workflow: r.workflowName, state: r.state, reason: r.reason, planner: r.planner,
            budget: BudgetReport(limitTokens: r.limitTokens, limitUSD: r.limitUSD?.usd, spentTokens: r.spentTokens, spentUSD: r.spentUSD.usd,
                                 reservedTokens: reserved.tokens, reservedUSD: reserved.usd.usd),
            submittedAt: isoTime(r.submittedAt), deadline: isoTime(r.deadline), startedAt: r.startedAt.map(isoTime),
            endedAt: r.endedAt.map(isoTime), deadlineSeconds: r.deadline - r.submittedAt,
            // From when the job could run (its first slot), not from submission.
            elapsedSeconds: r.startedAt.map { max(0, (r.endedAt ?? now) - $0) } ?? 0, subtasks: subtasks)
    }

    /// A job read back from the store; `withNeeds` re-reads its workflow for the DAG's edges
    /// (single-job requests only: lists skip the parse).
    func storedReport(_ r: JobRecord, now: Double, withNeeds: Bool = false) throws -> JobReport {
        var needs: [String: [String]] = [:]
        if withNeeds, let w = try? Workflow.parse(yaml: r.yaml, file: r.file, knownModels: nil) {
            needs = Dictionary(uniqueKeysWithValues: w.subtasks.map { ($0.id, $0.needs) })
        }
        return makeReport(r, subtasks: subtaskReports(r.id, try readStore().subtasks(of: r.id), needs: needs), reserved: .zero, now: now)
    }

    /// Per subtask: its record, the ledger's tokens by role, and how its latest attempt ended.
    func subtaskReports(_ job: String, _ records: [SubtaskRecord], needs: [String: [String]] = [:]) -> [SubtaskReport] {
        let roles = (try? readStore().roleTokens(of: job)) ?? [:]
        let notes = (try? readStore().lastAttemptDetails(of: job)) ?? [:]
        return records.map { r in
            let used = Role.allCases.compactMap { role in
                roles[r.id]?[role.rawValue].map { RoleTokens(role: role.rawValue, tokens: $0) }
            }
            return SubtaskReport(
                id: r.id, state: r.state, model: r.model, attempts: r.attempts, tokens: r.tokens, usd: r.usd.usd,
                output: r.output, roles: used, note: notes[r.id] ?? "", needs: needs[r.id] ?? [])
        }
    }
}
