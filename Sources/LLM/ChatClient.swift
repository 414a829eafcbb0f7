import AgentFlowCore
import CCurl
import Foundation

/// A client for an OpenAI-compatible `POST /chat/completions` endpoint (vLLM, SGLang, llama.cpp
/// server, Ollama), streaming over libcurl.
///
/// Calls block the calling thread until the completion ends; run them on a dedicated thread,
/// never on Swift's cooperative pool.
///
/// ```swift
/// let clock = SystemTime()
/// let client = ChatClient(.init(baseURL: "http://127.0.0.1:8198/v1"), time: clock)
/// let reply = try client.complete(
///     ChatRequest(model: "smollm2-135m", messages: [.user("Say hi")]),
///     allowance: 300, deadline: clock.instant + .seconds(30))
/// print(reply.text, reply.usage.total)  // never more than 300 tokens
/// ```
///
/// Budget: each call gets an `allowance` (tokens left of the attempt's cap, prompt included).
/// `max_tokens` is the allowance minus a conservative estimate of the prompt
/// (``PromptTokenEstimator``) minus what failed tries already cost; usage is taken from the
/// server (`stream_options.include_usage`). Retries (connection errors, 5xx, 429) back off
/// exponentially and re-check allowance, deadline and cancellation before each try.
public final class ChatClient: Sendable {
    public struct Configuration: Sendable, CustomStringConvertible {
        /// Base URL ending in `/v1`, e.g. `http://127.0.0.1:8198/v1`.
        public var baseURL: String
        /// Sent as `Authorization: Bearer KEY`; never printed, and cut out of every error message.
        public var apiKey: String?
        /// More request headers (vLLM/LiteLLM/gateway routing, tenancy); `secret` values are cut
        /// out of error messages like the key.
        public var headers: [Header]
        /// PEM file of the certificate authorities to trust for https; nil: the system trust store.
        public var caFile: String?
        /// Send ``ChatRequest/jobPriority`` as vLLM's `priority` (the server must run with
        /// `--scheduling-policy priority`; others reject the field).
        public var sendPriority: Bool
        /// How ``ChatRequest/responseFormat`` goes on the wire.
        public var responseFormatStyle: ResponseFormat.Style
        public var connectTimeout: Duration
        /// Longest one HTTP request may take, whatever the deadline.
        public var requestTimeout: Duration
        /// A response that sends no byte for this long once it has started is abandoned as stalled.
        public var stallTimeout: Duration
        /// Longest wait for the first byte of a response: prompt processing, and queueing behind
        /// other requests on a busy server.
        public var firstByteTimeout: Duration
        /// Retries after the first try (connection errors, 5xx, 429).
        public var maxRetries: Int
        public var initialBackoff: Duration
        public var maxBackoff: Duration
        /// A call whose allowance leaves fewer completion tokens than this is not sent.
        public var minCompletionTokens: Int
        /// Throw ``LLMError/Code/missingUsage`` when the server sends no usage; otherwise fall
        /// back to the client's conservative estimate.
        public var requireServerUsage: Bool

        public init(
            baseURL: String, apiKey: String? = nil, headers: [Header] = [], caFile: String? = nil, connectTimeout: Duration = .seconds(5),
            requestTimeout: Duration = .seconds(600), stallTimeout: Duration = .seconds(30), firstByteTimeout: Duration = .seconds(300),
            maxRetries: Int = 3, initialBackoff: Duration = .milliseconds(250), maxBackoff: Duration = .seconds(8), minCompletionTokens: Int = 8, requireServerUsage: Bool = true,
            sendPriority: Bool = false, responseFormatStyle: ResponseFormat.Style = .jsonSchema
        ) {
            self.baseURL = baseURL
            self.apiKey = apiKey
            self.headers = headers
            self.caFile = caFile
            self.sendPriority = sendPriority
            self.responseFormatStyle = responseFormatStyle
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.stallTimeout = stallTimeout
            self.firstByteTimeout = firstByteTimeout
            self.maxRetries = maxRetries
            self.initialBackoff = initialBackoff
            self.maxBackoff = maxBackoff
            self.minCompletionTokens = minCompletionTokens
            self.requireServerUsage = requireServerUsage
        }

        /// One extra request header.
        public struct Header: Sendable, Equatable {
            public var name: String
            public var value: String
            /// Cut out of error messages (a key sent in a header of its own).
            public var secret: Bool

            public init(name: String, value: String, secret: Bool = false) {
                self.name = name
                self.value = value
                self.secret = secret
            }
        }

        /// The URL and which settings are on; never a key or a secret header's value.
        public var description: String {
            var parts = [baseURL]
            if apiKey != nil { parts.append("key set") }
            if !headers.isEmpty { parts.append("headers " + headers.map(\.name).joined(separator: ", ")) }
            if let caFile { parts.append("caFile \(caFile)") }
            return parts.joined(separator: "; ")
        }

        /// Every secret this configuration sends: the key and the secret headers' values.
        var secrets: [String] {
            ([apiKey].compactMap { $0 } + headers.filter(\.secret).map(\.value)).filter { !$0.isEmpty }
        }

        /// `text` with every secret replaced by `[redacted]`: servers echo keys in their errors
        /// ("Incorrect API key provided: sk-…"), and error messages reach logs, the database and
        /// `agentflow workers`.
        public func redact(_ text: String) -> String {
            var out = text
            for secret in secrets.sorted(by: { $0.count > $1.count }) { out = out.replacingOccurrences(of: secret, with: "[redacted]") }
            return out
        }

        /// The request headers every call sends.
        var requestHeaders: [String] {
            var lines = ["Content-Type: application/json"]
            if let apiKey { lines.append("Authorization: Bearer \(apiKey)") }
            lines += headers.map { "\($0.name): \($0.value)" }
            return lines
        }
    }

    public let configuration: Configuration
    public let estimator: PromptTokenEstimator
    /// The clock deadlines are checked on and libcurl's time limits are derived from (the
    /// worker's); retries back off on it.
    public let time: any TimeSource

    public init(_ configuration: Configuration, estimator: PromptTokenEstimator = PromptTokenEstimator(), time: any TimeSource = SystemTime()) {
        self.configuration = configuration
        self.estimator = estimator
        self.time = time
    }

    /// Runs one chat completion, streaming, on the calling thread.
    ///
    /// - Parameters:
    ///   - allowance: most tokens (prompt + completion, over all tries) the call may use.
    ///   - deadline: an instant on ``time``'s monotonic clock; no request starts after it, a
    ///     request's time limit ends at it, and the stream is cut when it passes.
    ///   - cancel: raise it from any thread to stop the call mid-stream.
    ///   - onProgress: called on this thread as text arrives.
    /// - Throws: ``LLMError``; its `spent` is what the failed call still cost.
    public func complete(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant? = nil, cancel: CancellationFlag? = nil,
        onProgress: ((ChatProgress) -> Void)? = nil
    ) throws(LLMError) -> ChatCompletion {
        do {
            return try completeWithRetries(request, allowance: allowance, deadline: deadline, cancel: cancel, onProgress: onProgress)
        } catch {
            throw redacted(error)
        }
    }

    /// `error` with every secret of the configuration cut out of its message.
    func redacted(_ error: LLMError) -> LLMError {
        var e = error
        e.message = configuration.redact(e.message)
        return e
    }

    private func completeWithRetries(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant?, cancel: CancellationFlag?, onProgress: ((ChatProgress) -> Void)?
    ) throws(LLMError) -> ChatCompletion {
        var spent = ChatUsage.zero
        var tries = 0
        while true {
            if cancel?.isCancelled == true { throw LLMError(.cancelled, "cancelled before the request", spent: spent) }
            if let deadline, time.instant >= deadline {
                throw LLMError(.deadlineExceeded, "deadline passed before the request", spent: spent)
            }
            let promptEstimate = estimator.estimate(request.messages)
            var maxTokens = allowance - spent.total - promptEstimate
            if let limit = request.maxCompletionTokens { maxTokens = min(maxTokens, limit) }
            guard maxTokens >= configuration.minCompletionTokens else {
                throw LLMError(
                    .budgetExhausted,
                    "allowance \(allowance - spent.total) leaves \(maxTokens) completion tokens after a prompt of about \(promptEstimate)",
                    spent: spent)
            }
            tries += 1
            do {
                var completion = try attempt(
                    request, maxTokens: maxTokens, promptEstimate: promptEstimate, alreadySpent: spent,
                    deadline: deadline, cancel: cancel, onProgress: onProgress)
                if completion.usageSource == .server {
                    estimator.learn(request.messages, promptTokens: completion.usage.promptTokens)
                }
                completion.usage += spent
                completion.tries = tries
                return completion
            } catch let error as RetryableFailure {
                spent += error.error.spent
                guard tries <= configuration.maxRetries else {
                    var final = error.error
                    final.spent = spent
                    final.message += " (after \(tries) tries)"
                    throw final
                }
                // In seconds first: 2^tries must not overflow a Duration, whatever maxRetries is.
                let backoff = min(configuration.maxBackoff.seconds, configuration.initialBackoff.seconds * pow(2, Double(tries - 1)))
                var wait = Duration.clampedSeconds(backoff * Double.random(in: 0.8...1.2))
                if error.retryAfter > .zero { wait = max(wait, min(error.retryAfter, configuration.maxBackoff)) }
                if let deadline, time.instant + wait >= deadline {
                    var final = error.error
                    final.spent = spent
                    final.message += "; no time left for a retry before the deadline"
                    throw final
                }
                try sleep(wait, cancel: cancel, spent: spent)
            } catch let error as LLMError {
                var final = error
                final.spent += spent
                throw final
            } catch {
                throw LLMError(.connection, "\(error)", spent: spent)
            }
        }
    }

    /// Teaches ``estimator`` this model's tokens per byte with one small non-streaming call
    /// (`max_tokens: 1`), for servers that send no usage while streaming (llama-cpp-python).
    /// It costs the probe's prompt (about 250 tokens) and one completion token; the caller
    /// decides whom to charge (the scaffold's `ScaffoldBackend` charges the attempt that triggered it).
    /// Returns the server's prompt count for the probe.
    @discardableResult
    public func calibrate(model: String, deadline: MonotonicInstant? = nil) throws(LLMError) -> Int {
        // Prose, a function with its docstring, and a traceback: what agent prompts hold.
        let messages: [ChatMessage] = [
            .system("You are a Python programmer working in a sandbox. Reply with exactly one ```python code block holding the complete contents of solution.py."),
            .user("""
                Task:
                Complete the Python function `rolling_mean` below. Write the complete function, with its imports and \
                any helper functions it uses, as solution.py.

                ```python
                from typing import List


                def rolling_mean(values: List[float], window: int) -> List[float]:
                    \"\"\" Return the mean of every run of `window` consecutive values, in order.
                    An empty list or a window larger than the list gives an empty list.
                    >>> rolling_mean([1.0, 2.0, 3.0, 4.0], 2)
                    [1.5, 2.5, 3.5]
                    \"\"\"
                ```
                Running solution.py failed (exit code 1):
                ```
                Traceback (most recent call last):
                  File "solution.py", line 9, in rolling_mean
                    total = sum(values[i:i + window]) / windw
                NameError: name 'windw' is not defined
                ```
                [budget] 2400 tokens and 287s left; turn 2 of 6.
                """),
        ]
        do {
            let reply = try attempt(
                ChatRequest(model: model, messages: messages), maxTokens: 1, promptEstimate: estimator.estimate(messages),
                alreadySpent: .zero, deadline: deadline, cancel: nil, onProgress: nil, stream: false)
            guard reply.usageSource == .server else {
                throw LLMError(.missingUsage, "the server sent no usage for a non-streaming completion")
            }
            estimator.learn(messages, promptTokens: reply.usage.promptTokens)
            return reply.usage.promptTokens
        } catch let error as RetryableFailure {
            throw redacted(error.error)
        } catch let error as LLMError {
            throw redacted(error)
        } catch {
            throw redacted(LLMError(.connection, "\(error)"))
        }
    }

    /// A failure worth another try, with the server's Retry-After.
    struct RetryableFailure: Error {
        var error: LLMError
        var retryAfter: Duration
    }

    /// Waits `span` on ``time`` in steps of at most 50 ms, so that a cancel is heard.
    private func sleep(_ span: Duration, cancel: CancellationFlag?, spent: ChatUsage) throws(LLMError) {
        let end = time.instant + span
        while true {
            if cancel?.isCancelled == true { throw LLMError(.cancelled, "cancelled while waiting to retry", spent: spent) }
            let left = end.remaining(at: time.instant)
            guard left > .zero else { return }
            time.sleep(for: min(.milliseconds(50), left))
        }
    }

    /// One HTTP request. Throws ``RetryableFailure`` or ``LLMError``.
    func attempt(
        _ request: ChatRequest, maxTokens: Int, promptEstimate: Int, alreadySpent: ChatUsage, deadline: MonotonicInstant?,
        cancel: CancellationFlag?, onProgress: ((ChatProgress) -> Void)?, stream streaming: Bool = true
    ) throws -> ChatCompletion {
        let stream = ChatStreamDecoder()
        let body = try requestBody(request, maxTokens: maxTokens, stream: streaming)
        let headers = configuration.requestHeaders + ["Accept: text/event-stream"]
        let sent = time.instant
        var firstToken: Double?
        let post = CurlStreamingPost(
            url: configuration.baseURL.trimmingSuffix("/") + "/chat/completions", body: body, headers: headers, caFile: configuration.caFile,
            connectTimeout: configuration.connectTimeout, totalTimeout: configuration.requestTimeout,
            stallTimeout: configuration.stallTimeout, firstByteTimeout: configuration.firstByteTimeout,
            deadline: deadline, time: time, cancel: cancel
        ) { bytes in
            do {
                for delta in try stream.feed(bytes) where !delta.isEmpty {
                    if firstToken == nil { firstToken = (self.time.instant - sent).seconds }
                    onProgress?(ChatProgress(
                        delta: delta, completionTokens: stream.completionTokens,
                        tokensSoFar: alreadySpent.total + promptEstimate + stream.completionTokens))
                }
                return nil
            } catch let error as LLMError {
                return error
            } catch {
                return LLMError(.malformedResponse, "\(error)")
            }
        }
        let outcome = post.perform()
        // What this try cost if it fails now: nothing if the server never started, else the prompt
        // estimate plus what streamed (the server's count where it sent one).
        let started = stream.started || outcome.status / 100 == 2
        let estimated = ChatUsage(promptTokens: started ? promptEstimate : 0, completionTokens: stream.completionTokens)
        let cost = stream.usage ?? estimated

        if let stopped = outcome.stopped {
            switch stopped {
            case .cancelled: throw LLMError(.cancelled, "cancelled mid-stream", spent: cost, partialText: stream.text)
            case .deadline: throw LLMError(.deadlineExceeded, "deadline passed mid-stream", spent: cost, partialText: stream.text)
            case .stalled:
                throw LLMError(.stalled, "no data for \(configuration.stallTimeout.seconds)s", spent: cost, partialText: stream.text)
            case .body(var error):
                error.spent = cost
                error.partialText = stream.text
                throw error
            }
        }
        if outcome.code != CURLE_OK {
            let message = "\(outcome.curlMessage) (curl \(outcome.code.rawValue))"
            if outcome.code == CURLE_OPERATION_TIMEDOUT {
                if let deadline, time.instant >= deadline - .milliseconds(50) {
                    throw LLMError(.deadlineExceeded, "deadline passed: \(message)", spent: cost, partialText: stream.text)
                }
                if post.sinceLastByte >= configuration.stallTimeout {
                    throw LLMError(.stalled, "no data for \(configuration.stallTimeout.seconds)s", spent: cost, partialText: stream.text)
                }
                throw LLMError(.timeout, message, spent: cost, partialText: stream.text)
            }
            if let tls = Self.tlsProblem(outcome.code) {
                // Not retried: the same certificate fails the same way.
                throw LLMError(.connection, "\(tls): \(message)", spent: cost, partialText: stream.text)
            }
            throw RetryableFailure(error: LLMError(.connection, message, spent: cost, partialText: stream.text), retryAfter: .zero)
        }
        let status = outcome.status
        // Cut secrets out before the message is shortened: a key cut in half would no longer match.
        let errorBody = configuration.redact(outcome.errorBody)
        if status == 429 || status >= 500 {
            throw RetryableFailure(
                error: LLMError(.server(status: status), "HTTP \(status): \(Self.errorMessage(errorBody))", spent: .zero),
                retryAfter: outcome.retryAfter)
        }
        if status == 401 || status == 403 {
            throw LLMError(.client(status: status), Self.refusedKey(status: status, body: errorBody, keySent: configuration.apiKey != nil))
        }
        if !(200..<300).contains(status) {
            throw LLMError(.client(status: status), "HTTP \(status): \(Self.errorMessage(errorBody))")
        }
        try stream.finish()
        guard stream.finished else {
            throw RetryableFailure(
                error: LLMError(.connection, "the stream ended before [DONE] or a finish reason", spent: cost, partialText: stream.text),
                retryAfter: .zero)
        }
        if let usage = stream.usage {
            return ChatCompletion(text: stream.text, usage: usage, usageSource: .server, finishReason: stream.finishReason, tries: 1,
                                  cachedPromptTokens: stream.cachedPromptTokens, firstTokenSeconds: firstToken)
        }
        if configuration.requireServerUsage {
            throw LLMError(.missingUsage, "the server sent no usage", spent: estimated, partialText: stream.text)
        }
        return ChatCompletion(text: stream.text, usage: estimated, usageSource: .estimated, finishReason: stream.finishReason, tries: 1,
                              firstTokenSeconds: firstToken)
    }

    private func requestBody(_ request: ChatRequest, maxTokens: Int, stream: Bool) throws -> String {
        var json: [String: Any] = [
            "model": request.model,
            "messages": request.messages.map { ["role": $0.role.rawValue, "content": $0.content] },
            "stream": stream,
            "max_tokens": maxTokens,
        ]
        if stream { json["stream_options"] = ["include_usage": true] }
        if let t = request.temperature { json["temperature"] = t }
        if let s = request.seed { json["seed"] = Int(truncatingIfNeeded: s & 0x7fff_ffff) }
        if !request.stop.isEmpty { json["stop"] = request.stop }
        if configuration.sendPriority, let p = request.jobPriority {
            // vLLM serves lower values first; a job's priority is higher-first.
            json["priority"] = -p
        }
        if let format = request.responseFormat, let body = format.body(configuration.responseFormatStyle) { json["response_format"] = body }
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// What a 401 or 403 means to the people reading it: "the backend refused the key (HTTP 401:
    /// Invalid API key)", with a hint when no key was sent. `agentflow workers`, `run` and the
    /// metrics' `refused_key` cause recognise the phrase.
    static func refusedKey(status: Int, body: String, keySent: Bool) -> String {
        let message = errorMessage(body)
        let detail = message.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(message)"
        return keySent ? "the backend refused the key (\(detail))"
            : "the backend refused the key (\(detail); no key was sent: give the backend apiKeyEnv or apiKeyFile)"
    }

    /// A TLS failure in words, for the curl codes that mean the server's certificate or ours is
    /// the problem; nil for other codes.
    static func tlsProblem(_ code: CURLcode) -> String? {
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION:
            return "TLS: the server's certificate is not trusted (give the backend a caFile with its certificate authority, or fix the server's certificate)"
        case CURLE_SSL_CACERT_BADFILE:
            return "TLS: cannot read the caFile as PEM certificates"
        case CURLE_SSL_CONNECT_ERROR:
            return "TLS: the handshake failed"
        default:
            return nil
        }
    }

    /// The `error.message` of an OpenAI error body, else the body's start.
    static func errorMessage(_ body: String) -> String {
        if let data = body.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            if let error = object["error"] as? [String: Any], let message = error["message"] as? String { return String(message.prefix(300)) }
            if let message = object["message"] as? String { return String(message.prefix(300)) }
            if let detail = object["detail"] { return String("\(detail)".prefix(300)) }
        }
        return String(body.prefix(300))
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
