import AgentFlowCore
import ArgumentParser
import Coordinator
import Foundation
import Logging
import Synchronization
import Wire
import Worker
import ZeroMQ

/// Embedded mode: a coordinator and this host's workers in one process, talking over real
/// ZeroMQ sockets on loopback; runs one job to the end and prints its report.
struct RunCommand: ParsableCommand, LoggingCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run one workflow to the end with an embedded coordinator and the cluster's workers.")

    @Argument(help: "Workflow file.") var workflow: String
    @OptionGroup var cluster: ClusterOptions
    @OptionGroup var job: JobOptions
    @OptionGroup var parameters: WorkflowParameters
    @OptionGroup var logging: LogOptions
    /// The report is the output; the log shows problems only unless asked for more.
    var defaultLogLevel: Logger.Level { .warning }
    @Flag(name: .long, help: "Print the job as one JSON object.") var json = false
    @Option(name: .long, help: "SQLite database (default: the cluster's).") var database: String?
    @Flag(name: .long, help: "No progress lines on stderr (the report still prints).") var quiet = false
    @Option(name: .customLong("report"), help: "Also write the job's self-contained HTML report to this file.") var reportFile: String?

    func validate() throws {
        if let reportFile {
            let dir = URL(fileURLWithPath: reportFile).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ValidationError("--report \(reportFile): the directory \(dir) does not exist")
            }
        }
    }
    @OptionGroup var sandbox: SandboxOptions

    func run() throws {
        let clusterSpec = try cluster.load()
        let loaded = try loadWorkflow(workflow, cluster: clusterSpec, parameters: parameters)
        let (parsed, yaml) = (loaded.workflow, loaded.text)
        for note in loaded.notes { printError("note: \(note)") }
        if clusterSpec.workers.isEmpty {
            throw CLIError.badInput("\(cluster.cluster): no workers: embedded mode runs the cluster file's 'workers'")
        }
        let usable = Set(parsed.models ?? clusterSpec.models.map(\.name))
        try sandbox.check(clusterSpec.workers.filter { usable.contains($0.model) })
        // A worker whose key cannot be read stops the run only when the workflow could use it;
        // one serving another model is left out (its key may live on another host).
        var specs: [WorkerSpec] = []
        var backends: [any AttemptBackend] = []
        for spec in clusterSpec.workers {
            do {
                backends.append(try makeBackend(spec.backend, model: spec.model, context: clusterSpec.model(spec.model)?.context, worker: spec.name,
                                                sandbox: sandbox.mode, limits: clusterSpec.sandbox, gpus: spec.gpus))
                specs.append(spec)
            } catch where !usable.contains(spec.model) {
                if !quiet && !json { printError("note: \(error); left out (the workflow does not use \(spec.model))") }
            }
        }
        try checkBackends(specs, backends, models: usable)
        let context = ZMQContext()
        var options = Coordinator.Options(cluster: clusterSpec)
        options.workersEndpoint = "tcp://127.0.0.1:*"
        options.clientsEndpoint = "tcp://127.0.0.1:*"
        if let database { options.database = database }
        // This process owns the workers: a job whose model servers all stay down ends (exit 1)
        // instead of waiting for them until its deadline.
        options.failAfterSuspensions = 3
        options.secrets = transcriptSecrets(clusterSpec, tokens: nil)
        // One tracer for the coordinator and its workers here: they are one process.
        options.tracer = makeTracer(clusterSpec.telemetry, instance: "run")
        try applyServerCurve(clusterSpec, to: &options, file: cluster.cluster)
        let curve = try clientCurve(clusterSpec)
        let coordinator = CoordinatorThread(cluster: clusterSpec, options: options, context: context)
        let endpoints = try coordinator.waitUntilBound()
        var workerOptions = WorkerProcess.Options(endpoint: endpoints.workers)
        workerOptions.heartbeat = clusterSpec.coordinator.heartbeat
        workerOptions.liveness = clusterSpec.coordinator.liveness
        workerOptions.curve = curve
        workerOptions.tracer = options.tracer
        let workers = zip(specs, backends).map { spec, backend in
            WorkerThread(info: workerInfo(spec, sandbox: sandbox.mode), options: workerOptions, backend: backend, context: context)
        }
        let stop = StopSignal()
        let signals = onTerminationSignals(stop)
        defer {
            _ = signals
            for w in workers { w.shutdown() }
            _ = coordinator.shutdown()
        }
        let client = try CoordinatorClient(endpoint: endpoints.clients, context: context, curve: curve)
        let id = try client.submit(job.request(yaml: yaml, file: workflow))
        if !json && !quiet { printError("submitted \(id); \(specs.count) workers") }
        var progress = ProgressLines()
        let report = try client.waitForEnd(id, interval: 0.05, shouldCancel: { stop.isSet }) { report in
            if !json && !quiet { progress.show(report) }
        }
        if json { printJSON(report) } else { print(render(report)) }
        if let reportFile {
            let attempts = try fetchAttempts(client, id)
            try writeHTMLReport(report, attempts: attempts, ledger: try fetchLedger(client, id), transcripts: try fetchTranscripts(client, id, attempts),
                                to: reportFile)
        }
        if !json && !quiet {
            let flags = (cluster.clusterFlag.map { " --cluster \($0)" } ?? "") + (database.map { " --database \($0)" } ?? "")
            printError("the job stays in \(options.database): agentflow attempts|ledger|report \(id)\(flags) read it, no coordinator needed")
        }
        throw ExitCode(exitStatus(report))
    }
}

/// Asks each model server the workflow can use whether it answers, all at once. None answering
/// ends the command before anything is submitted (every attempt would fail until the deadline);
/// some not answering is a warning, and the coordinator's breaker keeps work off them.
func checkBackends(_ specs: [WorkerSpec], _ backends: [any AttemptBackend], models: Set<String>) throws {
    let relevant = zip(specs, backends).filter { models.contains($0.0.model) }
    guard !relevant.isEmpty else { return }
    let problems = Mutex([String?](repeating: nil, count: relevant.count))
    DispatchQueue.concurrentPerform(iterations: relevant.count) { i in
        let problem = relevant[i].1.healthProblem()
        problems.withLock { $0[i] = problem }
    }
    let found = problems.withLock { $0 }
    let down = zip(relevant, found).compactMap { pair, problem in problem.map { "worker \(pair.0.name) (\(pair.0.model)): \($0)" } }
    if down.count == relevant.count {
        throw CLIError.unreachable("no model server answers:\n  " + down.joined(separator: "\n  ")
            + "\nstart them first (for the local models: bash tools/start-models.sh)")
    }
    for line in down { printError("warning: \(line); its attempts fail until it answers") }
}
