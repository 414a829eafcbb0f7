import AgentFlowCore
import Foundation
import Planner
import Store

extension Store {
    /// What a restarting core needs (``CoreEvent/restart(_:)``): every unfinished job with its
    /// workflow parsed, its subtasks and attempts, and the estimate books of their workflows.
    public func restartRows(knownModels: Set<String>) throws -> RestartRows {
        var jobs: [StoredJob] = []
        var books: [String: EstimateBook] = [:]
        for record in try activeJobs() {
            let workflow = Result<Workflow, any Error> { try Workflow.parse(yaml: record.yaml, file: record.file, knownModels: knownModels) }
            if case .success(let w) = workflow, books[w.name] == nil { books[w.name] = try estimateBook(workflow: w.name) }
            jobs.append(StoredJob(record: record, workflow: workflow, subtasks: try subtasks(of: record.id), attempts: try attempts(of: record.id),
                                  outputs: try outputBundles(of: record.id)))
        }
        return RestartRows(jobs: jobs, books: books)
    }

    /// The estimate book of a workflow, from every finished attempt of its jobs, oldest first:
    /// a rerun of the workflow starts calibrated (the attempts table is the one source). Judged
    /// attempts are read with their judges (``JudgePlanning/observations(_:)``).
    public func estimateBook(workflow: String) throws -> EstimateBook {
        var book = EstimateBook()
        for a in JudgePlanning.observations(try finishedAttempts(workflow: workflow)) {
            book.record(subtask: a.subtask, model: a.model, passed: a.passed, tokens: a.tokens, seconds: a.seconds)
        }
        return book
    }
}
