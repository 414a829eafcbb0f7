import Foundation

/// Turns the body of a streaming chat completion into text, a token count and usage.
/// Also accepts a plain (non-streaming) JSON completion, for servers that ignore `stream`.
///
/// Used on the transfer's thread only.
final class ChatStreamDecoder {
    private var sse = ServerSentEventParser()
    private var raw: [UInt8] = []
    private(set) var text = ""
    /// Content chunks so far: one token each on every server we know (llama.cpp, vLLM, OpenAI).
    private(set) var completionTokens = 0
    private(set) var usage: ChatUsage?
    /// `usage.prompt_tokens_details.cached_tokens`, where the server sends it.
    private(set) var cachedPromptTokens: Int?
    private(set) var finishReason: String?
    private(set) var sawDone = false
    /// Whether the server sent any event (it has started working on the prompt).
    var started: Bool { sse.sawEvent }
    var finished: Bool { sawDone || finishReason != nil }

    private struct Chunk: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable { var content: String? }
            var delta: Delta?
            var message: Delta?
            var finish_reason: String?
        }
        struct Usage: Decodable {
            struct PromptDetails: Decodable { var cached_tokens: Int? }
            var prompt_tokens: Int?
            var completion_tokens: Int?
            var prompt_tokens_details: PromptDetails?
        }
        struct ErrorBody: Decodable { var message: String? }
        var choices: [Choice]?
        var usage: Usage?
        var error: ErrorBody?
    }

    /// Feeds body bytes; returns the text deltas they completed.
    func feed(_ bytes: UnsafeRawBufferPointer) throws(LLMError) -> [String] {
        if !sse.sawEvent && raw.count < 8 << 20 { raw.append(contentsOf: bytes) }
        var deltas: [String] = []
        for event in sse.feed(bytes) {
            if let delta = try handle(event) { deltas.append(delta) }
        }
        return deltas
    }

    /// The body ended.
    func finish() throws(LLMError) {
        if let event = sse.finish() { _ = try handle(event) }
        if !sse.sawEvent {
            // Not an event stream: a plain JSON completion, or garbage.
            let body = String(decoding: raw, as: UTF8.self)
            guard !body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw LLMError(.malformedResponse, "empty response body")
            }
            _ = try handle(body, plain: true)
        }
    }

    private func handle(_ event: String, plain: Bool = false) throws(LLMError) -> String? {
        if event.trimmingCharacters(in: .whitespaces) == "[DONE]" {
            sawDone = true
            return nil
        }
        let chunk: Chunk
        do {
            chunk = try JSONDecoder().decode(Chunk.self, from: Data(event.utf8))
        } catch {
            throw LLMError(.malformedResponse, "not a chat completion chunk: \(event.prefix(200))")
        }
        if let error = chunk.error {
            throw LLMError(.streamError, error.message ?? "the server reported an error")
        }
        if let u = chunk.usage, let p = u.prompt_tokens, let c = u.completion_tokens {
            usage = ChatUsage(promptTokens: p, completionTokens: c)
            if let cached = u.prompt_tokens_details?.cached_tokens { cachedPromptTokens = min(max(cached, 0), p) }
        }
        guard chunk.choices != nil || chunk.usage != nil else {
            throw LLMError(.malformedResponse, "a chunk with neither choices nor usage: \(event.prefix(200))")
        }
        var delta = ""
        for choice in chunk.choices ?? [] {
            if let content = (plain ? choice.message : choice.delta)?.content, !content.isEmpty {
                delta += content
                completionTokens += 1
            }
            if let reason = choice.finish_reason { finishReason = reason }
        }
        text += delta
        if let usage { completionTokens = max(completionTokens, usage.completionTokens) }
        return delta.isEmpty ? nil : delta
    }
}
