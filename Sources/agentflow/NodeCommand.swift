import AgentFlowCore
import ArgumentParser
import Foundation
import Logging
import Wire
import Worker
import ZeroMQ

/// `agentflow node`: one command per host (issue 12). It runs this host's workers — from the
/// cluster file (workers whose `host:` is this host) or ad hoc, one per GPU named `PREFIX-gpuN`
/// — registers each with its GPU's free memory and name (nvidia-smi), keeps their model servers
/// running (`serve:`), and on SIGTERM drains them before it exits.
struct NodeCommand: ParsableCommand, LoggingCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run this host's workers: the cluster file's (host: HOST) or one per GPU (--model --backend --gpus).")

    @Option(name: .long, help: "Cluster file (workers, coordinator address, CURVE).") var cluster: String = "cluster.yaml"
    @Option(name: .long, help: "This host's name in the cluster file (default: the hostname).") var host: String?
    @Option(name: .long, help: "Coordinator worker endpoint, e.g. tcp://10.0.0.1:5555 (several coordinators: separated by commas; overrides the cluster file).") var coordinator: String?
    @Option(name: .long, help: "Ad hoc: model served by every worker.") var model: String?
    @Option(name: .long, help: "Ad hoc: an OpenAI-compatible base URL ({gpu} and {port} substituted), or 'sim'.") var backend: String?
    @Option(name: .long, help: "Ad hoc: 'all' (nvidia-smi, honouring CUDA_VISIBLE_DEVICES) or GPU ids like 0,1.") var gpus: String?
    @Option(name: .long, help: "Ad hoc: concurrent attempts per worker.") var slots: Int = 1
    @Option(name: .long, help: "Ad hoc: worker names are PREFIX-gpuN (default: the hostname).") var namePrefix: String?
    @Option(name: .long, help: "Ad hoc: model server command per GPU ({gpu}, {port} substituted).") var serve: String?
    @Option(name: .long, help: "Ad hoc: port of the first GPU's model server; GPU k of the list gets PORT+k.") var servePort: Int = 8300
    @Option(name: .long, help: "sim backend: real seconds per simulated second.") var timeScale: Double = 1
    @Option(name: .long, help: "sim backend: seed (worker k gets seed+k).") var seed: UInt64 = 0
    @Option(name: .long, help: "This host's CURVE key file (overrides coordinator.curve.clientKeyFile).") var key: String?
    @Option(name: .long, help: "On SIGTERM, how long running attempts may finish before they are cancelled.") var drainGrace: String = "30s"
    @Option(name: .long, help: "Directory for model server logs (default: none).") var serveLogs: String?
    @OptionGroup var endpointOptions: EndpointOptions
    @Flag(name: .long, help: "Also log reconnections.") var verbose = false
    @OptionGroup var sandbox: SandboxOptions
    @OptionGroup var logging: LogOptions
    var defaultLogLevel: Logger.Level { .info }

    var adHoc: Bool { model != nil || backend != nil || gpus != nil }

    func validate() throws {
        if adHoc && (model == nil || backend == nil || gpus == nil) {
            throw ValidationError("ad hoc mode needs --model, --backend and --gpus together")
        }
        if let problem = Limits.count(slots, 1...Limits.maxSlots, "--slots") { throw ValidationError(problem) }
        if let gpus, gpus != "all", gpus.split(separator: ",").contains(where: { Int($0).map { $0 < 0 || $0 > 4095 } ?? true }) {
            throw ValidationError("--gpus must be 'all' or a list like 0,1")
        }
        if let namePrefix, !isValidWorkerName(namePrefix) { throw ValidationError("--name-prefix must be letters, digits, '.', '_' or '-'") }
        if let problem = Limits.number(timeScale, 0...Limits.maxTimeScale, "--time-scale") { throw ValidationError(problem) }
        if parseDuration(drainGrace) == nil { throw ValidationError("bad --drain-grace '\(drainGrace)'") }
        if !(1...65535).contains(servePort) { throw ValidationError("--serve-port must be 1-65535") }
    }

    /// The hostname as a worker-name prefix: its first label, other characters replaced.
    static func defaultPrefix() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let cleaned = String(host.map { c in c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_") ? c : "-" })
        return cleaned.isEmpty ? "node" : String(cleaned.prefix(100))
    }

    func run() throws {
        let clusterSpec = FileManager.default.fileExists(atPath: cluster) ? try Cluster.load(path: cluster) : nil
        var inventory: [GPUInfo] = []
        var specs: [WorkerSpec]
        if adHoc, let model, let backend, let gpus {
            if let clusterSpec, clusterSpec.model(model) == nil {
                throw CLIError.badInput("\(cluster): model '\(model)' is not in the cluster's models (\(clusterSpec.models.map(\.name).joined(separator: ", ")))")
            }
            var indices: [Int]
            if gpus == "all" {
                do { inventory = try GPUInventory.query() } catch { throw CLIError.badInput("--gpus all: \(error)") }
                if inventory.isEmpty { throw CLIError.badInput("--gpus all: nvidia-smi lists no GPU this process may use (CUDA_VISIBLE_DEVICES=\(ProcessInfo.processInfo.environment["CUDA_VISIBLE_DEVICES"] ?? "unset"))") }
                indices = inventory.map(\.index)
            } else {
                indices = []
                for i in gpus.split(separator: ",").compactMap({ Int($0) }) where !indices.contains(i) { indices.append(i) }
                inventory = (try? GPUInventory.query()) ?? []
            }
            let prefix = namePrefix ?? Self.defaultPrefix()
            specs = indices.enumerated().map { k, gpu in
                let port = servePort + k
                let b: BackendSpec = backend == "sim"
                    ? .sim(timeScale: timeScale, seed: seed &+ UInt64(k))
                    : .openai(endpointOptions.endpoint(url: ModelServerSupervisor.substitute(backend, gpus: [gpu], port: port)))
                return WorkerSpec(name: "\(prefix)-gpu\(gpu)", gpus: [gpu], model: model, backend: b, slots: slots,
                                  serve: serve.map { ServeSpec(command: $0, port: port) })
            }
        } else {
            guard let clusterSpec else { throw CLIError.badInput("\(cluster): cannot read the cluster file; pass --model, --backend and --gpus instead") }
            let me = host ?? ProcessInfo.processInfo.hostName
            let short = me.split(separator: ".").first.map(String.init) ?? me
            specs = clusterSpec.workers.filter { $0.host == me || $0.host == short }
            if specs.isEmpty {
                let hosts = Set(clusterSpec.workers.compactMap(\.host)).sorted()
                throw CLIError.badInput("\(cluster): no worker has host: \(me)" + (hosts.isEmpty ? " (no worker has a host: at all)" : " (hosts: \(hosts.joined(separator: ", "))); pass --host NAME"))
            }
            inventory = (try? GPUInventory.query()) ?? []
        }

        try sandbox.check(specs)
        let endpoints = try coordinatorEndpoints(flag: coordinator, fromCluster: clusterSpec?.coordinator.workerEndpoints, default: CoordinatorSpec().workers)
        let endpoint = endpoints.joined(separator: ",")
        var options = WorkerProcess.Options(endpoints: endpoints)
        if let hb = clusterSpec?.coordinator.heartbeat { options.heartbeat = hb }
        if let lv = clusterSpec?.coordinator.liveness { options.liveness = lv }
        options.verbose = verbose
        options.curve = try clientCurve(clusterSpec, keyFile: key)
        options.drainGrace = parseDuration(drainGrace).map { min($0, Limits.spanRange.upperBound) }
        // One tracer for the node's workers (they share a process and a queue to the collector).
        options.tracer = makeTracer(clusterSpec?.telemetry, instance: "node \(host ?? ProcessInfo.processInfo.hostName)")
        let context = ZMQContext()

        var supervisors: [ModelServerSupervisor] = []
        for spec in specs {
            guard let serve = spec.serve, case .openai(let endpoint) = spec.backend else { continue }
            let log = serveLogs.map { URL(fileURLWithPath: $0).appendingPathComponent("\(spec.name).log").path }
            let s = ModelServerSupervisor(name: spec.name, command: serve.command, port: serve.port, gpus: spec.gpus,
                                          client: try clientSettings(endpoint, worker: spec.name), model: endpoint.served ?? spec.model, logFile: log)
            s.start()
            supervisors.append(s)
        }
        let threads = try specs.map { spec in
            WorkerThread(info: workerInfo(spec, gpus: inventory, sandbox: sandbox.mode), options: options,
                         backend: try makeBackend(spec.backend, model: spec.model, context: clusterSpec?.model(spec.model)?.context, worker: spec.name,
                                                  sandbox: sandbox.mode, limits: clusterSpec?.sandbox, gpus: spec.gpus),
                         context: context)
        }
        for spec in specs {
            let gpu = inventory.first { spec.gpus.contains($0.index) }
            let memory = gpu.map { String(format: ", %.1f GiB free on %@", Double($0.freeMemory) / 1_073_741_824, $0.name) } ?? ""
            printError("node: worker \(spec.name): GPU \(spec.gpus.map(String.init).joined(separator: ",")), \(spec.slots) slots of \(spec.model)\(memory)")
        }
        printError("node: \(specs.count) worker(s), coordinator \(endpoint); SIGTERM drains (grace \(drainGrace))")

        let stop = StopSignal()
        let signals = onTerminationSignals(stop)
        defer { _ = signals }
        while !stop.isSet && threads.contains(where: { !$0.finished.load(ordering: .acquiring) }) {
            var p = ZMQPoller()
            p.add(fd: stop.pipe.readFD)
            try p.poll(timeout: 0.5)
        }
        printError("node: draining \(specs.count) worker(s)")
        for t in threads { t.stop.set() }
        for t in threads { t.join() }
        for s in supervisors { s.stop() }
        printError("node: stopped")
    }
}
