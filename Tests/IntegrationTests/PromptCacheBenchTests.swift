import Foundation
import TestSupport
import Testing

/// `agentflow bench prompt-cache` runs the real scaffold with scripted replies against a server
/// (here the scripted stand-in, which times nothing of interest): every run makes the same calls,
/// both layouts are timed, and what it prints is complete.
@Suite struct PromptCacheBenchTests {
    @Test func theBenchRunsBothLayoutsWithTheSameCalls() throws {
        let server = FakeServer(arguments: ["--log-requests", NSTemporaryDirectory() + "af-bench-\(UUID().uuidString).jsonl"])
        let r = try agentflow(["bench", "prompt-cache", "--url", server.baseURL, "--model", "echo", "--runs", "1", "--json"], timeout: 120)
        #expect(r.code == 0, "\(r.out)\(r.err)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: String], "\(r.out)")
        let shared = try #require(result["shared"]), broken = try #require(result["broken"])
        // NameError → corrector's wrong patch → wrong answer → right answer: four calls a run.
        #expect(shared.hasPrefix("calls 4 ") && broken.hasPrefix("calls 4 "), "\(result)")
        #expect(shared.contains("cached n/a"), "the stand-in reports no cached tokens")
        #expect(Double(result["ratio"] ?? "") != nil)
        let refused = try agentflow(["bench", "prompt-cache", "--url", "http://127.0.0.1:9/v1", "--runs", "1"], timeout: 30)
        #expect(refused.code == 3, "\(refused.err)")
    }
}
