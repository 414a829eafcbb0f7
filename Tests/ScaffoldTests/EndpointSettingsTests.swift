import AgentFlowCore
import Foundation
import LLM
import Scaffold
import Testing

/// A backend's key and secret headers are read on the worker, from its environment or a file,
/// and refused with a message that names the source and never what it holds.
@Suite struct EndpointSettingsTests {
    let key = "sk-live-\(UUID().uuidString)"

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("af-endpoint-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func theKeyAndSecretHeadersComeFromTheEnvironmentOrAFile() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("key").path
        try "  \(key)\n".write(toFile: file, atomically: true, encoding: .utf8)
        let endpoint = OpenAIEndpoint(url: "https://h/v1", apiKey: .file(file),
                                      headers: [.init(name: "X-Team", value: .literal("search")), .init(name: "api-key", value: .secret(.environment("AZ")))],
                                      timeout: .seconds(42), priority: true, responseFormat: .jsonObject)
        let c = try ChatClient.Configuration(endpoint, environment: ["AZ": "az-secret"])
        #expect(c.apiKey == key, "surrounding whitespace and the final newline are dropped")
        #expect(c.headers == [.init(name: "X-Team", value: "search"), .init(name: "api-key", value: "az-secret", secret: true)])
        #expect(c.requestTimeout == .seconds(42) && c.firstByteTimeout == .seconds(42))
        #expect(c.sendPriority && c.responseFormatStyle == .jsonObject)
        #expect(c.redact("az-secret \(key)") == "[redacted] [redacted]")
        let fromEnv = try ChatClient.Configuration(OpenAIEndpoint(url: "http://h/v1", apiKey: .environment("K")), environment: ["K": key])
        #expect(fromEnv.apiKey == key)
    }

    @Test(arguments: [
        ([:], "comes from the environment variable K, which is not set for this worker"),
        (["K": "  \n"], "the environment variable K is empty"),
        (["K": "sk-a\r\nX-Injected: 1"], "holds a line break or control character"),
        (["K": String(repeating: "k", count: 20_000)], "holds more than 16 KiB"),
    ] as [([String: String], String)])
    func aKeyThatCannotBeUsedIsRefusedNamingItsSource(environment: [String: String], problem: String) {
        do {
            _ = try ChatClient.Configuration(OpenAIEndpoint(url: "http://h/v1", apiKey: .environment("K")), environment: environment)
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains(problem), "\(error)")
            for value in environment.values where value.count > 3 { #expect(!error.description.contains(value)) }
        }
    }

    @Test func missingFilesAndCAFilesAreNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("nope").path
        #expect(throws: EndpointSettingsError.self) {
            try ChatClient.Configuration(OpenAIEndpoint(url: "http://h/v1", apiKey: .file(missing)), environment: [:])
        }
        do {
            _ = try ChatClient.Configuration(OpenAIEndpoint(url: "https://h/v1", caFile: missing), environment: [:])
            Issue.record("a missing CA file was accepted")
        } catch {
            #expect(error.description == "backend.caFile \(missing) cannot be read")
        }
    }
}
