import Foundation

/// Identifies one sample of one subtask: `(job, subtask, n)`. A re-dispatched attempt gets a new `n`.
public struct AttemptID: Hashable, Codable, Sendable, CustomStringConvertible {
    public var job: String
    public var subtask: String
    public var n: Int

    public init(job: String, subtask: String, n: Int) {
        self.job = job
        self.subtask = subtask
        self.n = n
    }

    public var description: String { "\(job)/\(subtask)#\(n)" }
}

/// The three conditionings of the one frozen model, and the judge (a model scoring another
/// attempt's result against a rubric).
public enum Role: String, Codable, Sendable, CaseIterable {
    case agent, summarizer, corrector, judge
}

/// Tokens one model call (or several, summed) used.
public struct TokenUsage: Codable, Sendable, Equatable {
    public var role: Role
    public var input: Int
    public var output: Int

    public init(role: Role, input: Int, output: Int) {
        self.role = role
        self.input = input
        self.output = output
    }

    public var total: Int { input + output }
}

/// Which optional roles of the scaffold run. Both on by default; off gives the plain agent loop.
public struct ScaffoldOptions: Codable, Sendable, Equatable {
    public var summarizer: Bool
    public var corrector: Bool
    /// Most agent turns in one attempt.
    public var maxTurns: Int

    public init(summarizer: Bool = true, corrector: Bool = true, maxTurns: Int = 6) {
        self.summarizer = summarizer
        self.corrector = corrector
        self.maxTurns = maxTurns
    }
}

/// Everything a worker needs to run one attempt. Sent by the coordinator with the dispatch.
public struct AttemptSpec: Codable, Sendable {
    public var id: AttemptID
    public var model: String
    public var prompt: String
    public var verify: Verifier?
    /// Outputs of the subtask's `needs`, by subtask id (the code that passed there).
    public var inputs: [String: String]
    /// Hard cap on tokens over all roles, prompt and completion.
    public var tokenCap: Int
    /// When the attempt must end, on the worker's monotonic clock: set by the worker, once, when
    /// the attempt starts (its instant then + `ttl`, and never past `startBy`), never sent — the
    /// wire carries the relative `ttl` only, so skew between hosts and clock steps neither
    /// shorten nor stretch an attempt. The scaffold, the LLM client and the sandbox check it on
    /// the clock they are given.
    public var deadline = MonotonicInstant(sinceOrigin: .zero)
    /// How long the attempt may run from when it starts at its worker (its deadline, relative).
    /// On the wire in seconds; read back clamped to 0…30 days (NaN and negatives: 0).
    @SecondsOnWire public var ttl: Duration
    /// How long its job had until its deadline when the attempt was dispatched (nil: no bound
    /// beyond `ttl`, what coordinators before prefetch sent). A worker that holds the attempt
    /// queued behind a busy slot starts it only within this span of its arrival, and never lets
    /// it run past that instant; only an attempt that carries it may wait for a slot there (a
    /// coordinator sends it when it prefetches). On the wire in seconds, left out when nil.
    @SecondsOnWireIfPresent public var jobTTL: Duration?
    /// The instant (this worker's clock) after which the attempt must not start and must not
    /// run: its arrival + `jobTTL`. Set by the worker (``received(at:)``), never sent.
    public var startBy: MonotonicInstant?
    public var scaffold: ScaffoldOptions
    /// Ground truth for the `sim` backend: the workflow's estimate for this model, or the prior.
    public var simulated: Estimate?
    /// Seed for anything random in this attempt (sim draws, sampling temperature seeds).
    public var seed: UInt64
    /// The job's priority (higher first); nil for the default 0. Backends that schedule by
    /// priority (vLLM's `priority`) get it.
    public var priority: Int?
    /// Kind, actions, inputs and outputs of agent work beyond one module; nil for a plain
    /// `code` subtask (``Workflow/work(for:)``).
    public var work: AttemptWork?
    /// The subtask's `sandbox:` (limits it asks for, GPU access); nil for the worker's own.
    public var sandbox: SandboxSpec?
    /// Bytes of transcript text the coordinator keeps for this attempt (``TranscriptLimits``);
    /// 0: record none; nil: the default.
    public var transcriptBytes: Int?
    /// The attempt's trace context (W3C `traceparent`) and the model's prices, when the
    /// coordinator exports traces; the worker's spans are its children.
    public var trace: TraceContext?

    /// Every field but `deadline` and `startBy`, which are the worker's own.
    enum CodingKeys: String, CodingKey {
        case id, model, prompt, verify, inputs, tokenCap, ttl, jobTTL, scaffold, simulated, seed, priority, work, sandbox, transcriptBytes, trace
    }

    public init(
        id: AttemptID, model: String, prompt: String, verify: Verifier?, inputs: [String: String],
        tokenCap: Int, ttl: Duration = .zero, scaffold: ScaffoldOptions, simulated: Estimate?, seed: UInt64
    ) {
        self.id = id
        self.model = model
        self.prompt = prompt
        self.verify = verify
        self.inputs = inputs
        self.tokenCap = tokenCap
        self.ttl = ttl
        self.scaffold = scaffold
        self.simulated = simulated
        self.seed = seed
    }
}

extension AttemptSpec {
    /// The dispatch reached its worker at `now` (the worker's monotonic clock): the job's
    /// remaining time becomes ``startBy``, held to 0…30 days.
    public mutating func received(at now: MonotonicInstant) {
        startBy = jobTTL.map { now + min(max(.zero, $0), .seconds(Limits.maxSeconds)) }
    }

    /// The one conversion of an attempt's deadline, made by the worker when the attempt starts
    /// at `now` (its monotonic clock, after it waited for a slot, if it did): `deadline` = `now`
    /// + `ttl`, the ttl held to 0…30 days, and never past ``startBy``.
    public mutating func started(at now: MonotonicInstant) {
        deadline = now + min(max(.zero, ttl), .seconds(Limits.maxSeconds))
        if let startBy { deadline = min(deadline, startBy) }
    }

    /// Received and started at once (`now`): an attempt run directly, without a worker's queue.
    public mutating func arrived(at now: MonotonicInstant) {
        received(at: now)
        started(at: now)
    }
}

/// How an attempt ended, as the worker reports it.
public enum AttemptEnd: String, Codable, Sendable {
    /// The verifier passed.
    case succeeded
    /// Ran to its turn limit or the model gave up; the verifier never passed.
    case failed
    /// Stopped because the token cap was reached.
    case capReached = "cap_reached"
    /// Stopped at the attempt's deadline.
    case deadline
    /// Stopped because the coordinator cancelled it.
    case cancelled
    /// The backend could not run it (server unreachable, bad reply).
    case error
}

/// The result of one attempt: how it ended, what it spent per role, and what it produced.
public struct AttemptOutcome: Codable, Sendable {
    public var end: AttemptEnd
    public var usage: [TokenUsage]
    /// The code that passed the verifier (becomes the subtask's output).
    public var output: String?
    /// A short human-readable reason.
    public var detail: String
    public var seconds: Double
    /// The files kept on success (for agent work with ``AttemptSpec/work``).
    public var outputs: OutputBundle?
    /// A judge attempt's verdict.
    public var judgement: Judgement?

    public init(end: AttemptEnd, usage: [TokenUsage], output: String? = nil, detail: String = "", seconds: Double = 0,
                outputs: OutputBundle? = nil, judgement: Judgement? = nil) {
        self.outputs = outputs
        self.judgement = judgement
        self.end = end
        self.usage = usage
        self.output = output
        self.detail = detail
        self.seconds = seconds
    }

    public var totalTokens: Int { usage.reduce(0) { $0 + $1.total } }
}

/// Callbacks a backend uses to talk back to the worker. Safe to call from any thread.
public protocol AttemptEvents: Sendable {
    /// Tokens used so far (sum over roles); the worker forwards it to the coordinator.
    func progress(_ id: AttemptID, tokens: Int)
    /// The attempt is over. Called once; `after` delays delivery (the simulated backend uses it
    /// to model latency without holding a thread). Called again with a delay before the first is
    /// due, it re-times the report (the benchmarks' shared GPU); with none, it overrides it (a cancel).
    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double)
    /// Transcript entries, in order, as they happen (``TranscriptEntry``); the worker streams them.
    func transcript(_ id: AttemptID, _ entries: [TranscriptEntry])
}

extension AttemptEvents {
    /// Backends that record no transcript (sim) need not say anything.
    public func transcript(_ id: AttemptID, _ entries: [TranscriptEntry]) {}
}

/// A running attempt the worker can stop.
public protocol AttemptHandle: Sendable {
    func cancel()
}

/// The seam between the worker and what actually runs an attempt (a simulated model, or the
/// three-role scaffold against an OpenAI-compatible server).
public protocol AttemptBackend: Sendable {
    func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle
    /// `nil` when the backend can run attempts now; otherwise why not, in words (the model
    /// server does not answer). Blocks for at most a few seconds.
    func healthProblem() -> String?
    /// What the model server says about its load (see ``ServerLoad``), or nil when it says
    /// nothing (no such endpoint, not answering, a simulated backend). Blocks for at most about
    /// a second; the worker calls it from its own polling thread, never from its loop.
    func serverLoad() -> ServerLoad?
}

extension AttemptBackend {
    public func healthProblem() -> String? { nil }
    public func serverLoad() -> ServerLoad? { nil }
}
