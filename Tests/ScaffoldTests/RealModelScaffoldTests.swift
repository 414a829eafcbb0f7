import AgentFlowCore
import Foundation
import LLM
import TestSupport
import Testing

@testable import Scaffold

/// The whole scaffold against the real SmolLM2-135M server of `tools/start-models.sh`.
/// Serialized, with generous deadlines: the server has one CPU thread and other suites may use it.
@Suite(.serialized, .enabled(if: realModelTestsEnabled(), "needs tools/start-models.sh (smollm2-135m on 127.0.0.1:8198)"))
struct RealModelScaffoldTests {
    @Test func aRealAttemptStaysInsideItsCapAndReportsEveryRole() throws {
        let backend = ScaffoldBackend(
            baseURL: "http://127.0.0.1:8198/v1", model: "smollm2-135m",
            configuration: ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wall: .seconds(5))))
        let events = RecordingEvents()
        let cap = 1500
        var attempt = AttemptSpec(
            id: AttemptID(job: "real", subtask: "add", n: 1), model: "smollm2-135m",
            prompt: "Write a Python function add(a, b) that returns the sum of a and b.",
            verify: .python("from solution import add\nassert add(2, 3) == 5\nassert add(-1, 1) == 0\n"),
            inputs: [:], tokenCap: cap, ttl: .seconds(240),
            scaffold: ScaffoldOptions(summarizer: true, corrector: true, maxTurns: 3), simulated: nil, seed: 3)
        attempt.arrived(at: SystemTime().instant)
        _ = backend.start(attempt, events: events)
        let outcome = try #require(events.wait(seconds: 260))
        // Which end depends on the model's luck and the server's load; the budget never does.
        #expect([.succeeded, .failed, .capReached, .deadline].contains(outcome.end), "\(outcome.end): \(outcome.detail)")
        #expect(outcome.totalTokens > 0 && outcome.totalTokens <= cap)
        #expect(events.progress.last == outcome.totalTokens)
        if outcome.end == .succeeded {
            #expect(outcome.output?.contains("def add") == true)
        }
    }

    @Test func twoSlotsShareOneServer() throws {
        // A worker with two slots runs two attempts at once against one server: they queue there,
        // neither is cut off.
        let backend = ScaffoldBackend(
            baseURL: "http://127.0.0.1:8198/v1", model: "smollm2-135m",
            configuration: ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wall: .seconds(5))))
        let events = [RecordingEvents(), RecordingEvents()]
        for (n, e) in events.enumerated() {
            var attempt = AttemptSpec(
                id: AttemptID(job: "real", subtask: "twice", n: n), model: "smollm2-135m",
                prompt: "Write a Python function twice(x) that returns 2 * x.",
                verify: .python("from solution import twice\nassert twice(4) == 8\n"),
                inputs: [:], tokenCap: 1200, ttl: .seconds(240), scaffold: .raw,
                simulated: nil, seed: UInt64(n))
            attempt.arrived(at: SystemTime().instant)
            _ = backend.start(attempt, events: e)
        }
        for e in events {
            let outcome = try #require(e.wait(seconds: 260))
            #expect(outcome.end != .error, "\(outcome.detail)")
            #expect(outcome.totalTokens <= 1200)
        }
    }
}
