import AgentFlowCore
import ArgumentParser
import Foundation
import Wire
import ZeroMQ

/// An error that ends the command with a given exit status and message.
struct CLIError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    var description: String { message }

    static func badInput(_ m: String) -> CLIError { CLIError(code: 2, message: m) }
    static func unreachable(_ m: String) -> CLIError { CLIError(code: 3, message: m) }
}

/// `--cluster` and `--coordinator`, shared by every command.
struct ClusterOptions: ParsableArguments {
    @Option(name: .long, help: "Cluster file.")
    var cluster: String = "cluster.yaml"

    @Option(name: .long, help: "Client endpoint of the coordinator (overrides AGENTFLOW_COORDINATOR and the cluster file).")
    var coordinator: String?

    func load() throws -> Cluster {
        try Cluster.load(path: cluster)
    }

    /// A client for the coordinator: the endpoint and the CURVE settings of the cluster file.
    func makeClient() throws -> CoordinatorClient {
        let spec = FileManager.default.fileExists(atPath: cluster) ? try load() : nil
        return try CoordinatorClient(endpoint: try clientEndpoint(), context: ZMQContext(), curve: try clientCurve(spec))
    }

    /// The client endpoint: the flag, else AGENTFLOW_COORDINATOR, else the cluster file's, else the default.
    func clientEndpoint() throws -> String {
        if let coordinator { return coordinator }
        if let env = ProcessInfo.processInfo.environment["AGENTFLOW_COORDINATOR"], !env.isEmpty {
            guard env.hasPrefix("tcp://") || env.hasPrefix("ipc://") else {
                throw CLIError.badInput("AGENTFLOW_COORDINATOR must be a ZeroMQ endpoint like tcp://10.0.0.1:5556, got '\(env)'")
            }
            return env
        }
        if FileManager.default.fileExists(atPath: cluster) { return try load().coordinator.clients }
        return CoordinatorSpec().clients
    }
}

/// Budget, deadline and planner flags for `run`, `submit` and `plan`.
struct JobOptions: ParsableArguments {
    @Option(name: .long, help: "Token budget (overrides the workflow's).")
    var budgetTokens: Int?

    @Option(name: .long, help: "USD budget (overrides the workflow's).")
    var budgetUsd: Double?

    @Option(name: .long, help: "Deadline from submission, e.g. 90s, 5m, 1h (overrides the workflow's).")
    var deadline: String?

    @Option(name: .long, help: "Planner: mcpp (default), seq:K, seq:K:MODEL, uniform.")
    var planner: String = "mcpp"

    @Option(name: .long, help: "Seed for the planner and simulated draws.")
    var seed: UInt64?

    @Option(name: .long, help: "Priority; higher runs first when slots are short.")
    var priority: Int = 0

    @Option(name: .long, help: "End the job early as infeasible when its estimated completion probability falls below this.")
    var minSuccess: Double?

    @Option(name: .long, help: "Whose fair share of the fleet the job counts against (default: $USER).")
    var tenant: String?

    func validate() throws {
        if let t = budgetTokens, t <= 0 { throw ValidationError("--budget-tokens must be positive, got \(t)") }
        if let t = budgetTokens, let problem = Limits.budgetTokens(t) { throw ValidationError("--budget-tokens: \(problem)") }
        if let u = budgetUsd, !(u > 0) { throw ValidationError("--budget-usd must be positive, got \(u)") }
        if let u = budgetUsd, let problem = Limits.budgetUSD(u) { throw ValidationError("--budget-usd: \(problem)") }
        if let d = deadline, parseDuration(d) == nil { throw ValidationError("bad --deadline '\(d)': expected e.g. 90s, 5m, 1h") }
        if let d = deadlineSeconds, let problem = Limits.seconds(d, "--deadline") { throw ValidationError(problem) }
        if let p = minSuccess, let problem = Limits.probability(p, "--min-success") { throw ValidationError(problem) }
        if let t = tenant, let problem = Limits.name(t, "--tenant") { throw ValidationError(problem) }
        if let problem = Limits.priority(priority) { throw ValidationError("--priority: \(problem)") }
    }

    var deadlineSeconds: Double? { deadline.flatMap(parseDuration) }

    func request(yaml: String, file: String) -> SubmitRequest {
        SubmitRequest(yaml: yaml, file: file, budgetTokens: budgetTokens, budgetUSD: budgetUsd, deadline: deadlineSeconds,
                      planner: planner, seed: seed, priority: priority, minSuccess: minSuccess,
                      tenant: tenant ?? ProcessInfo.processInfo.environment["USER"].flatMap { Limits.name($0, "") == nil ? $0 : nil } ?? "default")
    }
}

/// Reads and validates a workflow against the cluster; returns it with its text.
func loadWorkflow(_ path: String, cluster: Cluster?) throws -> (Workflow, String) {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigError(file: path, "cannot read the workflow file (does it exist?)")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: path, "the file is not UTF-8 text") }
    return (try Workflow.parse(yaml: text, file: path, knownModels: cluster?.modelNames), text)
}

/// Request/reply with the coordinator's client socket, over a DEALER.
/// Created and used on one thread, like every socket here.
final class CoordinatorClient {
    let socket: ZMQSocket
    let endpoint: String
    let codec = WireCodec()
    /// Connection events, to say why nothing answers (a key problem, or no connection at all).
    let monitor: ZMQMonitor?
    var link = LinkState()
    let usesCurve: Bool

    init(endpoint: String, context: ZMQContext, curve: (serverKey: String, keys: CurveKeyPair)? = nil) throws {
        self.endpoint = endpoint
        socket = try ZMQSocket(context, .dealer)
        if let curve { try socket.setCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        usesCurve = curve != nil
        monitor = try? ZMQMonitor(socket)
        try socket.connect(endpoint)
    }

    deinit { monitor?.close() }

    func request(_ r: ClientRequest, timeout: Double = 5) throws -> ClientReply {
        try socket.send([codec.encode(r)])
        var poller = ZMQPoller()
        poller.add(socket)
        let deadline = Date().timeIntervalSince1970 + timeout
        while true {
            let left = deadline - Date().timeIntervalSince1970
            if left <= 0 {
                if let monitor { link.note(monitor.take()) }
                if let problem = link.problem(endpoint, curve: usesCurve) { throw CLIError.unreachable(problem) }
                throw CLIError.unreachable("cannot reach the coordinator at \(endpoint) (no answer in \(formatDuration(timeout))); is it running?")
            }
            try poller.poll(timeout: left)
            if poller.isReadable(0), let frames = try socket.receive(dontWait: true), let last = frames.last {
                return try codec.decode(ClientReply.self, from: last)
            }
        }
    }

    /// Submits a workflow: a quick request first, so an unreachable coordinator is reported in
    /// seconds, then the submission, which may take a while to parse on a large workflow.
    func submit(_ request: SubmitRequest) throws -> String {
        _ = try self.request(.workers)
        switch try self.request(.submit(request), timeout: 120) {
        case .submitted(let id): return id
        case .error(let code, let message): throw CLIError(code: code == 2 ? 2 : 1, message: message)
        default: throw CLIError(code: 1, message: "unexpected reply from the coordinator")
        }
    }

    /// Polls a job until it ends, then gives its in-flight attempts up to `settle` seconds to
    /// report what they used, so the totals printed are final. `onUpdate` sees every report;
    /// `shouldCancel` is asked each round (Ctrl-C cancels the job).
    func waitForEnd(_ id: String, interval: Double, settle: Double = 5, shouldCancel: () -> Bool = { false },
                    onUpdate: (JobReport) -> Void = { _ in }) throws -> JobReport {
        var report = try job(.status(job: id))
        while !report.state.isTerminal {
            if shouldCancel() { return try job(.cancel(job: id)) }
            Thread.sleep(forTimeInterval: interval)
            report = try job(.status(job: id))
            onUpdate(report)
        }
        let until = Date().addingTimeInterval(settle)
        while report.budget.reservedTokens > 0 && Date() < until {
            Thread.sleep(forTimeInterval: interval)
            report = try job(.status(job: id))
        }
        return report
    }

    func job(_ r: ClientRequest) throws -> JobReport {
        switch try request(r) {
        case .job(let j): return j
        case .error(let code, let message): throw CLIError(code: code == 2 ? 2 : 1, message: message)
        default: throw CLIError(code: 1, message: "unexpected reply from the coordinator")
        }
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    if let data = try? e.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
}

/// Exit status for a finished job: 0 succeeded, 1 anything else.
func exitStatus(_ job: JobReport) -> Int32 { job.state == .succeeded ? 0 : 1 }

/// Installs SIGINT/SIGTERM handlers that set `stop` (graceful shutdown).
func onTerminationSignals(_ stop: StopSignal) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { sig in
        signal(sig, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        source.setEventHandler { stop.set() }
        source.resume()
        return source
    }
}
