import AgentFlowCore
import ArgumentParser
import Coordinator
import Foundation
import HTTPAPI
import Observability
import Planner
import Logging
import Store
import Wire
import Worker
import ZeroMQ

struct CoordinatorCommand: ParsableCommand, LoggingCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator", abstract: "Run the coordinator until SIGTERM or SIGINT (graceful).")

    @OptionGroup var cluster: ClusterOptions
    @Option(name: .long, help: "SQLite database file, or postgres://USER@HOST:PORT/DB (several coordinators, one leads; password from PGPASSFILE or PGPASSWORD) (default: the cluster's).") var database: String?
    @Option(name: .long, help: "Workers endpoint to bind (overrides coordinator.bind / coordinator.workers), e.g. tcp://10.0.0.2:5555.") var bindWorkers: String?
    @Option(name: .long, help: "Serve the HTTP API, /metrics and the dashboard on HOST:PORT (overrides coordinator.http).") var http: String?
    @OptionGroup var logging: LogOptions
    var defaultLogLevel: Logger.Level { .info }
    @Flag(name: .long, help: "Allow binding a non-loopback address without CURVE (anyone who reaches it can submit jobs and register workers).")
    var insecure = false
    @Option(name: .long, help: "Cross-job dispatch policy: fifo, edf or fleet (default: the cluster's scheduling.policy, else fleet).")
    var policy: String?
    @Option(name: .long, help: "Preemption: on lets a job whose deadline is at risk take a slot from a lower-ranked job's running attempt (default: the cluster's scheduling.preemption, else off).")
    var preemption: String?

    func validate() throws {
        if let policy, FleetPolicyKind(rawValue: policy) == nil {
            throw ValidationError("--policy must be one of fifo, edf, fleet; got '\(policy)'")
        }
        if let preemption, !["on", "off"].contains(preemption) {
            throw ValidationError("--preemption must be on or off; got '\(preemption)'")
        }
    }

    func run() throws {
        let spec = try cluster.load()
        // One context for the coordinator and its HTTP server: the server's requests reach the
        // client socket in-process, never through the endpoint other local users could reach.
        let context = ZMQContext()
        let httpServer = try makeHTTPServer(spec, context: context)
        var options = Coordinator.Options(cluster: spec)
        if httpServer != nil { options.internalClientsEndpoint = Self.inProcessClients }
        options.secrets = transcriptSecrets(spec, tokens: httpServer?.1.tokens)
        options.tracer = makeTracer(spec.telemetry, instance: "coordinator")
        options.remoteWorkersWithoutCurve = insecure
        if let policy, let kind = FleetPolicyKind(rawValue: policy) { options.policy.kind = kind }
        if let preemption { options.preemption = preemption == "on" ? PreemptionRules() : nil }
        if let database { options.database = database }
        if let c = cluster.coordinator { options.clientsEndpoint = c }
        if let w = bindWorkers { options.workersEndpoint = w }
        try applyServerCurve(spec, to: &options, file: cluster.cluster)
        if let clientKeys = spec.coordinator.curve?.clientKeys, !clientKeys.isEmpty { options.clientKeys = ClientKeyBook(clientKeys) }
        if let (_, http) = httpServer, http.tokens != nil, options.clientKeys == nil, !options.clientsEndpoint.hasPrefix("ipc://") {
            // Bearer tokens guard HTTP; the client socket must not be a way around them.
            throw CLIError.badInput("""
                \(cluster.cluster): coordinator.httpTokens is set, but the client socket \(options.clientsEndpoint) would let any local user \
                cancel and submit jobs without a token. Either list client keys with roles (coordinator.curve.clientKeys: {"<key>": admin}; \
                each operator's CLI uses its key with --key or clientKeyFile), or serve clients on a Unix socket \
                (coordinator.clients: ipc:///run/agentflow/clients.sock, mode 0660, group coordinator.clientsGroup). See docs/deploy.md.
                """)
        }
        let exposed = [options.workersEndpoint, options.clientsEndpoint].filter { !Endpoint.isLoopback($0) }
        if !exposed.isEmpty && options.curveSecretKey == nil {
            guard insecure else {
                throw CLIError.badInput("""
                    coordinator: refusing to bind \(exposed.joined(separator: " and ")) without CURVE: anyone who can reach it could submit \
                    jobs and register workers. Configure coordinator.curve (docs/deploy.md), bind loopback, or pass --insecure.
                    """)
            }
            printError("coordinator: warning: \(exposed.joined(separator: " and ")) reachable from the network without CURVE (--insecure)")
        }
        let stop = StopSignal()
        let signals = onTerminationSignals(stop)
        defer { _ = signals }
        let hangup = options.identities.map { reloadIdentitiesOnHangup($0, clients: options.clientKeys, clusterFile: cluster.cluster) }
        defer { _ = hangup }
        let coordinator = Coordinator(cluster: spec, options: options, context: context)
        do {
            let stats = try coordinator.run(stop: stop) { w, c in
                printError("coordinator: workers on \(w), clients on \(c), database \(options.database)")
                guard let httpServer else { return }
                // Started once the client socket is bound: the server's requests go there.
                do {
                    let (server, options) = httpServer
                    let port = try server.start()
                    printError("coordinator: http on http://\(options.host.contains(":") ? "[\(options.host)]" : options.host):\(port)/ (\(options.tokens == nil ? "no authentication" : "bearer tokens"))")
                } catch {
                    printError("error: \(error)")
                    stop.set()
                }
            }
            httpServer?.0.stop()
            printError("coordinator: \(stats.malformedMessages) malformed messages dropped, \(stats.refusedRequests) requests refused, "
                       + "\(stats.ignoredResults) results ignored, \(stats.curveDenied) connections refused by CURVE"
                       + (stats.curveDeniedKeys.isEmpty ? "" : " (keys: \(stats.curveDeniedKeys.joined(separator: ", ")))"))
        } catch let error as ZMQError {
            throw CLIError(code: 1, message: "coordinator: \(error)")
        } catch let error as DatabaseLockedError {
            throw CLIError(code: 1, message: "coordinator: \(error)")
        } catch let error as ClientSocketError {
            throw CLIError(code: 2, message: "coordinator: \(error)")
        } catch let error as LeaseLostError {
            // Stepping down: a supervisor (systemd Restart=always) starts it again, as a standby.
            httpServer?.0.stop()
            throw CLIError(code: Self.steppedDown, message: "coordinator: \(error)")
        } catch let error as PostgresError {
            throw CLIError(code: 1, message: "coordinator: \(error)")
        }
        printError("coordinator: stopped")
    }
}

extension CoordinatorCommand {
    /// Exit status of a coordinator that lost its lease (EX_TEMPFAIL: start it again).
    static let steppedDown: Int32 = 75

    /// The HTTP server of `--http` or `coordinator.http`, checked before anything is bound: a
    /// bad address, an unreadable token file or a non-loopback address without tokens stops
    /// the command with exit status 2.
    /// The client socket's in-process endpoint, for this process's HTTP server only.
    static let inProcessClients = "inproc://agentflow-http-clients"

    func makeHTTPServer(_ spec: Cluster, context: ZMQContext) throws -> (HTTPServer, HTTPOptions)? {
        guard let address = http ?? spec.coordinator.http else { return nil }
        do {
            let (host, port) = try HTTPOptions.address(address)
            let tokens = try spec.coordinator.httpTokens.map { try TokenBook.load(path: $0, listed: spec.tenants.map(\.name)) }
            var options = HTTPOptions(host: host, port: port, tokens: tokens, knownModels: spec.modelNames)
            options.limits = spec.coordinator.httpLimits
            options.fitToDescriptors()
            try options.check()
            // In-process: no CURVE handshake, no descriptor, nothing another user could reach.
            let link = CoordinatorLink(endpoint: Self.inProcessClients, context: context)
            return (HTTPServer(options: options, link: link, metrics: { MetricsRegistry.shared.render() }), options)
        } catch let e as HTTPConfigError {
            throw CLIError.badInput("\(cluster.cluster): \(e.description)")
        }
    }
}

struct WorkerCommand: ParsableCommand, LoggingCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker: --name N (from the cluster file) or --coordinator URL --model M --backend URL|sim.")

    @Option(name: .long, help: "Worker name (looked up in the cluster file unless --model/--backend are given).") var name: String
    @Option(name: .long, help: "Cluster file.") var cluster: String = "cluster.yaml"
    @Option(name: .long, help: "Coordinator worker endpoint, e.g. tcp://127.0.0.1:5555 (several coordinators: separated by commas).") var coordinator: String?
    @Option(name: .long, help: "Model served.") var model: String?
    @Option(name: .long, help: "Backend: an OpenAI-compatible base URL, or 'sim'.") var backend: String?
    @Option(name: .long, help: "GPU ids, e.g. 0,1.") var gpus: String?
    @Option(name: .long, help: "Concurrent attempts.") var slots: Int?
    @Option(name: .long, help: "sim backend: real seconds per simulated second.") var timeScale: Double = 1
    @Option(name: .long, help: "sim backend: seed.") var seed: UInt64 = 0
    @Option(name: .long, help: "Heartbeat interval, e.g. 1s.") var heartbeat: String?
    @Flag(name: .long, help: "Also log reconnections (attempts are logged at info level anyway).") var verbose = false
    @OptionGroup var logging: LogOptions
    var defaultLogLevel: Logger.Level { .info }
    @Option(name: .long, help: "This worker's CURVE key file (overrides coordinator.curve.clientKeyFile).") var key: String?
    @Option(name: .long, help: "On SIGTERM, how long running attempts may finish before they are cancelled.") var drainGrace: String = "30s"
    @OptionGroup var endpointOptions: EndpointOptions
    @OptionGroup var sandbox: SandboxOptions
    @Option(name: .long, help: "Send this worker's spans to this OTLP/HTTP collector (default: the cluster's telemetry.otlp; none without one).")
    var otlp: String?

    func validate() throws {
        if let otlp, let problem = TelemetrySpec.problem(url: otlp) { throw ValidationError("--otlp: \(problem)") }
        if let slots, let problem = Limits.count(slots, 1...Limits.maxSlots, "--slots") { throw ValidationError(problem) }
        if let gpus, gpus.split(separator: ",").contains(where: { Int($0).map { !(0...Limits.maxGPUID).contains($0) } ?? true }) {
            throw ValidationError("--gpus must be a list of GPU ids like 0,1 (each 0 to \(Limits.maxGPUID))")
        }
        if let heartbeat, parseDuration(heartbeat) == nil { throw ValidationError("bad --heartbeat '\(heartbeat)'") }
        if let heartbeat, let hb = parseDuration(heartbeat), let problem = Limits.span(hb, Limits.heartbeatRange, "--heartbeat", text: heartbeat) {
            throw ValidationError(problem)
        }
        if let problem = Limits.number(timeScale, 0...Limits.maxTimeScale, "--time-scale") { throw ValidationError(problem) }
        if parseDuration(drainGrace) == nil { throw ValidationError("bad --drain-grace '\(drainGrace)'") }
        if !isValidWorkerName(name) { throw ValidationError("--name must be 1-128 letters, digits, '.', '_' or '-'") }
    }

    func run() throws {
        let clusterSpec = FileManager.default.fileExists(atPath: cluster) ? try Cluster.load(path: cluster) : nil
        var spec: WorkerSpec
        if let model, let backend {
            let b: BackendSpec = backend == "sim" ? .sim(timeScale: timeScale, seed: seed) : .openai(endpointOptions.endpoint(url: backend))
            spec = WorkerSpec(name: name, gpus: (gpus ?? "").split(separator: ",").compactMap { Int($0) }, model: model, backend: b, slots: slots ?? 1)
        } else {
            guard let clusterSpec else { throw CLIError.badInput("\(cluster): cannot read the cluster file; pass --model and --backend instead") }
            guard let s = clusterSpec.workers.first(where: { $0.name == name }) else {
                throw CLIError.badInput("\(cluster): no worker named '\(name)' (it has: \(clusterSpec.workers.map(\.name).joined(separator: ", ")))")
            }
            spec = s
            if let slots { spec.slots = slots }
        }
        let endpoints = try coordinatorEndpoints(flag: coordinator, fromCluster: clusterSpec?.coordinator.workerEndpoints, default: CoordinatorSpec().workers)
        let endpoint = endpoints.joined(separator: ",")
        var options = WorkerProcess.Options(endpoints: endpoints)
        if let hb = heartbeat.flatMap(parseDuration) ?? clusterSpec?.coordinator.heartbeat { options.heartbeat = hb }
        if let lv = clusterSpec?.coordinator.liveness { options.liveness = lv }
        options.verbose = verbose
        options.curve = try clientCurve(clusterSpec, keyFile: key)
        options.drainGrace = parseDuration(drainGrace).map { min($0, Limits.spanRange.upperBound) }
        let telemetry = otlp.map { TelemetrySpec(otlp: $0, serviceName: clusterSpec?.telemetry?.serviceName ?? "agentflow") } ?? clusterSpec?.telemetry
        options.tracer = makeTracer(telemetry, instance: "worker \(spec.name)")
        let stop = StopSignal()
        let signals = onTerminationSignals(stop)
        defer { _ = signals }
        try sandbox.check([spec])
        // One clock for the process: the worker turns each attempt's ttl into a deadline on it,
        // and the backend (scaffold, LLM client, sandbox) checks that deadline on the same one.
        let clock = SystemTime()
        let backend = try makeBackend(spec.backend, model: spec.model, context: clusterSpec?.model(spec.model)?.context, worker: spec.name,
                                      sandbox: sandbox.mode, limits: clusterSpec?.sandbox, gpus: spec.gpus, time: clock)
        let info = workerInfo(spec, sandbox: sandbox.mode)
        let worker = WorkerProcess(info: info, options: options, backend: backend, context: ZMQContext(), time: clock)
        printError("worker \(spec.name): \(spec.slots) slots of \(spec.model), coordinator \(endpoint)" + (info.worker.sandbox.map { "; sandbox: \($0)" } ?? ""))
        // Serve anyway: the server may still be loading, and the coordinator stops sending
        // attempts to a worker whose backend keeps failing.
        if let problem = backend.healthProblem() { printError("warning: worker \(spec.name): model server does not answer: \(problem)") }
        try worker.run(stop: stop)
    }
}
