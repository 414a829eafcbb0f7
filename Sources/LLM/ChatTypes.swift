import Foundation

/// One message of an OpenAI chat-completions conversation.
public struct ChatMessage: Codable, Sendable, Equatable {
    public enum Role: String, Codable, Sendable {
        case system, user, assistant
    }

    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ text: String) -> ChatMessage { ChatMessage(role: .system, content: text) }
    public static func user(_ text: String) -> ChatMessage { ChatMessage(role: .user, content: text) }
    public static func assistant(_ text: String) -> ChatMessage { ChatMessage(role: .assistant, content: text) }
}

/// What to ask the server. `max_tokens` is not set here: ``ChatClient`` derives it from the
/// token allowance of the call, lowered further by ``maxCompletionTokens`` when set.
public struct ChatRequest: Sendable {
    public var model: String
    public var messages: [ChatMessage]
    public var temperature: Double?
    public var seed: UInt64?
    public var stop: [String]
    /// Upper bound on completion tokens regardless of the allowance (e.g. a short summary).
    public var maxCompletionTokens: Int?
    /// The job's priority (higher runs first). Sent, negated, as vLLM's `priority` when the
    /// client is configured to (``ChatClient/Configuration/sendPriority``).
    public var jobPriority: Int?
    /// A JSON schema the reply must follow, sent as `response_format` (unless the client's
    /// style is `off`).
    public var responseFormat: ResponseFormat?

    public init(
        model: String, messages: [ChatMessage], temperature: Double? = nil, seed: UInt64? = nil,
        stop: [String] = [], maxCompletionTokens: Int? = nil, jobPriority: Int? = nil, responseFormat: ResponseFormat? = nil
    ) {
        self.model = model
        self.messages = messages
        self.temperature = temperature
        self.seed = seed
        self.stop = stop
        self.maxCompletionTokens = maxCompletionTokens
        self.jobPriority = jobPriority
        self.responseFormat = responseFormat
    }
}

/// A JSON schema for the reply, as OpenAI's `response_format` carries it: servers that support it
/// constrain decoding so the reply parses and matches (vLLM, SGLang and llama.cpp by grammar).
public struct ResponseFormat: Sendable, Equatable {
    /// How the schema goes on the wire; servers differ.
    public enum Style: String, Sendable, CaseIterable {
        /// `{"type": "json_schema", "json_schema": {"name": N, "schema": S, "strict": true}}`:
        /// OpenAI, vLLM, SGLang, llama.cpp's own server.
        case jsonSchema = "json_schema"
        /// `{"type": "json_object", "schema": S}`: llama-cpp-python's server.
        case jsonObject = "json_object"
        /// Nothing is sent.
        case off
    }

    /// A name for the schema (`json_schema.name`: letters, digits, '_' and '-', at most 64).
    public let name: String
    /// The schema, as compact JSON text.
    public let schemaJSON: String

    /// Nil when `schemaJSON` is not a JSON object.
    public init?(name: String, schemaJSON: String) {
        guard let data = schemaJSON.data(using: .utf8),
              (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] != nil else { return nil }
        let cleaned = String(name.unicodeScalars.filter { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_" || $0 == "-") }.prefix(64))
        self.name = cleaned.isEmpty ? "answer" : cleaned
        self.schemaJSON = schemaJSON
    }

    /// The `response_format` object in `style`; nil for `off`.
    func body(_ style: Style) -> [String: Any]? {
        guard let schema = try? JSONSerialization.jsonObject(with: Data(schemaJSON.utf8)) else { return nil }
        switch style {
        case .jsonSchema: return ["type": "json_schema", "json_schema": ["name": name, "schema": schema, "strict": true]]
        case .jsonObject: return ["type": "json_object", "schema": schema]
        case .off: return nil
        }
    }
}

/// Prompt and completion tokens of one call (or several, summed).
public struct ChatUsage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    public static let zero = ChatUsage()
    public var total: Int { promptTokens + completionTokens }

    public static func + (a: ChatUsage, b: ChatUsage) -> ChatUsage {
        ChatUsage(promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens)
    }

    public static func += (a: inout ChatUsage, b: ChatUsage) { a = a + b }
}

/// Where a usage figure came from.
public enum UsageSource: String, Sendable {
    /// The server's `usage` object.
    case server
    /// The client's conservative estimate (prompt bytes, streamed chunks); only when the server
    /// sent none and ``ChatClient/Configuration/requireServerUsage`` is off.
    case estimated
}

/// A finished chat completion.
public struct ChatCompletion: Sendable {
    /// The assistant's text.
    public var text: String
    /// Tokens charged for the whole call, failed tries included.
    public var usage: ChatUsage
    public var usageSource: UsageSource
    /// `stop`, `length`, … as the server said.
    public var finishReason: String?
    /// HTTP requests made (1 without retries).
    public var tries: Int
    /// Prompt tokens the server took from its prefix cache, where it says
    /// (`usage.prompt_tokens_details.cached_tokens`: vLLM, SGLang, OpenAI); nil where it does not.
    public var cachedPromptTokens: Int?
    /// Seconds from sending the request that answered to its first streamed text: the prompt's
    /// processing (less what a prefix cache saved) plus any queueing on the server.
    public var firstTokenSeconds: Double?

    public init(text: String, usage: ChatUsage, usageSource: UsageSource, finishReason: String?, tries: Int,
                cachedPromptTokens: Int? = nil, firstTokenSeconds: Double? = nil) {
        self.text = text
        self.usage = usage
        self.usageSource = usageSource
        self.finishReason = finishReason
        self.tries = tries
        self.cachedPromptTokens = cachedPromptTokens
        self.firstTokenSeconds = firstTokenSeconds
    }
}

/// Reported while a completion streams, on the calling thread.
public struct ChatProgress: Sendable {
    /// The text that just arrived.
    public var delta: String
    /// Completion tokens streamed so far in this try (one per content chunk, or the server's count).
    public var completionTokens: Int
    /// Conservative tokens charged so far for the whole call: earlier tries, the prompt estimate
    /// and the streamed completion.
    public var tokensSoFar: Int

    public init(delta: String, completionTokens: Int, tokensSoFar: Int) {
        self.delta = delta
        self.completionTokens = completionTokens
        self.tokensSoFar = tokensSoFar
    }
}

/// A failed chat call. `spent` is what must still be charged: tokens the server used before the
/// failure (estimated where it did not say).
public struct LLMError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Could not connect, or the connection broke. Retried.
        case connection
        /// 5xx or 429 after every retry.
        case server(status: Int)
        /// 4xx other than 429 (bad request, unknown model, prompt too long). Never retried.
        case client(status: Int)
        /// The body was not the JSON or SSE the API specifies.
        case malformedResponse
        /// The server sent an error object inside a 200 stream.
        case streamError
        /// No byte arrived for ``ChatClient/Configuration/stallTimeout``.
        case stalled
        /// The request outran ``ChatClient/Configuration/requestTimeout``.
        case timeout
        /// The server sent no `usage` and the client was told to require it.
        case missingUsage
        /// The caller's ``CancellationFlag`` was raised.
        case cancelled
        /// The call's deadline passed.
        case deadlineExceeded
        /// The allowance cannot fit the prompt and a minimum completion; nothing was sent.
        case budgetExhausted
    }

    public var code: Code
    public var message: String
    public var spent: ChatUsage
    /// Text streamed before the failure.
    public var partialText: String

    public init(_ code: Code, _ message: String, spent: ChatUsage = .zero, partialText: String = "") {
        self.code = code
        self.message = message
        self.spent = spent
        self.partialText = partialText
    }

    public var description: String { "\(code): \(message)" }

    var isRetryable: Bool {
        switch code {
        case .connection, .server: return true
        default: return false
        }
    }
}
