import AgentFlowCore
import Foundation
import TestSupport
import Testing

@testable import LLM

/// What real endpoints need of the client: a bearer key (and a refusal named as such, the key
/// cut out of whatever the server echoes), extra headers, TLS with a CA file, a request
/// timeout, vLLM's `priority` and `response_format` — against stand-in servers that check them.
@Suite struct EndpointTests {
    static let key = "sk-test-\(UUID().uuidString)"
    /// A server that wants `key` on every request.
    static let keyed = FakeServer(environment: ["FAKE_OPENAI_API_KEY": key])

    func client(_ baseURL: String, key: String? = nil, headers: [ChatClient.Configuration.Header] = [], caFile: String? = nil,
                timeout: Double = 30, priority: Bool = false, style: ResponseFormat.Style = .jsonSchema) -> ChatClient {
        ChatClient(.init(baseURL: baseURL, apiKey: key, headers: headers, caFile: caFile, connectTimeout: .seconds(2), requestTimeout: .seconds(timeout),
                         firstByteTimeout: .seconds(timeout), maxRetries: 2, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(200), sendPriority: priority,
                         responseFormatStyle: style))
    }

    func call(_ client: ChatClient, model: String = "echo", _ request: ((inout ChatRequest) -> Void)? = nil) throws(LLMError) -> ChatCompletion {
        var r = ChatRequest(model: model, messages: [.user("hello there")])
        request?(&r)
        return try client.complete(r, allowance: 2000, deadline: SystemTime().instant + .seconds(30))
    }

    @Test func theKeyIsSentAsABearerToken() throws {
        let reply = try call(client(Self.keyed.baseURL, key: Self.key))
        #expect(reply.text == "echo: hello there")
        #expect(ServerProbe.problem(client(Self.keyed.baseURL, key: Self.key).configuration) == nil)
    }

    /// The server echoes the wrong key in its 401 (as OpenAI does); the error names the refusal,
    /// is not retried, and holds no trace of the key.
    @Test func aRefusedKeyIsNamedNotRetriedAndNeverRepeated() throws {
        let wrong = "sk-wrong-\(UUID().uuidString)"
        let started = Date()
        do {
            _ = try call(client(Self.keyed.baseURL, key: wrong))
            Issue.record("a wrong key was accepted")
        } catch {
            #expect(error.code == .client(status: 401))
            #expect(error.message.hasPrefix("the backend refused the key (HTTP 401: Incorrect API key provided: [redacted]"), "\(error.message)")
            #expect(!"\(error)".contains(wrong) && !"\(error)".contains(String(wrong.suffix(20))))
        }
        #expect(Date().timeIntervalSince(started) < 2, "a refused key is not retried")
        do {
            _ = try call(client(Self.keyed.baseURL))
            Issue.record("no key was accepted")
        } catch {
            #expect(error.message.contains("the backend refused the key") && error.message.contains("no key was sent"), "\(error.message)")
        }
        let probe = ServerProbe.problem(client(Self.keyed.baseURL, key: wrong).configuration)
        #expect(probe == "\(Self.keyed.baseURL)/models: the backend refused the key (HTTP 401)")
    }

    /// A key revoked while the server runs: the probe passes, completions are refused.
    @Test func aKeyRevokedAfterStartIsRefusedMidRun() throws {
        let server = FakeServer(arguments: ["--revoke-after", "1"], environment: ["FAKE_OPENAI_API_KEY": Self.key])
        let c = client(server.baseURL, key: Self.key)
        _ = try call(c)
        #expect(ServerProbe.problem(c.configuration) == nil)
        #expect(throws: LLMError.self) { _ = try call(c) }
        do { _ = try call(c) } catch {
            #expect(error.message.contains("the backend refused the key") && !error.message.contains(Self.key), "\(error.message)")
        }
    }

    @Test func secretsNeverPrintWithTheConfiguration() {
        let c = ChatClient.Configuration(baseURL: "http://h/v1", apiKey: Self.key, headers: [.init(name: "X-Api-Key", value: "hdr-secret-123", secret: true)])
        for text in ["\(c)", String(describing: c), String(reflecting: c)] {
            #expect(!text.contains(Self.key) && !text.contains("hdr-secret-123"), "\(text)")
        }
        #expect(c.redact("key \(Self.key) and hdr-secret-123") == "key [redacted] and [redacted]")
    }

    @Test func extraHeadersAreSent() throws {
        let server = FakeServer(arguments: ["--require-header", "X-Team=search"])
        #expect(throws: LLMError.self) { _ = try call(client(server.baseURL)) }
        let c = client(server.baseURL, headers: [.init(name: "X-Team", value: "search"), .init(name: "X-Trace", value: "t-1")])
        let reply = try call(c, model: "inspect-body")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(reply.text.utf8)) as? [String: Any])
        #expect((seen["headers"] as? [String: String]) == ["x-team": "search", "x-trace": "t-1"], "\(reply.text)")
        #expect(ServerProbe.problem(c.configuration) == nil, "the probe sends the headers too")
    }

    @Test func priorityAndResponseFormatAreSentWhereTheBackendTakesThem() throws {
        let schema = #"{"type":"object","required":["city"],"properties":{"city":{"type":"string"}}}"#
        let format = try #require(ResponseFormat(name: "extract city[0]", schemaJSON: schema))
        #expect(format.name == "extractcity0")
        #expect(ResponseFormat(name: "x", schemaJSON: "[1, 2]") == nil, "a schema is a JSON object")
        func sent(priority: Bool, style: ResponseFormat.Style) throws -> [String: Any] {
            let reply = try call(client(FakeServer.shared.baseURL, priority: priority, style: style), model: "inspect-body") {
                $0.jobPriority = 3
                $0.responseFormat = format
            }
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(reply.text.utf8)) as? [String: Any])
            return try #require(seen["request"] as? [String: Any])
        }
        let vllm = try sent(priority: true, style: .jsonSchema)
        #expect(vllm["priority"] as? Int == -3, "vLLM serves lower values first")
        let rf = try #require(vllm["response_format"] as? [String: Any])
        #expect(rf["type"] as? String == "json_schema")
        let js = try #require(rf["json_schema"] as? [String: Any])
        #expect(js["name"] as? String == "extractcity0" && js["strict"] as? Bool == true)
        #expect((js["schema"] as? [String: Any])?["required"] as? [String] == ["city"])
        let llamaPython = try sent(priority: false, style: .jsonObject)
        #expect(llamaPython["priority"] == nil, "not sent unless the backend takes it")
        let obj = try #require(llamaPython["response_format"] as? [String: Any])
        #expect(obj["type"] as? String == "json_object" && (obj["schema"] as? [String: Any])?["type"] as? String == "object")
        #expect(try sent(priority: false, style: .off)["response_format"] == nil)
    }

    @Test func theRequestTimeoutEndsASlowRequest() {
        let started = Date()
        do {
            _ = try call(client(FakeServer.shared.baseURL, timeout: 1), model: "slow")
            Issue.record("a 20 s reply finished inside a 1 s timeout")
        } catch {
            #expect(error.code == .timeout || error.code == .stalled, "\(error)")
        }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    /// https with a private certificate authority: refused (not retried) without the CA file,
    /// served with it; a CA file that is not PEM says so.
    @Test func tlsTrustsTheCAFileAndNamesAnUntrustedCertificate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("af-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let certs = try TestCertificates(in: dir)
        let server = FakeServer(arguments: ["--tls", certs.certificate, certs.key], environment: ["FAKE_OPENAI_API_KEY": Self.key], https: true)
        let trusted = client(server.baseURL, key: Self.key, caFile: certs.caFile)
        #expect(try call(trusted).text == "echo: hello there")
        #expect(ServerProbe.problem(trusted.configuration) == nil)
        let started = Date()
        do {
            _ = try call(client(server.baseURL, key: Self.key))
            Issue.record("an untrusted certificate was accepted")
        } catch {
            #expect(error.message.hasPrefix("TLS: the server's certificate is not trusted"), "\(error.message)")
        }
        #expect(Date().timeIntervalSince(started) < 2, "not retried")
        let probe = ServerProbe.problem(client(server.baseURL, key: Self.key).configuration) ?? ""
        #expect(probe.contains("TLS: the server's certificate is not trusted"), "\(probe)")
        let garbage = dir.appendingPathComponent("garbage.pem").path
        try "not a certificate\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        do {
            _ = try call(client(server.baseURL, key: Self.key, caFile: garbage))
            Issue.record("a garbage CA file was accepted")
        } catch {
            #expect(error.message.hasPrefix("TLS:"), "\(error.message)")
        }
    }

    /// What prefix caching is measured with: the server's cached prompt tokens where it reports
    /// them, and the time to the first token.
    @Test func cachedPromptTokensAndTimeToFirstTokenAreReported() throws {
        let c = client(FakeServer.shared.baseURL)
        let cached = try call(c, model: "cached:7")
        #expect(cached.cachedPromptTokens == 7)
        #expect(try call(c).cachedPromptTokens == nil, "nil where the server does not say")
        let queued = try call(c, model: "queued")
        #expect((queued.firstTokenSeconds ?? 0) >= 1.9, "\(queued.firstTokenSeconds ?? -1)")
        #expect((cached.firstTokenSeconds ?? 99) < (queued.firstTokenSeconds ?? 0))
    }
}
