import AgentFlowCore
import ArgumentParser
import Foundation
import Wire
import ZeroMQ

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "Submit a workflow; prints the job id.")

    @Argument(help: "Workflow file.") var workflow: String
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var job: JobOptions
    @OptionGroup var parameters: WorkflowParameters
    @Flag(name: .long, help: "Wait for the job to end and print its report.") var wait = false
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let loaded = try loadWorkflow(workflow, cluster: try cluster.loadIfPresent(), parameters: parameters)
        for note in loaded.notes { printError("note: \(note)") }
        let client = try cluster.makeClient()
        let id = try client.submit(job.request(yaml: loaded.text, file: workflow))
        guard wait else {
            if json { printJSON(["id": id]) } else { print(id) }
            return
        }
        if !json { printError("submitted \(id); waiting for it to end (Ctrl-C stops waiting, the job goes on)") }
        var progress = ProgressLines()
        let report = try client.waitForEnd(id, interval: 0.1, onUpdate: { report in
            if !json { progress.show(report) }
        })
        if json { printJSON(report) } else { print(render(report)) }
        throw ExitCode(exitStatus(report))
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a job (or all recent jobs).")

    @Argument(help: "Job id.") var job: String?
    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Read this SQLite database (or postgres://USER@HOST/DB) directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

    func run() throws {
        guard let job else {
            JobsCommand.list(try HistoryReader.jobs(cluster, database: database), json: json)
            return
        }
        let report = try HistoryReader.job(job, cluster, database: database)
        if json { printJSON(report) } else { print(render(report)) }
    }
}

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Attempts waiting for slots: per model, each job in the cross-job policy's order, its estimate and why it waits.")

    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        guard case .queue(let entries) = try cluster.makeClient().request(.queue) else { throw CLIError.unexpectedReply }
        if json {
            printJSON(entries)
            return
        }
        var rows = [["model", "place", "job", "tenant", "priority", "queued", "running", "estimate", "reason"]]
        for e in entries {
            rows.append([e.model, String(e.place), e.job, e.tenant, String(e.priority), String(e.queued), String(e.running),
                         String(format: "%.2f", e.success), e.reason])
        }
        print(entries.isEmpty ? "no attempt is waiting for a slot" : table(rows))
    }
}

struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jobs", abstract: "List recent jobs.")

    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Read this SQLite database (or postgres://USER@HOST/DB) directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

    func run() throws {
        Self.list(try HistoryReader.jobs(cluster, database: database), json: json)
    }

    static func list(_ jobs: [JobReport], json: Bool) {
        if json {
            printJSON(jobs)
            return
        }
        var rows = [["id", "workflow", "state", "subtasks", "tokens", "usd", "elapsed"]]
        for j in jobs {
            let done = j.subtasks.filter { $0.state == .succeeded }.count
            rows.append([j.id, j.workflow, j.state.rawValue, "\(done)/\(j.subtasks.count)", String(j.budget.spentTokens), usd(j.budget.spentUSD), formatDuration(j.elapsedSeconds)])
        }
        print(table(rows))
    }
}

struct WorkersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "workers", abstract: "List workers the coordinator knows.")

    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let client = try cluster.makeClient()
        guard case .workers(let workers) = try client.request(.workers) else { throw CLIError.unexpectedReply }
        if json {
            printJSON(workers)
            return
        }
        var rows = [["name", "state", "model", "slots", "busy", "gpus", "free memory", "host", "last seen", "model server", "sandbox"]]
        for w in workers {
            let memory = String(format: "%.1f GiB", Double(w.worker.freeMemory) / 1_073_741_824) + (w.worker.gpuName.map { " (\($0))" } ?? "")
            rows.append([w.worker.name, w.state.rawValue, w.worker.model, String(w.worker.slots), String(w.busy),
                         w.worker.gpus.map(String.init).joined(separator: ","), memory, w.worker.host, w.lastSeen, w.problem.isEmpty ? "ok" : w.problem,
                         w.worker.sandbox ?? "-"])
        }
        print(table(rows))
    }
}

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch", abstract: "Live view of a job until it ends.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Option(name: .long, help: "Refresh interval in seconds.") var interval: Double = 0.5

    func validate() throws {
        guard interval.isFinite, interval >= 0.05, interval <= 3600 else { throw ValidationError("--interval must be 0.05…3600 seconds, got \(interval)") }
    }

    func run() throws {
        let client = try cluster.makeClient()
        // A terminal gets the screen redrawn; a pipe or a file gets one line per change and the
        // report at the end, with no escape codes in it.
        let terminal = isatty(STDOUT_FILENO) == 1
        var progress = ProgressLines(toStandardOutput: true)
        while true {
            let report = try client.job(.status(job: job))
            if terminal {
                let left = max(0, report.deadlineSeconds - report.elapsedSeconds)
                let footer = report.state.isTerminal ? "" : "\n\ntime left \(formatDuration(left))   (refresh \(interval)s, Ctrl-C to stop)"
                print("\u{1B}[H\u{1B}[2J" + render(report) + footer)
            } else if report.state.isTerminal {
                print(render(report))
            } else {
                progress.show(report)
            }
            fflush(nil)
            if report.state.isTerminal {
                throw ExitCode(exitStatus(report))
            }
            Thread.sleep(forTimeInterval: interval)
        }
    }
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a job; in-flight attempts are stopped.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let client = try cluster.makeClient()
        let report = try client.job(.cancel(job: job))
        if json { printJSON(report) } else { print(render(report)) }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "validate", abstract: "Check a workflow (and the cluster) without running it.")

    @Argument(help: "Workflow file.") var workflow: String
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var parameters: WorkflowParameters

    func run() throws {
        let spec = try cluster.load()
        let loaded = try loadWorkflow(workflow, cluster: spec, parameters: parameters)
        let wf = loaded.workflow
        let edges = wf.subtasks.reduce(0) { $0 + $1.needs.count }
        var notes: [String] = []
        if wf.budget.tokens == nil && wf.budget.usd == nil { notes.append("no budget in the file: pass --budget-tokens/--budget-usd when running") }
        if wf.deadline == nil { notes.append("no deadline in the file: pass --deadline when running") }
        print("\(workflow): ok — workflow '\(wf.name)', \(wf.subtasks.count) subtasks, \(edges) edges; cluster \(cluster.cluster): \(spec.models.count) models, \(spec.workers.count) workers")
        for n in notes + loaded.notes { print("  note: \(n)") }
        if wf.subtasks.contains(where: { $0.expandedFrom != nil }) || !wf.inputs.isEmpty || !wf.params.isEmpty {
            print(describeAgentWork(wf))
        }
    }
}
