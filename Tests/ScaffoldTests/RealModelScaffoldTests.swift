import AgentFlowCore
import Foundation
import LLM
import Testing

@testable import Scaffold

/// Whether something listens on 127.0.0.1:`port`.
func modelServerListening(on port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// The whole scaffold against the real SmolLM2-135M server of `tools/start-models.sh`.
@Suite(.enabled(if: modelServerListening(on: 8198), "needs tools/start-models.sh (smollm2-135m on 127.0.0.1:8198)"))
struct RealModelScaffoldTests {
    @Test func aRealAttemptStaysInsideItsCapAndReportsEveryRole() throws {
        let backend = ScaffoldBackend(
            baseURL: "http://127.0.0.1:8198/v1", model: "smollm2-135m",
            configuration: ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wallSeconds: 5)))
        let events = RecordingEvents()
        let cap = 3000
        let attempt = AttemptSpec(
            id: AttemptID(job: "real", subtask: "add", n: 1), model: "smollm2-135m",
            prompt: "Write a Python function add(a, b) that returns the sum of a and b.",
            verify: .python("from solution import add\nassert add(2, 3) == 5\nassert add(-1, 1) == 0\n"),
            inputs: [:], tokenCap: cap, deadline: Date().timeIntervalSince1970 + 120,
            scaffold: ScaffoldOptions(summarizer: true, corrector: true, maxTurns: 3), simulated: nil, seed: 3)
        _ = backend.start(attempt, events: events)
        let outcome = try #require(events.wait(seconds: 150))
        #expect([.succeeded, .failed, .capReached].contains(outcome.end), "\(outcome.end): \(outcome.detail)")
        #expect(outcome.totalTokens > 0 && outcome.totalTokens <= cap)
        #expect(events.progress.last == outcome.totalTokens)
        if outcome.end == .succeeded {
            #expect(outcome.output?.contains("def add") == true)
        }
    }
}
