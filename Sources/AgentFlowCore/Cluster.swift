import Foundation
import Yams

/// A model's prices, and what tokens cost at them: ``ModelSpec`` (the cluster's) and the
/// planner's ``Planner/PlanModel`` price tokens the same way.
public protocol TokenPriced {
    /// USD per 1M input tokens.
    var priceInput: Double { get }
    /// USD per 1M output tokens.
    var priceOutput: Double { get }
}

extension TokenPriced {
    /// What `input` and `output` tokens cost.
    public func usd(input: Int, output: Int) -> Double {
        (Double(input) * priceInput + Double(output) * priceOutput) / 1_000_000
    }

    /// The most `tokens` tokens can cost: every one at the dearer price.
    public func worstCaseUSD(tokens: Int) -> Double {
        Double(tokens) * max(priceInput, priceOutput) / 1_000_000
    }
}

/// A model the cluster serves, with its prices (DESIGN.md §2).
public struct ModelSpec: TokenPriced, Codable, Sendable, Equatable {
    public var name: String
    /// USD per 1M input tokens.
    public var priceInput: Double
    /// USD per 1M output tokens.
    public var priceOutput: Double
    /// Context length in tokens.
    public var context: Int

    public init(name: String, priceInput: Double, priceOutput: Double, context: Int) {
        self.name = name
        self.priceInput = priceInput
        self.priceOutput = priceOutput
        self.context = context
    }
}

/// What runs a worker's attempts.
public enum BackendSpec: Codable, Sendable, Equatable {
    /// Any OpenAI-compatible server (chat completions, streaming), with its key's source,
    /// headers, served name, TLS trust and timeout.
    case openai(OpenAIEndpoint)
    /// A simulated model: seconds × timeScale real seconds; draws seeded by `seed`.
    case sim(timeScale: Double, seed: UInt64)

    /// An OpenAI-compatible server at `url` with no key, headers or other settings.
    public static func openai(url: String) -> BackendSpec { .openai(OpenAIEndpoint(url: url)) }
}

/// How `agentflow node` starts a worker's model server: a shell command with `{gpu}` and
/// `{port}` substituted, run with `CUDA_VISIBLE_DEVICES` set to the worker's GPUs; the backend
/// URL is then `http://127.0.0.1:{port}/v1` unless the backend gives one.
public struct ServeSpec: Codable, Sendable, Equatable {
    public var command: String
    public var port: Int

    public init(command: String, port: Int) {
        self.command = command
        self.port = port
    }
}

/// A worker process as the cluster file declares it.
public struct WorkerSpec: Codable, Sendable, Equatable {
    public var name: String
    public var gpus: [Int]
    public var model: String
    public var backend: BackendSpec
    public var slots: Int
    /// The host whose `agentflow node` runs this worker (nil: run it with `agentflow worker`).
    public var host: String?
    /// The model server `agentflow node` starts and keeps running for this worker.
    public var serve: ServeSpec?

    public init(name: String, gpus: [Int], model: String, backend: BackendSpec, slots: Int, host: String? = nil, serve: ServeSpec? = nil) {
        self.name = name
        self.gpus = gpus
        self.model = model
        self.backend = backend
        self.slots = slots
        self.host = host
        self.serve = serve
    }
}

/// ZeroMQ CURVE settings: encryption and authentication on both coordinator sockets.
public struct CurveSpec: Codable, Sendable, Equatable {
    /// The coordinator's public key (Z85); workers and clients need it to connect.
    public var serverKey: String
    /// A key file (`agentflow keys --out FILE`) holding the coordinator's secret key; only the
    /// coordinator reads it.
    public var serverKeyFile: String?
    /// Public keys allowed to connect; empty = any peer that knows `serverKey`.
    public var authorizedKeys: [String]
    /// A key file with this host's worker/client key pair; without one a fresh pair is made per process.
    public var clientKeyFile: String?
    /// Worker names (or `prefix-*`) bound to the public key that alone may register them.
    public var workerKeys: [WorkerKeyBook.Entry]
    /// An enrolment file of more `NAME: KEY` lines (`agentflow keys enroll`), re-read on SIGHUP.
    public var enrolment: String?
    /// Client public keys and what each may do on the client socket (`clientKeys`); when set,
    /// a client whose key is not listed, or whose role is too low for a request, is refused.
    public var clientKeys: [String: ClientScope] = [:]

    public init(serverKey: String, serverKeyFile: String? = nil, authorizedKeys: [String] = [], clientKeyFile: String? = nil,
                workerKeys: [WorkerKeyBook.Entry] = [], enrolment: String? = nil) {
        self.serverKey = serverKey
        self.serverKeyFile = serverKeyFile
        self.authorizedKeys = authorizedKeys
        self.clientKeyFile = clientKeyFile
        self.workerKeys = workerKeys
        self.enrolment = enrolment
    }
}

/// The coordinator's endpoints, database and liveness settings.
public struct CoordinatorSpec: Codable, Sendable, Equatable {
    /// What workers and clients connect to (the first endpoint, when `coordinator.workers` /
    /// `clients` list several: ``workerEndpoints``, ``clientEndpoints``).
    public var workers: String = "tcp://127.0.0.1:5555"
    public var clients: String = "tcp://127.0.0.1:5556"
    /// The endpoints after the first, when `coordinator.workers` / `clients` are lists (several
    /// coordinators on one PostgreSQL database: one leads, the others stand by).
    public var moreWorkers: [String] = []
    public var moreClients: [String] = []
    /// What the coordinator binds, when not the same (`coordinator.bind`), e.g. tcp://0.0.0.0:5555.
    public var bindWorkers: String?
    public var bindClients: String?
    public var database: String = ".agentflow/agentflow.db"
    public var heartbeat: Duration = .seconds(1)
    public var liveness: Int = 3
    /// Attempts per slot the coordinator sends a worker beyond what its slots run
    /// (`coordinator.prefetch`, 0…``Limits/maxPrefetch``): the worker holds them queued and
    /// starts the next the moment a slot frees, so the coordinator's commit is off the slot's
    /// path. 0 (the default): a worker gets an attempt only for a free slot — an attempt sent
    /// ahead is one the cross-job policy can no longer give to a more urgent job that arrives
    /// while it waits (`bench fleet` with prefetch 1: fleet goodput −0.014 / −0.043 / −0.061 at
    /// loads 0.7 / 1 / 1.5, docs/benchmarks.md), so it pays only where attempts are short enough
    /// that the coordinator's millisecond round trip is a visible share of one.
    public var prefetch: Int = 0
    /// With a PostgreSQL database: how long the leading coordinator's lease runs past its last
    /// commit (`coordinator.lease`); a standby takes over this long after the leader stopped
    /// committing. Shorter fails over sooner; longer tolerates longer database stalls.
    public var lease: Duration = .seconds(5)
    public var curve: CurveSpec?
    /// `HOST:PORT` to serve the HTTP API, metrics and dashboard on; nil: no HTTP.
    public var http: String?
    /// File of bearer tokens for HTTP (`read TOKEN` / `admin TOKEN` lines).
    public var httpTokens: String?
    /// Caps and timeouts of HTTP connections (`coordinator.httpLimits`).
    public var httpLimits = HTTPLimits()
    /// How much of the attempts' transcripts is kept (`coordinator.transcripts`).
    public var transcripts = TranscriptLimits()
    /// The group that may use an `ipc://` client socket (mode 0660); nil: the coordinator's own.
    public var clientsGroup: String?

    public init() {}

    /// A worker silent for this long is dead.
    public var deadAfter: Duration { heartbeat * liveness }

    /// The endpoints the coordinator binds.
    public var workersBind: String { bindWorkers ?? workers }
    public var clientsBind: String { bindClients ?? clients }

    /// Every endpoint workers may find a coordinator at, in the order they try them.
    public var workerEndpoints: [String] { [workers] + moreWorkers }
    /// Every endpoint clients may find a coordinator at, in the order they try them.
    public var clientEndpoints: [String] { [clients] + moreClients }
}

/// `scheduling:` in cluster.yaml: how jobs share the workers.
public struct SchedulingSpec: Codable, Sendable, Equatable {
    /// The cross-job dispatch policy.
    public static let policies = ["fifo", "edf", "fleet"]
    public var policy = "fleet"
    /// Fleet policy: a waiting job's score doubles every `aging` (no starvation).
    public var aging: Duration = .seconds(300)
    /// Tenant → weight of its fair share (missing tenants weigh 1).
    public var tenants: [String: Double] = [:]
    /// A job whose deadline is at risk may take a slot from a lower-ranked job's running attempt
    /// (docs/benchmarks.md "Preemption" says why it is off by default).
    public var preemption = false
    /// How fair-share usage is weighed and forgotten (`scheduling.fairShare`).
    public var fairShare = FairShareSpec()

    public init(policy: String = "fleet", aging: Duration = .seconds(300), tenants: [String: Double] = [:], preemption: Bool = false) {
        self.policy = policy
        self.aging = aging
        self.tenants = tenants
        self.preemption = preemption
    }
}

/// cluster.yaml (DESIGN.md §4).
public struct Cluster: Codable, Sendable, Equatable {
    public var coordinator: CoordinatorSpec
    public var models: [ModelSpec]
    public var workers: [WorkerSpec]
    public var scaffold: ScaffoldOptions?
    public var scheduling: SchedulingSpec? = nil
    /// Limits of every attempt's sandbox on the cluster's workers (`sandbox:`).
    public var sandbox: SandboxSpec? = nil
    /// Where traces go (`telemetry: {otlp: URL}`); nil: no traces.
    public var telemetry: TelemetrySpec? = nil
    /// Teams sharing the fleet, with weights and budgets per period (`tenants:`; ``TenantSpec``).
    public var tenants: [TenantSpec] = []

    public init(coordinator: CoordinatorSpec = CoordinatorSpec(), models: [ModelSpec], workers: [WorkerSpec], scaffold: ScaffoldOptions? = nil) {
        self.coordinator = coordinator
        self.models = models
        self.workers = workers
        self.scaffold = scaffold
    }

    public func model(_ name: String) -> ModelSpec? { models.first { $0.name == name } }
    public var modelNames: Set<String> { Set(models.map(\.name)) }

    public static func load(path: String) throws -> Cluster {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, "cannot read the cluster file (does it exist? pass --cluster FILE)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: path, "the file is not UTF-8 text") }
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml text: String, file: String) throws -> Cluster {
        let r = YAMLReader(file: file)
        let root = try r.compose(text)
        let m = try r.mapping(root, "a cluster file")
        try r.checkKeys(m, allowed: ["coordinator", "models", "workers", "scaffold", "scheduling", "sandbox", "telemetry", "tenants"], in: "the cluster file")

        var coordinator = CoordinatorSpec()
        if let c = m["coordinator"] {
            let cm = try r.mapping(c, "coordinator")
            try r.checkKeys(cm, allowed: ["workers", "clients", "bind", "database", "lease", "heartbeat", "liveness", "curve", "http", "httpTokens", "httpLimits", "clientsGroup", "transcripts", "prefetch"], in: "coordinator")
            if let n = cm["http"] { coordinator.http = try r.string(n, "coordinator.http") }
            if let n = cm["transcripts"] { coordinator.transcripts = try parseTranscriptLimits(n, r) }
            if let n = cm["httpTokens"] { coordinator.httpTokens = try r.string(n, "coordinator.httpTokens") }
            if let n = cm["httpLimits"] { coordinator.httpLimits = try parseHTTPLimits(n, r) }
            if let n = cm["clientsGroup"] {
                let g = try r.string(n, "coordinator.clientsGroup")
                if let problem = Limits.name(g, "coordinator.clientsGroup") { throw r.error(n, problem) }
                coordinator.clientsGroup = g
            }
            if let n = cm["curve"] { coordinator.curve = try parseCurve(n, r) }
            if let n = cm["workers"] { (coordinator.workers, coordinator.moreWorkers) = try endpoints(n, r, "coordinator.workers") }
            if let n = cm["clients"] { (coordinator.clients, coordinator.moreClients) = try endpoints(n, r, "coordinator.clients") }
            if let n = cm["bind"] { try parseBind(n, r, into: &coordinator) }
            let listed = [("workers", coordinator.moreWorkers), ("clients", coordinator.moreClients)].filter { !$0.1.isEmpty }
            if let (key, _) = listed.first, coordinator.bindWorkers == nil || coordinator.bindClients == nil {
                throw r.error(cm[key], """
                    coordinator.\(key) lists several coordinators: give coordinator.bind, what each of them binds \
                    (an address like tcp://0.0.0.0, at the list's port)
                    """)
            }
            if let n = cm["database"] { coordinator.database = try r.string(n, "coordinator.database") }
            if let n = cm["heartbeat"] {
                coordinator.heartbeat = try r.duration(n, "coordinator.heartbeat", in: Limits.heartbeatRange)
            }
            if let n = cm["lease"] {
                coordinator.lease = try r.duration(n, "coordinator.lease", in: .seconds(1) ... .seconds(300))
            }
            if let n = cm["liveness"] {
                coordinator.liveness = try r.int(n, "coordinator.liveness")
                if coordinator.liveness < 1 { throw r.error(n, "coordinator.liveness must be at least 1") }
                if let problem = Limits.count(coordinator.liveness, 1...Limits.maxLiveness, "coordinator.liveness") { throw r.error(n, problem) }
            }
            if let n = cm["prefetch"] {
                coordinator.prefetch = try r.int(n, "coordinator.prefetch")
                if let problem = Limits.count(coordinator.prefetch, 0...Limits.maxPrefetch, "coordinator.prefetch") { throw r.error(n, problem) }
            }
        }

        guard let modelsNode = m["models"] else { throw r.error(root, "missing 'models': the cluster needs at least one model") }
        var models: [ModelSpec] = []
        for node in try r.sequence(modelsNode, "models") {
            let mm = try r.mapping(node, "a model")
            try r.checkKeys(mm, allowed: ["name", "price", "context"], in: "a model")
            guard let nameNode = mm["name"] else { throw r.error(node, "a model is missing 'name'") }
            let name = try r.string(nameNode, "model name")
            if models.contains(where: { $0.name == name }) { throw r.error(nameNode, "duplicate model '\(name)'") }
            var pin = 0.0, pout = 0.0
            if let p = mm["price"] {
                let pm = try r.mapping(p, "price of '\(name)'")
                try r.checkKeys(pm, allowed: ["input", "output"], in: "price of '\(name)'")
                if let n = pm["input"] { pin = try r.double(n, "price.input") }
                if let n = pm["output"] { pout = try r.double(n, "price.output") }
                if pin < 0 || pout < 0 { throw r.error(p, "prices of '\(name)' must not be negative") }
                if let problem = Limits.price(pin, "price.input of '\(name)' (USD per 1M tokens)") { throw r.error(pm["input"], problem) }
                if let problem = Limits.price(pout, "price.output of '\(name)' (USD per 1M tokens)") { throw r.error(pm["output"], problem) }
            }
            let context = try mm["context"].map { try r.int($0, "context of '\(name)'") } ?? 4096
            if context <= 0 { throw r.error(mm["context"], "context of '\(name)' must be positive") }
            if let problem = Limits.count(context, 1...Limits.maxContext, "context of '\(name)'") { throw r.error(mm["context"], problem) }
            models.append(ModelSpec(name: name, priceInput: pin, priceOutput: pout, context: context))
        }
        if models.isEmpty { throw r.error(modelsNode, "'models' is empty") }

        var workers: [WorkerSpec] = []
        if let w = m["workers"] {
            for node in try r.sequence(w, "workers") {
                let spec = try parseWorker(node, r, models: Set(models.map(\.name)))
                if workers.contains(where: { $0.name == spec.name }) { throw r.error(node, "duplicate worker name '\(spec.name)'") }
                workers.append(spec)
            }
        }
        let scaffold = try m["scaffold"].map { try Workflow.parseScaffold($0, r) }
        var cluster = Cluster(coordinator: coordinator, models: models, workers: workers, scaffold: scaffold)
        cluster.scheduling = try m["scheduling"].map { try parseScheduling($0, r) }
        cluster.sandbox = try m["sandbox"].map { try SandboxSpec.parse($0, r) }
        cluster.telemetry = try m["telemetry"].map { try parseTelemetry($0, r) }
        cluster.tenants = try m["tenants"].map { try parseTenants($0, r, scheduling: cluster.scheduling) } ?? []
        try checkClientKeyTenants(cluster, m, r)
        return cluster
    }

    /// With tenants listed, a client key bound to a tenant that is not is refused: its jobs would
    /// spend outside every tenant's budget (a misspelt `team_a` is not `team-a`).
    static func checkClientKeyTenants(_ cluster: Cluster, _ root: Node.Mapping, _ r: YAMLReader) throws {
        guard let problem = cluster.unlistedTenantProblem(cluster.coordinator.curve?.clientKeys.values.compactMap(\.tenant) ?? []) else { return }
        let keysNode = root["coordinator"]?.mapping?["curve"]?.mapping?["clientKeys"]
        throw r.error(keysNode, "coordinator.curve.clientKeys: \(problem)")
    }

    /// Why credentials bound to `tenants` cannot be used here: nil when every one is listed
    /// under `tenants:`, or when none are listed (then any tenant name is a tenant of weight 1).
    public func unlistedTenantProblem(_ bound: [String]) -> String? {
        guard !tenants.isEmpty, let stray = bound.sorted().first(where: { tenant($0) == nil }) else { return nil }
        return "a credential is bound to tenant '\(Limits.printable(stray))', which is not listed under tenants: ("
            + tenants.map(\.name).joined(separator: ", ") + "); its jobs would spend outside every tenant's budget"
    }

    static func parseScheduling(_ node: Node, _ r: YAMLReader) throws -> SchedulingSpec {
        let m = try r.mapping(node, "scheduling")
        try r.checkKeys(m, allowed: ["policy", "aging", "tenants", "preemption", "fairShare"], in: "scheduling")
        var spec = SchedulingSpec()
        if let n = m["policy"] {
            spec.policy = try r.string(n, "scheduling.policy")
            guard SchedulingSpec.policies.contains(spec.policy) else {
                throw r.error(n, "scheduling.policy must be one of \(SchedulingSpec.policies.joined(separator: ", ")), got '\(spec.policy)'")
            }
        }
        if let n = m["preemption"] { spec.preemption = try r.bool(n, "scheduling.preemption") }
        if let n = m["fairShare"] { spec.fairShare = try parseFairShare(n, r) }
        if let n = m["aging"] {
            spec.aging = try r.duration(n, "scheduling.aging", in: Limits.spanRange)
        }
        if let n = m["tenants"] {
            for (k, v) in try r.mapping(n, "scheduling.tenants") {
                let name = try r.string(k, "a tenant name")
                if let problem = Limits.name(name, "a tenant's name") { throw r.error(k, problem) }
                let weight = try r.double(v, "the weight of tenant '\(name)'")
                if let problem = Limits.tenantWeight(weight, "the weight of tenant '\(name)'") { throw r.error(v, problem) }
                spec.tenants[name] = weight
            }
        }
        return spec
    }

    static func parseCurve(_ node: Node, _ r: YAMLReader) throws -> CurveSpec {
        let m = try r.mapping(node, "coordinator.curve")
        try r.checkKeys(m, allowed: ["serverKey", "serverKeyFile", "authorizedKeys", "clientKeyFile", "workerKeys", "enrolment", "clientKeys"], in: "coordinator.curve")
        guard let k = m["serverKey"] else { throw r.error(node, "coordinator.curve needs 'serverKey' (the coordinator's public key; see agentflow keys)") }
        let key = try r.string(k, "coordinator.curve.serverKey")
        if key.count != 40 { throw r.error(k, "coordinator.curve.serverKey must be a 40-character Z85 key") }
        let authorized = try m["authorizedKeys"].map { try r.strings($0, "coordinator.curve.authorizedKeys") } ?? []
        for (i, a) in authorized.enumerated() where a.count != 40 {
            throw r.error(m["authorizedKeys"]?.sequence?[i], "authorized key '\(a)' must be a 40-character Z85 key")
        }
        var workerKeys: [WorkerKeyBook.Entry] = []
        if let wk = m["workerKeys"] {
            for (k, v) in try r.mapping(wk, "coordinator.curve.workerKeys") {
                let name = try r.string(k, "a worker name"), key = try r.string(v, "the key of '\(name)'")
                do {
                    try WorkerKeyBook.check(name: name, key: key, file: r.file, line: nil)
                } catch let e as ConfigError {
                    throw r.error(k, e.message)
                }
                workerKeys.append(WorkerKeyBook.Entry(pattern: name, key: key))
            }
        }
        var spec = CurveSpec(serverKey: key, serverKeyFile: try m["serverKeyFile"].map { try r.string($0, "serverKeyFile") },
                             authorizedKeys: authorized, clientKeyFile: try m["clientKeyFile"].map { try r.string($0, "clientKeyFile") },
                             workerKeys: workerKeys, enrolment: try m["enrolment"].map { try r.string($0, "coordinator.curve.enrolment") })
        if let ck = m["clientKeys"] {
            spec.clientKeys = try parseClientKeys(ck, r)
            // A key is a worker's or a client's: a node's key must never act as a client.
            if let both = spec.workerKeys.first(where: { spec.clientKeys[$0.key] != nil }) {
                throw r.error(ck, "key \(both.key) is both a worker key (workerKeys: \(both.pattern)) and a client key; give operators and nodes keys of their own")
            }
        }
        return spec
    }

    /// `clientKeys: {"<public key>": read|submit|admin, "<key>": {role: submit, tenant: team-a}, ...}`.
    static func parseClientKeys(_ node: Node, _ r: YAMLReader) throws -> [String: ClientScope] {
        var keys: [String: ClientScope] = [:]
        for (k, v) in try r.mapping(node, "coordinator.curve.clientKeys") {
            let key = try r.string(k, "a client key")
            if key.count != 40 { throw r.error(k, "client key '\(Limits.printable(key))' must be a 40-character Z85 key") }
            var role = "", tenant: String?
            if let m = v.mapping {
                try r.checkKeys(m, allowed: ["role", "tenant"], in: "client key \(key)")
                guard let roleNode = m["role"] else { throw r.error(v, "client key \(key) needs a 'role' (read, submit or admin)") }
                role = try r.string(roleNode, "the role of client key \(key)")
                tenant = try m["tenant"].map { try r.string($0, "the tenant of client key \(key)") }
            } else {
                role = try r.string(v, "the role of client key \(key)")
            }
            switch ClientScope.parse(role: role, options: tenant.map { ["tenant=\($0)"] } ?? []) {
            case .success(let scope): keys[key] = scope
            case .failure(let p): throw r.error(v, "client key \(key): \(p.message)")
            }
        }
        return keys
    }

    /// `bind: tcp://0.0.0.0` (an address; the ports of `workers` and `clients`) or
    /// `bind: {workers: tcp://0.0.0.0:5555, clients: tcp://0.0.0.0:5556}`.
    static func parseBind(_ node: Node, _ r: YAMLReader, into c: inout CoordinatorSpec) throws {
        if node.scalar != nil {
            let address = try endpoint(node, r, "coordinator.bind")
            guard address.hasPrefix("tcp://"), Endpoint.tcpPort(address) == nil else {
                throw r.error(node, "coordinator.bind as one value is an address without a port (tcp://0.0.0.0); give ports with bind: {workers: tcp://0.0.0.0:5555, clients: tcp://0.0.0.0:5556}")
            }
            guard let w = Endpoint.bind(address: address, portOf: c.workers), let cl = Endpoint.bind(address: address, portOf: c.clients) else {
                throw r.error(node, "coordinator.bind as an address needs tcp:// endpoints with ports in coordinator.workers and coordinator.clients")
            }
            c.bindWorkers = w
            c.bindClients = cl
            return
        }
        let m = try r.mapping(node, "coordinator.bind")
        try r.checkKeys(m, allowed: ["workers", "clients"], in: "coordinator.bind")
        if let n = m["workers"] { c.bindWorkers = try endpoint(n, r, "coordinator.bind.workers") }
        if let n = m["clients"] { c.bindClients = try endpoint(n, r, "coordinator.bind.clients") }
    }

    /// Coordinators one list may name (three is the usual; a worker tries them all in turn).
    static let maxCoordinators = 16

    /// One endpoint, or a list of them (`[tcp://a:5555, tcp://b:5555]`): tcp, distinct, one
    /// port for the whole list (every coordinator binds that port on its own address).
    static func endpoints(_ node: Node, _ r: YAMLReader, _ what: String) throws -> (first: String, more: [String]) {
        guard let items = node.sequence else { return (try endpoint(node, r, what), []) }
        guard !items.isEmpty else { throw r.error(node, "\(what) is an empty list: give at least one endpoint") }
        if items.count > maxCoordinators { throw r.error(node, "\(what) lists \(items.count) endpoints; at most \(maxCoordinators)") }
        var list: [String] = []
        for item in items {
            let e = try endpoint(item, r, what)
            if items.count > 1 {
                guard e.hasPrefix("tcp://"), let port = Endpoint.tcpPort(e), port != "*" else {
                    throw r.error(item, "\(what): every endpoint of a list must be tcp://HOST:PORT (each coordinator on its own host), got '\(Limits.printable(e))'")
                }
                if let first = list.first, Endpoint.tcpPort(first) != port {
                    throw r.error(item, "\(what): every endpoint of the list must have the same port (each coordinator binds it), got \(Endpoint.tcpPort(first) ?? "") and \(port)")
                }
            }
            if list.contains(e) { throw r.error(item, "\(what) lists \(Limits.printable(e)) twice") }
            list.append(e)
        }
        return (list[0], Array(list.dropFirst()))
    }

    static func endpoint(_ node: Node, _ r: YAMLReader, _ what: String) throws -> String {
        let s = try r.string(node, what)
        guard s.hasPrefix("tcp://") || s.hasPrefix("ipc://") || s.hasPrefix("inproc://") else {
            throw r.error(node, "\(what) must be a ZeroMQ endpoint like tcp://127.0.0.1:5555, got '\(s)'")
        }
        return s
    }

    static func parseWorker(_ node: Node, _ r: YAMLReader, models: Set<String>) throws -> WorkerSpec {
        let m = try r.mapping(node, "a worker")
        try r.checkKeys(m, allowed: ["name", "gpus", "model", "backend", "slots", "host"], in: "a worker")
        guard let nameNode = m["name"] else { throw r.error(node, "a worker is missing 'name'") }
        let name = try r.string(nameNode, "worker name")
        if !isValidWorkerName(name) { throw r.error(nameNode, "worker name '\(name)' must be 1-128 letters, digits, '.', '_' or '-'") }
        let host = try m["host"].map { try r.string($0, "host of '\(name)'") }
        let gpus = try m["gpus"].map { g in try r.sequence(g, "gpus").map { try r.int($0, "a GPU id") } } ?? []
        if gpus.count > Limits.maxGPUs { throw r.error(m["gpus"], "worker '\(name)' lists \(gpus.count) GPUs; at most \(Limits.maxGPUs)") }
        for (i, g) in gpus.enumerated() where !(0...Limits.maxGPUID).contains(g) {
            throw r.error(m["gpus"]?.sequence?[i], "GPU id \(g) of worker '\(name)' must be from 0 to \(Limits.maxGPUID)")
        }
        guard let modelNode = m["model"] else { throw r.error(node, "worker '\(name)' is missing 'model'") }
        let model = try r.string(modelNode, "model")
        if !models.contains(model) { throw r.error(modelNode, "worker '\(name)' serves unknown model '\(model)'") }
        let slots = try m["slots"].map { try r.int($0, "slots") } ?? 1
        if slots < 1 { throw r.error(m["slots"], "worker '\(name)' needs at least 1 slot") }
        if let problem = Limits.count(slots, 1...Limits.maxSlots, "slots of worker '\(name)'") { throw r.error(m["slots"], problem) }
        guard let b = m["backend"] else { throw r.error(node, "worker '\(name)' is missing 'backend'") }
        let bm = try r.mapping(b, "backend")
        try r.checkKeys(bm, allowed: Set(["kind", "url", "timeScale", "seed", "serve", "port"]).union(OpenAIEndpoint.keys), in: "backend of '\(name)'")
        let kind = try bm["kind"].map { try r.string($0, "backend.kind") } ?? "openai"
        let backend: BackendSpec
        var serve: ServeSpec?
        switch kind {
        case "openai":
            if let s = bm["serve"] {
                let command = try r.string(s, "backend.serve")
                guard let p = bm["port"] else { throw r.error(s, "backend of '\(name)' with 'serve' needs 'port' (what {port} becomes)") }
                let port = try r.int(p, "backend.port")
                if !(1...65535).contains(port) { throw r.error(p, "backend.port must be 1-65535") }
                serve = ServeSpec(command: command, port: port)
            } else if bm["port"] != nil {
                throw r.error(bm["port"], "backend.port only goes with backend.serve")
            }
            guard let u = bm["url"] ?? nil else {
                guard let serve else { throw r.error(b, "backend of '\(name)' needs 'url' (e.g. http://127.0.0.1:8198/v1) or 'serve' and 'port'") }
                backend = .openai(try OpenAIEndpoint.parse(url: "http://127.0.0.1:\(serve.port)/v1", bm, r, worker: name))
                break
            }
            let url = try r.string(u, "backend.url")
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw r.error(u, "backend.url must start with http:// or https://") }
            guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f }) else {
                throw r.error(u, "backend.url holds spaces or control characters: \(Limits.printable(url))")
            }
            backend = .openai(try OpenAIEndpoint.parse(url: url, bm, r, worker: name))
        case "sim":
            let scale = try bm["timeScale"].map { try r.double($0, "backend.timeScale") } ?? 1
            if scale < 0 { throw r.error(bm["timeScale"], "backend.timeScale must not be negative") }
            if let problem = Limits.number(scale, 0...Limits.maxTimeScale, "backend.timeScale of '\(name)'") { throw r.error(bm["timeScale"], problem) }
            let seed = try bm["seed"].map { try r.int($0, "backend.seed") } ?? 0
            backend = .sim(timeScale: scale, seed: UInt64(truncatingIfNeeded: seed))
        default:
            throw r.error(bm["kind"], "unknown backend kind '\(kind)' (expected openai or sim)")
        }
        if case .sim = backend, let key = bm.keys.compactMap(\.string).sorted().first(where: { $0 == "serve" || $0 == "port" || OpenAIEndpoint.keys.contains($0) }) {
            throw r.error(bm[key], "backend.\(key) is for openai backends")
        }
        return WorkerSpec(name: name, gpus: gpus, model: model, backend: backend, slots: slots, host: host, serve: serve)
    }
}

extension Estimate {
    /// What is assumed of a (subtask, model) pair the workflow gives no estimate for.
    public static let prior = Estimate(success: 0.5, tokens: 600, seconds: 5)
}

extension Subtask {
    /// The workflow's estimate for `model`, else ``Estimate/prior``.
    public func estimate(for model: String) -> Estimate { estimates[model] ?? .prior }

    /// The token cap of one attempt on `model`: `maxTokens` when set, else three times the
    /// estimated tokens (at least 256), never more than the model's context.
    public func tokenCap(on model: ModelSpec) -> Int {
        if let maxTokens { return maxTokens }
        let e = estimate(for: model.name)
        // Saturating: estimates are range-checked at parse time, but this is on every dispatch path.
        return min(max(256, Int(saturating: (e.tokens * 3).rounded(.up), nan: .max)), max(model.context, 256))
    }
}
