import AgentFlowCore
import Testing

/// `backend:` keys of an openai worker in cluster.yaml: key sources (never the key), headers,
/// the served name, TLS, timeout and serving features; and the clear errors for what is wrong.
@Suite struct BackendConfigTests {
    func cluster(_ backend: String) throws -> Cluster {
        try Cluster.parse(yaml: """
            models:
              - {name: qwen-7b}
            workers:
              - name: gpu0
                model: qwen-7b
                backend:
            \(backend.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            """, file: "cluster.yaml")
    }

    func endpoint(_ backend: String) throws -> OpenAIEndpoint {
        guard case .openai(let e) = try cluster(backend).workers[0].backend else { throw ConfigError(file: "test", "not openai") }
        return e
    }

    @Test func everyKeyOfAHostedVLLMBackend() throws {
        let e = try endpoint("""
            kind: openai
            url: https://vllm.internal:8000/v1
            apiKeyEnv: VLLM_API_KEY
            served: Qwen/Qwen2.5-7B-Instruct
            headers: {X-Team: search, api-key: {env: AZURE_KEY}, X-Other: {file: /etc/agentflow/other}}
            caFile: /etc/ssl/internal-ca.pem
            timeout: 10m
            priority: true
            responseFormat: json_object
            """)
        #expect(e.url == "https://vllm.internal:8000/v1")
        #expect(e.apiKey == .environment("VLLM_API_KEY"))
        #expect(e.served == "Qwen/Qwen2.5-7B-Instruct")
        #expect(e.headers == [.init(name: "X-Team", value: .literal("search")), .init(name: "api-key", value: .secret(.environment("AZURE_KEY"))),
                              .init(name: "X-Other", value: .secret(.file("/etc/agentflow/other")))])
        #expect(e.caFile == "/etc/ssl/internal-ca.pem")
        #expect(e.timeout == .seconds(600))
        #expect(e.priority && e.responseFormat == .jsonObject)
        #expect("\(e)" == "https://vllm.internal:8000/v1", "a backend prints as its URL alone")
    }

    @Test func defaultsAndAKeyFile() throws {
        let e = try endpoint("{kind: openai, url: 'http://litellm:4000/v1', apiKeyFile: /run/secrets/litellm}")
        #expect(e == OpenAIEndpoint(url: "http://litellm:4000/v1", apiKey: .file("/run/secrets/litellm")))
        #expect(e.responseFormat == .jsonSchema && !e.priority && e.timeout == nil && e.served == nil)
        let served = try cluster("{kind: openai, port: 8300, serve: 'vllm serve M --port {port} --api-key $K', apiKeyEnv: K}")
        guard case .openai(let s) = served.workers[0].backend else { Issue.record("not openai"); return }
        #expect(s.url == "http://127.0.0.1:8300/v1" && s.apiKey == .environment("K"))
    }

    @Test(arguments: [
        ("{kind: openai, url: 'http://h/v1', apiKey: sk-123}", "never put the key itself in the cluster file", 7),
        ("{kind: openai, url: 'http://h/v1', apiKeyEnv: K, apiKeyFile: /f}", "apiKeyEnv or apiKeyFile, not both", 7),
        ("{kind: openai, url: 'http://h/v1', apiKeyEnv: 'sk-abc123-not-a-name'}", "must name an environment variable", 7),
        ("{kind: openai, url: 'http://h/v1', apiKeyEnv: ''}", "must name an environment variable", 7),
        ("{kind: openai, url: 'http://h/v1', headers: {Authorization: Bearer x}}", "the Authorization header comes from apiKeyEnv or apiKeyFile", 7),
        ("{kind: openai, url: 'http://h/v1', headers: {content-length: '5'}}", "is set by AgentFlow itself", 7),
        ("{kind: openai, url: 'http://h/v1', headers: {'X-A': \"v\\r\\nX-Injected: 1\"}}", "line break or control character", 7),
        ("{kind: openai, url: 'http://h/v1', headers: {'bad name': v}}", "is not a valid HTTP header name", 7),
        ("{kind: openai, url: 'http://h/v1', headers: {X-A: {env: A, file: /f}}}", "a string, {env: NAME} or {file: PATH}", 7),
        ("{kind: openai, url: 'http://h/v1', headers: [a, b]}", "backend.headers", 7),
        ("{kind: openai, url: 'http://h/v1', caFile: /ca.pem}", "caFile is for https:// URLs", 7),
        ("{kind: openai, url: 'https://h/v1', timeout: 0s}", "bad duration for backend.timeout", 7),
        ("{kind: openai, url: 'https://h/v1', timeout: 400d}", "backend.timeout", 7),
        ("{kind: openai, url: 'http://h/v1', priority: maybe}", "backend.priority", 7),
        ("{kind: openai, url: 'http://h/v1', responseFormat: grammar}", "must be one of json_schema, json_object, off", 7),
        ("{kind: openai, url: 'http://h/v1', served: ''}", "backend.served", 7),
        ("{kind: openai, url: 'http://h /v1'}", "spaces or control characters", 7),
        ("{kind: sim, apiKeyEnv: K}", "backend.apiKeyEnv is for openai backends", 7),
        ("{kind: sim, headers: {X-A: b}}", "backend.headers is for openai backends", 7),
    ] as [(String, String, Int)])
    func badBackendsAreRefusedWithTheLine(backend: String, problem: String, line: Int) {
        do {
            _ = try cluster(backend)
            Issue.record("accepted: \(backend)")
        } catch let error as ConfigError {
            #expect(error.message.contains(problem), "\(error)")
            #expect(error.line == line, "\(error)")
            #expect(!error.message.contains("sk-123"), "the key is not repeated back")
        } catch {
            Issue.record("\(error)")
        }
    }
}
