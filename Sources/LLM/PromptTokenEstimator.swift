import Synchronization

/// Estimates a prompt's token count before the server has counted it, erring high, so that
/// `prompt + max_tokens` stays inside the call's allowance.
///
/// Starts at 0.5 tokens per UTF-8 byte (BPE tokenizers give about 0.25–0.35 for English and code)
/// plus a per-message allowance for the chat template. Each server-reported prompt count teaches
/// it the real ratio for this model; it then uses the highest ratio seen, plus 20%, with the
/// template allowance on top.
public final class PromptTokenEstimator: Sendable {
    /// Tokens the chat template may add per message (role markers) and once per prompt
    /// (a default system prompt, the assistant header).
    public static let perMessage = 8
    public static let perPrompt = 48
    public static let initialRatio = 0.5
    public static let margin = 1.2

    private let learnedRatio = Mutex<Double?>(nil)

    public init() {}

    /// Conservative token count of `messages` as a prompt.
    public func estimate(_ messages: [ChatMessage]) -> Int {
        let bytes = messages.reduce(0) { $0 + $1.content.utf8.count }
        let ratio = learnedRatio.withLock { $0 } ?? Self.initialRatio
        let body = Int((Double(bytes) * ratio).rounded(.up))
        return body + Self.perMessage * messages.count + Self.perPrompt
    }

    /// Whether a server count has been learned yet.
    public var hasLearned: Bool { learnedRatio.withLock { $0 != nil } }

    /// The learned tokens per byte (margin included), to be saved and given back to
    /// ``init(learnedRatio:)`` by a later process.
    public var learnedTokensPerByte: Double? { learnedRatio.withLock { $0 } }

    /// An estimator that starts from a ratio learned earlier.
    public convenience init(learnedRatio ratio: Double) {
        self.init()
        learnedRatio.withLock { $0 = ratio }
    }

    /// Records the server's count for `messages`. The template allowance that ``estimate(_:)``
    /// adds anyway is taken off first, so it is not counted twice.
    public func learn(_ messages: [ChatMessage], promptTokens: Int) {
        let bytes = messages.reduce(0) { $0 + $1.content.utf8.count }
        guard bytes >= 256 else { return }  // too short to say anything about the ratio
        let content = max(0, promptTokens - Self.perMessage * messages.count - Self.perPrompt)
        let observed = max(0.1, Double(content) / Double(bytes) * Self.margin)
        learnedRatio.withLock { ratio in
            ratio = max(ratio ?? 0, observed)
        }
    }
}
