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
    @Flag(name: .long, help: "Wait for the job to end and print its report.") var wait = false
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let spec = FileManager.default.fileExists(atPath: cluster.cluster) ? try cluster.load() : nil
        let (_, yaml) = try loadWorkflow(workflow, cluster: spec)
        let client = try cluster.makeClient()
        let id = try client.submit(job.request(yaml: yaml, file: workflow))
        guard wait else {
            if json { printJSON(["id": id]) } else { print(id) }
            return
        }
        let report = try client.waitForEnd(id, interval: 0.1)
        if json { printJSON(report) } else { print(render(report)) }
        throw ExitCode(exitStatus(report))
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a job (or all recent jobs).")

    @Argument(help: "Job id.") var job: String?
    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let client = try cluster.makeClient()
        guard let job else {
            try JobsCommand.list(client, json: json)
            return
        }
        let report = try client.job(.status(job: job))
        if json { printJSON(report) } else { print(render(report)) }
    }
}

struct QueueCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "Attempts waiting for slots: per model, each job in the cross-job policy's order, its estimate and why it waits.")

    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        guard case .queue(let entries) = try cluster.makeClient().request(.queue) else { throw CLIError(code: 1, message: "unexpected reply") }
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

    func run() throws {
        try Self.list(try cluster.makeClient(), json: json)
    }

    static func list(_ client: CoordinatorClient, json: Bool) throws {
        guard case .jobs(let jobs) = try client.request(.jobs) else { throw CLIError(code: 1, message: "unexpected reply") }
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
        guard case .workers(let workers) = try client.request(.workers) else { throw CLIError(code: 1, message: "unexpected reply") }
        if json {
            printJSON(workers)
            return
        }
        var rows = [["name", "state", "model", "slots", "busy", "gpus", "free memory", "host", "last seen", "model server"]]
        for w in workers {
            let memory = String(format: "%.1f GiB", Double(w.freeMemory) / 1_073_741_824) + (w.gpuName.isEmpty ? "" : " (\(w.gpuName))")
            rows.append([w.name, w.state, w.model, String(w.slots), String(w.busy), w.gpus.map(String.init).joined(separator: ","), memory,
                         w.host, w.lastSeen, w.problem.isEmpty ? "ok" : w.problem])
        }
        print(table(rows))
    }
}

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "watch", abstract: "Live view of a job until it ends.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Option(name: .long, help: "Refresh interval in seconds.") var interval: Double = 0.5

    func run() throws {
        let client = try cluster.makeClient()
        while true {
            let report = try client.job(.status(job: job))
            let left = max(0, report.deadlineSeconds - report.elapsedSeconds)
            // Clear the screen and redraw.
            let footer = report.state.isTerminal ? "" : "\n\ntime left \(formatDuration(left))   (refresh \(interval)s, Ctrl-C to stop)"
            print("\u{1B}[H\u{1B}[2J" + render(report) + footer)
            if report.state.isTerminal {
                throw ExitCode(exitStatus(report))
            }
            Thread.sleep(forTimeInterval: max(0.05, interval))
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

    func run() throws {
        let spec = try cluster.load()
        let (wf, _) = try loadWorkflow(workflow, cluster: spec)
        let edges = wf.subtasks.reduce(0) { $0 + $1.needs.count }
        var notes: [String] = []
        if wf.budget.tokens == nil && wf.budget.usd == nil { notes.append("no budget in the file: pass --budget-tokens/--budget-usd when running") }
        if wf.deadline == nil { notes.append("no deadline in the file: pass --deadline when running") }
        print("\(workflow): ok — workflow '\(wf.name)', \(wf.subtasks.count) subtasks, \(edges) edges; cluster \(cluster.cluster): \(spec.models.count) models, \(spec.workers.count) workers")
        for n in notes { print("  note: \(n)") }
    }
}
