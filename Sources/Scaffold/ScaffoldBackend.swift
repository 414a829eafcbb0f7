import AgentFlowCore
import Foundation
import LLM
import Synchronization

/// The real backend: the three-role scaffold (agent, summarizer, corrector — one model) against
/// an OpenAI-compatible server, each attempt on its own thread.
///
/// ```swift
/// let backend = ScaffoldBackend(baseURL: "http://127.0.0.1:8198/v1", model: "smollm2-135m")
/// let handle = backend.start(spec, events: events)   // events.finish(...) comes exactly once
/// ```
///
/// The attempt stops at verified success, its token cap (over all roles, never exceeded), its
/// deadline, `spec.scaffold.maxTurns`, or `cancel()`. `spec.scaffold` switches the roles:
/// ``AgentFlowCore/ScaffoldOptions/raw`` is one agent call and one verification.
public struct ScaffoldBackend: AttemptBackend {
    /// The model name sent to the server (the server's alias, e.g. `smollm2-135m`).
    public let model: String
    public let configuration: ScaffoldConfiguration
    private let chat: any ChatModel
    private let estimator: PromptTokenEstimator
    private let calibration: Calibration?
    /// The worker's clock: attempt deadlines are instants on its monotonic clock, and every
    /// deadline check, time limit and measured span of the attempt (model calls, sandbox runs)
    /// reads it; transcript timestamps are its wall-clock readings.
    let time: any TimeSource

    /// - Parameters:
    ///   - baseURL: the server's base URL ending in `/v1`, e.g. `http://127.0.0.1:8198/v1`.
    ///   - model: the model name to send.
    ///   - client: timeouts and retries of the HTTP client (the base URL is taken from `baseURL`).
    ///   - time: the worker's clock (the one its attempts' deadlines are on).
    public init(
        baseURL: String, model: String, configuration: ScaffoldConfiguration = ScaffoldConfiguration(),
        client: ChatClient.Configuration? = nil, time: any TimeSource = SystemTime()
    ) {
        var settings = client ?? ChatClient.Configuration(baseURL: baseURL)
        settings.baseURL = baseURL
        // llama.cpp's Python server sends no usage while streaming: the client then charges its
        // estimate, which errs high (prompt: learned tokens per byte plus 20% and template
        // overhead; completion: one token per streamed chunk, as llama.cpp streams).
        settings.requireServerUsage = false
        let saved = configuration.calibrationFile.flatMap { CalibrationFile(url: $0).ratio(baseURL: baseURL, model: model) }
        let estimator = saved.map { PromptTokenEstimator(learnedRatio: $0) } ?? PromptTokenEstimator()
        let client = ChatClient(settings, estimator: estimator, time: time)
        self.init(chat: client, model: model, estimator: estimator, configuration: configuration, time: time)
    }

    /// A backend over any ``ChatModel`` (tests script one). `estimator` decides when to summarize;
    /// a ``ChatClient``'s own estimator is used instead when `chat` is one. `time` is the worker's
    /// clock; a ``ChatClient`` should be given the same one.
    public init(
        chat: any ChatModel, model: String, estimator: PromptTokenEstimator = PromptTokenEstimator(),
        configuration: ScaffoldConfiguration = ScaffoldConfiguration(), time: any TimeSource = SystemTime()
    ) {
        self.chat = chat
        self.time = time
        self.model = model
        self.estimator = (chat as? ChatClient)?.estimator ?? estimator
        self.configuration = configuration
        self.calibration = (chat as? ChatClient).map {
            Calibration(client: $0, file: configuration.calibrationFile.map(CalibrationFile.init))
        }
    }

    /// Asks the model server for its model list (`GET /models`); scripted models are always healthy.
    public func healthProblem() -> String? {
        guard let client = chat as? ChatClient else { return nil }
        return ServerProbe.problem(client.configuration)
    }

    /// Asks the model server how loaded it is (`/metrics`, else `/slots`); scripted models say nothing.
    public func serverLoad() -> ServerLoad? {
        guard let client = chat as? ChatClient else { return nil }
        return ServerLoadProbe.load(client.configuration).map { ServerLoad(running: $0.running, waiting: $0.waiting) }
    }

    public func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle {
        let handle = ScaffoldAttemptHandle()
        startThread(named: "attempt \(spec.id)") { [self] in
            let outcome = run(spec, cancel: handle.flag, transcript: { events.transcript(spec.id, $0) }) { events.progress(spec.id, tokens: $0) }
            events.finish(spec.id, outcome, after: 0)
        }
        return handle
    }

    /// Runs one attempt to its end on the calling thread (a dedicated one: it blocks).
    /// `transcript` receives the attempt's transcript entries as they happen (``TranscriptRecorder``),
    /// at most `spec.transcriptBytes` bytes of text (default ``AgentFlowCore/TranscriptLimits/defaultPerAttempt``).
    public func run(
        _ spec: AttemptSpec, cancel: CancellationFlag = CancellationFlag(), transcript: (([TranscriptEntry]) -> Void)? = nil,
        progress: @escaping (Int) -> Void = { _ in }
    ) -> AttemptOutcome {
        // With a trace context the entries are recorded even when no text is kept: the worker's
        // spans are made from them.
        let cap = spec.transcriptBytes ?? TranscriptLimits.defaultPerAttempt
        let recorder = TranscriptRecorder(
            cap: transcript == nil ? 0 : cap, enabled: transcript != nil && (cap > 0 || spec.trace != nil),
            redact: (chat as? ChatClient)?.configuration.redact ?? { $0 }, time: time, sink: transcript ?? { _ in })
        let attempt = AttemptRun(
            spec: spec, chat: AttemptChat(base: chat, jobPriority: spec.priority), modelName: model, estimator: estimator, configuration: configuration,
            cancel: cancel, progress: progress, transcript: recorder, time: time)
        // Unless a ratio was saved earlier (``ScaffoldConfiguration/calibrationFile``), the first
        // attempt teaches the estimator this model's tokens per byte; its few hundred tokens are
        // charged to that attempt, when they fit.
        let started = time.instant
        if let calibration, spec.tokenCap > 1000, let cost = calibration.runOnce(model: model, deadline: spec.deadline) {
            attempt.charge(.agent, cost, seconds: (time.instant - started).seconds)
        }
        return attempt.run()
    }
}

/// The model as one attempt calls it: every request carries the attempt's job priority (sent
/// only where the backend is configured to accept it).
struct AttemptChat: ChatModel {
    let base: any ChatModel
    let jobPriority: Int?

    func complete(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant?, cancel: CancellationFlag?, onProgress: ((ChatProgress) -> Void)?
    ) throws(LLMError) -> ChatCompletion {
        var request = request
        if request.jobPriority == nil { request.jobPriority = jobPriority }
        return try base.complete(request, allowance: allowance, deadline: deadline, cancel: cancel, onProgress: onProgress)
    }
}

/// Cancels a running scaffold attempt from any thread (its only state is an atomic flag).
final class ScaffoldAttemptHandle: AttemptHandle {
    let flag = CancellationFlag()

    func cancel() { flag.cancel() }
}

/// Calibrates a client's estimator once per backend (and once per machine with a file).
final class Calibration: Sendable {
    private let client: ChatClient
    private let file: CalibrationFile?
    private let done = Mutex(false)

    init(client: ChatClient, file: CalibrationFile?) {
        self.client = client
        self.file = file
    }

    /// The tokens the calibration call used, the first time only.
    func runOnce(model: String, deadline: MonotonicInstant) -> ChatUsage? {
        let first = done.withLock { done in
            defer { done = true }
            return !done
        }
        guard first, !client.estimator.hasLearned else { return nil }
        guard let prompt = try? client.calibrate(model: model, deadline: deadline) else { return nil }
        if let ratio = client.estimator.learnedTokensPerByte {
            file?.save(ratio, baseURL: client.configuration.baseURL, model: model)
        }
        return ChatUsage(promptTokens: prompt, completionTokens: 1)
    }
}

/// Learned tokens-per-byte ratios on disk: a JSON object keyed by "<base URL> <model>".
struct CalibrationFile: Sendable {
    let url: URL

    func ratio(baseURL: String, model: String) -> Double? {
        guard let data = try? Data(contentsOf: url),
            let table = try? JSONDecoder().decode([String: Double].self, from: data),
            let ratio = table["\(baseURL) \(model)"], ratio > 0, ratio < 10
        else { return nil }
        return ratio
    }

    /// Adds or replaces one entry (written atomically; concurrent writers: the last one wins).
    func save(_ ratio: Double, baseURL: String, model: String) {
        var table = (try? Data(contentsOf: url)).flatMap { try? JSONDecoder().decode([String: Double].self, from: $0) } ?? [:]
        table["\(baseURL) \(model)"] = ratio
        guard let data = try? JSONEncoder().encode(table) else { return }
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? data.write(to: url, options: .atomic)
    }
}
