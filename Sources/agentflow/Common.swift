import AgentFlowCore
import ArgumentParser
import Foundation
import Wire
import ZeroMQ

/// An error that ends the command with a given exit status and message.
struct CLIError: Error, CustomStringConvertible {
    var code: Int32
    var message: String
    /// Exit 3 with no TCP connection ever made: no coordinator listens there (as opposed to one
    /// that refuses our key or does not answer). Read commands then fall back to the database.
    var nobodyListening = false
    var description: String { message }

    static func badInput(_ m: String) -> CLIError { CLIError(code: 2, message: m) }
    static func unreachable(_ m: String) -> CLIError { CLIError(code: 3, message: m) }

    /// The coordinator's refusal as an exit status (README, "Exit codes"): bad input (wire code
    /// 2) and an unknown job or worker (4) are the user's input, exit 2; anything else 1.
    static func refused(code: Int, _ message: String) -> CLIError {
        CLIError(code: code == 2 || code == 4 ? 2 : 1, message: message)
    }

    static let unexpectedReply = CLIError(code: 1, message: "unexpected reply from the coordinator")
}

/// `--cluster` and `--coordinator`, shared by every command.
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("cluster"), help: "Cluster file (default: ./cluster.yaml).")
    var clusterFlag: String?

    @Option(name: .long, help: "Client endpoint of the coordinator; several coordinators: separated by commas (overrides AGENTFLOW_COORDINATOR and the cluster file).")
    var coordinator: String?

    /// The cluster file: the flag's, else `./cluster.yaml`.
    var cluster: String { clusterFlag ?? "cluster.yaml" }

    @Option(name: .long, help: "This client's CURVE key file (default: $AGENTFLOW_CLIENT_KEY, coordinator.curve.clientKeyFile, ~/.config/agentflow/client.key).")
    var key: String?

    func load() throws -> Cluster {
        try Cluster.load(path: cluster)
    }

    /// The cluster file if there is one: a `--cluster` that cannot be read is an error (exit 2),
    /// a missing default `./cluster.yaml` is not (client commands then use the defaults).
    func loadIfPresent() throws -> Cluster? {
        guard clusterFlag != nil || FileManager.default.fileExists(atPath: cluster) else { return nil }
        return try load()
    }

    /// A client for the coordinator: the endpoint and the CURVE settings of the cluster file.
    func makeClient() throws -> CoordinatorClient {
        let spec = try loadIfPresent()
        return try CoordinatorClient(endpoints: try clientEndpoints(spec), context: ZMQContext(), curve: try clientCurve(spec, keyFile: clientKeyFile(spec, flag: key)))
    }

    /// The SQLite file the coordinator of this cluster writes (nil: not a file, e.g. PostgreSQL).
    func databasePath() throws -> String? {
        let path = try loadIfPresent()?.coordinator.database ?? CoordinatorSpec().database
        return path.contains("://") ? nil : path
    }

    /// The client endpoint: the flag, else AGENTFLOW_COORDINATOR, else the cluster file's, else the default.
    func clientEndpoint(_ spec: Cluster? = nil) throws -> String {
        if let coordinator { return coordinator }
        if let env = ProcessInfo.processInfo.environment["AGENTFLOW_COORDINATOR"], !env.isEmpty {
            guard env.hasPrefix("tcp://") || env.hasPrefix("ipc://") else {
                throw CLIError.badInput("AGENTFLOW_COORDINATOR must be a ZeroMQ endpoint like tcp://10.0.0.1:5556, got '\(env)'")
            }
            return env
        }
        return try (spec ?? loadIfPresent())?.coordinator.clients ?? CoordinatorSpec().clients
    }

    /// Every client endpoint to try, in order (several coordinators share one PostgreSQL
    /// database): the flag's or AGENTFLOW_COORDINATOR's comma-separated list, else the cluster
    /// file's `coordinator.clients` list, else the default.
    func clientEndpoints(_ spec: Cluster? = nil) throws -> [String] {
        let env = ProcessInfo.processInfo.environment["AGENTFLOW_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
        if let given = coordinator ?? env {
            return try coordinatorEndpoints(flag: given, fromCluster: nil, default: given, what: coordinator != nil ? "--coordinator" : "AGENTFLOW_COORDINATOR")
        }
        return try (spec ?? loadIfPresent())?.coordinator.clientEndpoints ?? [CoordinatorSpec().clients]
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

    @Option(name: .long, help: "The tenant the job's spend and fair share count against (default: your credential's tenant, else 'default'; a credential bound to a tenant cannot name another).")
    var tenant: String?

    func validate() throws {
        if let t = budgetTokens, t <= 0 { throw ValidationError("--budget-tokens must be positive, got \(t)") }
        if let t = budgetTokens, let problem = Limits.budgetTokens(t) { throw ValidationError("--budget-tokens: \(problem)") }
        if let u = budgetUsd, !(u > 0) { throw ValidationError("--budget-usd must be positive, got \(u)") }
        if let u = budgetUsd, let problem = Limits.budgetUSD(u) { throw ValidationError("--budget-usd: \(problem)") }
        if let d = deadline, parseDuration(d) == nil { throw ValidationError("bad --deadline '\(d)': expected e.g. 90s, 5m, 1h") }
        if let d = deadline, let span = parseDuration(d), let problem = Limits.span(span, Limits.spanRange, "--deadline", text: d) { throw ValidationError(problem) }
        if let p = minSuccess, let problem = Limits.probability(p, "--min-success") { throw ValidationError(problem) }
        if let t = tenant, let problem = Limits.name(t, "--tenant") { throw ValidationError(problem) }
        if let problem = Limits.priority(priority) { throw ValidationError("--priority: \(problem)") }
    }

    /// The deadline in seconds, as a submission carries it.
    var deadlineSeconds: Double? { deadline.flatMap(parseDuration)?.seconds }

    func request(yaml: String, file: String) -> SubmitRequest {
        SubmitRequest(yaml: yaml, file: file, budgetTokens: budgetTokens, budgetUSD: budgetUsd, deadline: deadlineSeconds,
                      planner: planner, seed: seed, priority: priority, minSuccess: minSuccess,
                      tenant: tenant)
    }
}

/// Request/reply with the coordinator's client socket, over a DEALER.
/// Created and used on one thread, like every socket here.
///
/// With several coordinator endpoints (one leads, the others stand by) it asks the first; a
/// coordinator that no one listens at, that does not answer a read, or that stands by
/// (``ClientReply/notLeader``) sends it to the next endpoint, each at most once per request. A
/// submission or cancellation that was sent and not answered is never sent again elsewhere: it
/// may have been accepted.
final class CoordinatorClient {
    private(set) var socket: ZMQSocket
    private(set) var endpoint: String
    let endpoints: [String]
    let context: ZMQContext
    let curve: (serverKey: String, keys: CurveKeyPair)?
    let codec = WireCodec()
    /// Connection events, to say why nothing answers (a key problem, or no connection at all).
    private(set) var monitor: ZMQMonitor?
    var link = LinkState()
    let usesCurve: Bool
    /// When set, a request gives up after this many seconds if no TCP connection was ever made
    /// (the port refuses): read commands that can fall back to the database do not wait the
    /// full timeout for a coordinator that is not there.
    var giveUpWithoutConnection: Double?

    convenience init(endpoint: String, context: ZMQContext, curve: (serverKey: String, keys: CurveKeyPair)? = nil) throws {
        try self.init(endpoints: [endpoint], context: context, curve: curve)
    }

    /// `endpoints` must not be empty.
    init(endpoints: [String], context: ZMQContext, curve: (serverKey: String, keys: CurveKeyPair)? = nil) throws {
        precondition(!endpoints.isEmpty, "a client needs a coordinator endpoint")
        self.endpoints = endpoints
        self.context = context
        self.curve = curve
        usesCurve = curve != nil
        (endpoint, socket, monitor) = try Self.connect(endpoints[0], context: context, curve: curve, check: endpoints.count == 1)
    }

    private static func connect(_ endpoint: String, context: ZMQContext, curve: (serverKey: String, keys: CurveKeyPair)?,
                                check: Bool) throws -> (String, ZMQSocket, ZMQMonitor?) {
        if check { try checkUnixSocket(endpoint) }
        let socket = try ZMQSocket(context, .dealer)
        if let curve { try socket.setCurveClient(serverKey: curve.serverKey, keys: curve.keys) }
        let monitor = try? ZMQMonitor(socket)
        try socket.connect(endpoint)
        return (endpoint, socket, monitor)
    }

    /// Moves to the endpoint after the current one.
    private func moveOn() throws {
        monitor?.close()
        socket.close()
        let next = endpoints[((endpoints.firstIndex(of: endpoint) ?? 0) + 1) % endpoints.count]
        (endpoint, socket, monitor) = try Self.connect(next, context: context, curve: curve, check: false)
        link = LinkState()
    }

    deinit { monitor?.close() }

    /// An `ipc://` endpoint this user may not use says so at once (exit 4), instead of timing out.
    static func checkUnixSocket(_ endpoint: String) throws {
        guard endpoint.hasPrefix("ipc://") else { return }
        let path = String(endpoint.dropFirst("ipc://".count))
        if access(path, F_OK) != 0 { throw CLIError.unreachable("no coordinator socket at \(path); is the coordinator running?") }
        if access(path, R_OK | W_OK) != 0 {
            throw CLIError(code: 4, message: "not allowed to use the coordinator's socket \(path): \(String(cString: strerror(errno))) "
                           + "(it is open to its owner and group only; coordinator.clientsGroup names the group)")
        }
    }

    func request(_ r: ClientRequest, timeout: Double = 5) throws -> ClientReply {
        let reply = try exchangeAnywhere(r, timeout: timeout)
        if case .error(let code, let message) = reply, code == ClientReply.notAuthorized {
            throw CLIError(code: 4, message: "refused by the coordinator: \(message)")
        }
        return reply
    }

    /// Whether `r` may be asked again elsewhere when unanswered: reads, not writes.
    static func isResendable(_ r: ClientRequest) -> Bool {
        switch r {
        case .status, .jobs, .attempts, .ledger, .events, .queryJobs, .outputs, .outputBundle, .transcript, .workers, .queue, .tenants: true
        case .submit, .cancel, .drain: false
        case .scoped(_, let inner): isResendable(inner)
        }
    }

    /// Asks the endpoints in turn (see the type's comment); the last one's failure is thrown.
    private func exchangeAnywhere(_ r: ClientRequest, timeout: Double) throws -> ClientReply {
        guard endpoints.count > 1 else { return try exchange(r, timeout: timeout) }
        let resendable = Self.isResendable(r)
        // Several coordinators: a dead host must not cost the whole timeout before the next.
        let patience = resendable ? min(timeout, 3) : timeout
        var tried = 0
        while true {
            tried += 1
            do {
                let reply = try exchange(r, timeout: patience)
                if case .error(let code, _) = reply, code == ClientReply.notLeader, tried < endpoints.count {
                    try moveOn()
                    continue
                }
                return reply
            } catch let e as CLIError where e.code == 3 && tried < endpoints.count && (resendable || e.nobodyListening) {
                try moveOn()
            }
        }
    }

    private func exchange(_ r: ClientRequest, timeout: Double) throws -> ClientReply {
        let answer = try socket.request(codec.encode(r), timeout: timeout, slice: giveUpWithoutConnection == nil ? nil : 0.1) { [self] waited in
            if let patience = giveUpWithoutConnection, waited >= patience, let monitor {
                link.note(monitor.take())
                if !link.connectedOnce && link.retries > 0, let problem = link.problem(endpoint, curve: usesCurve) {
                    throw CLIError(code: 3, message: problem, nobodyListening: true)
                }
            }
        }
        if let answer { return try codec.decode(ClientReply.self, from: answer) }
        if let monitor { link.note(monitor.take()) }
        if let problem = link.problem(endpoint, curve: usesCurve) {
            throw CLIError(code: 3, message: problem, nobodyListening: monitor != nil && !link.connectedOnce)
        }
        throw CLIError.unreachable("connected to \(endpoint), but no coordinator answered in \(formatDuration(timeout)): "
            + "is it the coordinator's clients endpoint (not its workers one), and is the coordinator overloaded?")
    }

    /// Submits a workflow: a quick request first, so an unreachable coordinator is reported in
    /// seconds, then the submission, which may take a while to parse on a large workflow.
    func submit(_ request: SubmitRequest) throws -> String {
        _ = try self.request(.workers)
        switch try self.request(.submit(request), timeout: 120) {
        case .submitted(let id): return id
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
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
        let until = ContinuousClock.now + .clampedSeconds(settle)
        while report.budget.reservedTokens > 0 && ContinuousClock.now < until {
            Thread.sleep(forTimeInterval: interval)
            report = try job(.status(job: id))
        }
        return report
    }

    func job(_ r: ClientRequest) throws -> JobReport {
        switch try request(r) {
        case .job(let j): return j
        case .error(let code, let message): throw CLIError.refused(code: code, message)
        default: throw CLIError.unexpectedReply
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
