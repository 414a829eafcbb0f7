import AgentFlowCore
import Foundation
import TestSupport
import Testing

@testable import LLM

/// The client against the real SmolLM2-135M server (`tools/start-models.sh`). Skipped when it is
/// not running; the project's test command starts it.
@Suite(.serialized, .enabled(if: realModelTestsEnabled(), "needs tools/start-models.sh (smollm2-135m on 127.0.0.1:8198)"))
struct RealModelTests {
    let client = ChatClient(.init(baseURL: "http://127.0.0.1:8198/v1", requireServerUsage: false))
    let messages: [ChatMessage] = [
        .system("You are a Python programmer. Answer with one ```python code block."),
        .user("Write a function add(a, b) that returns the sum of a and b."),
    ]

    @Test func streamsACompletionInsideItsAllowance() throws {
        try client.calibrate(model: "smollm2-135m")
        var progressCalls = 0
        let reply = try client.complete(
            ChatRequest(model: "smollm2-135m", messages: messages, temperature: 0, seed: 1), allowance: 160,
            deadline: SystemTime().instant + .seconds(60)
        ) { _ in progressCalls += 1 }
        #expect(!reply.text.isEmpty)
        #expect(progressCalls > 0)
        #expect(reply.usage.total <= 160)
    }

    @Test func theCalibratedEstimateStillErrsHigh() throws {
        try client.calibrate(model: "smollm2-135m")
        let long: [ChatMessage] = messages + [
            .assistant("```python\ndef add(a, b):\n    return a - b\n```"),
            .user("The check failed (exit code 1):\n```\nTraceback (most recent call last):\n  File \"_verify.py\", line 2, in <module>\n    assert add(2, 3) == 5\nAssertionError\n```\n[budget] 1800 tokens and 280s left; turn 2 of 6."),
        ]
        for prompt in [messages, long] {
            let plain = try client.attempt(
                ChatRequest(model: "smollm2-135m", messages: prompt), maxTokens: 1, promptEstimate: 0, alreadySpent: .zero,
                deadline: nil, cancel: nil, onProgress: nil, stream: false)
            let estimate = client.estimator.estimate(prompt)
            #expect(estimate >= plain.usage.promptTokens)
            // Conservative, not wasteful: 20% margin on content, a fixed template allowance.
            #expect(Double(estimate) <= Double(plain.usage.promptTokens) * 1.4 + 64, "\(estimate) vs \(plain.usage.promptTokens)")
        }
    }

    @Test func oneStreamedChunkIsOneToken() throws {
        let request = ChatRequest(model: "smollm2-135m", messages: messages, temperature: 0, seed: 7)
        let streamed = try client.complete(request, allowance: 400)
        let plain = try client.attempt(
            request, maxTokens: 400 - client.estimator.estimate(messages), promptEstimate: 0, alreadySpent: .zero,
            deadline: nil, cancel: nil, onProgress: nil, stream: false)
        #expect(plain.usageSource == .server)
        #expect(plain.text == streamed.text)
        #expect(plain.usage.completionTokens == streamed.usage.completionTokens)
        // The conservative prompt estimate never undercounts the server.
        #expect(streamed.usage.promptTokens >= plain.usage.promptTokens)
    }

    /// `response_format` with a JSON schema, as llama-cpp-python takes it (`json_object` with a
    /// `schema`): the server constrains decoding, so even a 135M model's reply parses and has the
    /// required fields.
    @Test func aResponseFormatMakesTheReplyFollowTheSchema() throws {
        let json = ChatClient(.init(baseURL: "http://127.0.0.1:8198/v1", requireServerUsage: false, responseFormatStyle: .jsonObject))
        let schema = #"{"type":"object","required":["city","country"],"properties":{"city":{"type":"string"},"country":{"type":"string"}}}"#
        let request = ChatRequest(model: "smollm2-135m", messages: [.user("Name a large city and its country.")], temperature: 0, seed: 3,
                                  maxCompletionTokens: 60, responseFormat: ResponseFormat(name: "city", schemaJSON: schema))
        let reply = try json.complete(request, allowance: 400, deadline: SystemTime().instant + .seconds(120))
        // llama-cpp-python's grammar lets raw line breaks into strings (strict JSON escapes them);
        // the structure — one object, the required keys, string values — is what it enforces.
        let escaped = reply.text.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(escaped.utf8)) as? [String: Any], "\(reply.text)")
        #expect(object["city"] is String && object["country"] is String, "\(reply.text)")
    }
}
