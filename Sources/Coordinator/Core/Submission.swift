import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// Submissions: a parsed workflow becomes a job (or a refusal naming what is wrong).
extension CoordinatorCore {
    mutating func submission(_ s: ParsedSubmission) {
        if let book = s.book, let name = try? s.workflow.get().name { books.adopt(book, for: name) }
        let answer = submit(s.request, parsed: s.workflow, received: s.received)
        if case .submitted(let id) = answer, s.request.answerWithReport == true {
            // The job's report as `status` gives it, read once this batch is committed.
            out.messages.append(.answerFromStore(route: s.route, .status(job: id)))
        } else {
            reply(answer, to: s.route)
        }
    }

    /// Creates a job from a parsed submission. Its deadline counts from when the request arrived.
    mutating func submit(_ s: SubmitRequest, parsed: Result<Workflow, ConfigError>, received now: WallInstant) -> ClientReply {
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
            planner = try options.makePlanner(plannerName, seed)
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
            spentTokens: 0, spentUSD: .zero, submittedAt: now, deadline: now.adding(seconds: relative), startedAt: nil, endedAt: nil,
            minSuccess: s.minSuccess)
        let job = JobRun(record: record, workflow: workflow, cluster: cluster, planner: planner)
        job.tenant = s.tenant ?? "default"
        persist(.insertJob(job.record))
        for s in workflow.subtasks { persist(.subtask(job.subtasks[s.id]!)) }
        jobs[id] = job
        holding.track(job)
        markForPlanning(job)
        deadlines.push(record.deadline, job: id)
        tally.track(job)
        noteSubmitted(job)
        return .submitted(job: id)
    }

    /// A refused request: counted, answered with exit code 2.
    mutating func refuse(_ message: String) -> ClientReply {
        stats.refusedRequests += 1
        return .error(code: 2, message: message)
    }

    mutating func newJobID() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        while true {
            let id = "j-" + String((0..<8).map { _ in alphabet[idGenerator.below(alphabet.count)] })
            if jobs[id] == nil { return id }
        }
    }
}
