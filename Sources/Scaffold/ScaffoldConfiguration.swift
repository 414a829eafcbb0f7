import AgentFlowCore
import Foundation

/// Settings of the scaffold that are not per attempt.
public struct ScaffoldConfiguration: Sendable {
    /// Where attempt workspaces are created (each attempt gets a fresh directory). Keep it off
    /// /tmp: the sandbox gives the code a private /tmp.
    public var workspaceRoot: URL
    public var limits: SandboxLimits
    /// Whether model-written code runs under bubblewrap (the default) or without namespaces
    /// (`--unsafe-no-sandbox`).
    public var sandbox: SandboxMode = .bubblewrap
    public var temperature: Double?
    /// The summarizer runs when the history has at least this many messages…
    public var summarizeAfterMessages: Int
    /// …and the agent's prompt is estimated at this many tokens or more. The paper uses ~6000;
    /// the default suits 4096-token local models.
    public var summarizeAboveTokens: Int
    /// Turn messages kept verbatim after a summary (the task and instructions always are).
    public var keepLast: Int
    public var summaryMaxTokens: Int
    /// Most completion tokens one agent or corrector call may use. Small models fall into
    /// repetition loops that would otherwise eat the whole cap in one call. `nil`: no limit.
    public var maxTokensPerCall: Int?
    /// The model's context window (the cluster's `context`). Each call's `max_tokens` then fits
    /// in what the prompt leaves, and when the agent's prompt would not fit, its oldest turns are
    /// dropped. `nil`: unknown, not checked.
    public var contextTokens: Int?
    /// A reply in which one line (of 16+ characters, indentation aside) has appeared this many times is cut off as
    /// degenerate, like a reply that already holds its code block.
    public var repeatedLineLimit: Int
    /// Where learned prompt-token ratios are kept between processes, by server and model, so
    /// that the calibration call (a few hundred tokens, charged to the attempt that makes it)
    /// happens once per machine rather than once per worker process. `nil`: not kept.
    public var calibrationFile: URL?
    /// Keep workspaces after the attempt (for debugging); by default they are removed.
    public var keepWorkspaces: Bool
    /// Send role instructions as `system` messages. `false` puts them at the top of the first
    /// user message instead, for chat templates without a system role (Gemma's drops it).
    /// `nil`: decided by the model name (off for Gemma).
    public var systemMessages: Bool?

    public init(
        workspaceRoot: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent(".agentflow/workspaces", isDirectory: true),
        calibrationFile: URL? = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent(".agentflow/calibration.json"),
        limits: SandboxLimits = SandboxLimits(), maxTokensPerCall: Int? = 1024, contextTokens: Int? = nil,
        repeatedLineLimit: Int = 5,
        temperature: Double? = 0.2, summarizeAfterMessages: Int = 6,
        summarizeAboveTokens: Int = 1500, keepLast: Int = 4, summaryMaxTokens: Int = 256, keepWorkspaces: Bool = false,
        systemMessages: Bool? = nil
    ) {
        self.workspaceRoot = workspaceRoot
        self.calibrationFile = calibrationFile
        self.limits = limits
        self.maxTokensPerCall = maxTokensPerCall
        self.contextTokens = contextTokens
        self.repeatedLineLimit = repeatedLineLimit
        self.temperature = temperature
        self.summarizeAfterMessages = summarizeAfterMessages
        self.summarizeAboveTokens = summarizeAboveTokens
        self.keepLast = keepLast
        self.summaryMaxTokens = summaryMaxTokens
        self.keepWorkspaces = keepWorkspaces
        self.systemMessages = systemMessages
    }

    /// Whether `model` gets `system` messages.
    func usesSystemMessages(for model: String) -> Bool {
        systemMessages ?? !model.lowercased().contains("gemma")
    }
}

extension ScaffoldOptions {
    /// One agent call, its code verified, no loop: the "raw" baseline.
    public static let raw = ScaffoldOptions(summarizer: false, corrector: false, maxTurns: 1)
    /// The agent loop without summarizer and corrector.
    public static let agentOnly = ScaffoldOptions(summarizer: false, corrector: false)
    /// All three roles.
    public static let full = ScaffoldOptions()
}
