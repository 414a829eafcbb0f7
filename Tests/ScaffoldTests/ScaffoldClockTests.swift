import AgentFlowCore
import Foundation
import LLM
import Synchronization
import Testing

@testable import Scaffold

/// A scripted model whose calls take `takes` on the given manual clock, and which records the
/// deadline each call was given.
final class ClockedModel: ChatModel {
    let base: ScriptedModel
    let clock: ManualTime
    let takes: Duration
    private let seen = Mutex<[MonotonicInstant?]>([])

    init(_ base: ScriptedModel, clock: ManualTime, takes: Duration) {
        self.base = base
        self.clock = clock
        self.takes = takes
    }

    var deadlines: [MonotonicInstant?] { seen.withLock { $0 } }

    func complete(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant?, cancel: CancellationFlag?,
        onProgress: ((ChatProgress) -> Void)?
    ) throws(LLMError) -> ChatCompletion {
        seen.withLock { $0.append(deadline) }
        clock.advance(takes)
        return try base.complete(request, allowance: allowance, deadline: deadline, cancel: cancel, onProgress: onProgress)
    }
}

/// The scaffold and its sandbox read only the clock they are given (issue 16 item 4): an attempt
/// whose deadline passes on that clock stops, without real waiting and whatever the real time.
@Suite struct ScaffoldClockTests {
    func backend(_ model: any ChatModel, clock: ManualTime, wallSeconds: Double = 5) -> ScaffoldBackend {
        ScaffoldBackend(chat: model, model: "scripted",
                        configuration: ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wall: .seconds(wallSeconds))),
                        time: clock)
    }

    func attempt(ttl: Duration, on clock: ManualTime) -> AttemptSpec {
        var s = spec(options: .raw)
        s.ttl = ttl
        s.arrived(at: clock.instant)
        return s
    }

    @Test func theDeadlinePassingOnTheGivenClockStopsTheAttempt() {
        // The model's one call takes 61 s on a clock whose attempt has 60 s: the (correct) code is
        // never run, although hardly any real time passed.
        let clock = ManualTime(50_000)
        let model = ClockedModel(ScriptedModel(agent: [good]), clock: clock, takes: .seconds(61))
        let spec = attempt(ttl: .seconds(60), on: clock)
        let start = ContinuousClock.now
        let outcome = backend(model, clock: clock).run(spec)
        #expect(outcome.end == .deadline, "\(outcome.detail)")
        #expect(outcome.detail.contains("deadline reached"))
        #expect(outcome.seconds >= 61 && outcome.seconds < 62, "measured on the given clock: \(outcome.seconds)")
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(model.deadlines == [spec.deadline], "the model call is given the attempt's deadline")
    }

    @Test func withTimeLeftOnTheGivenClockTheSameAttemptSucceeds() {
        // The control: the same script with a call that fits in the ttl verifies and passes.
        let clock = ManualTime(50_000)
        let model = ClockedModel(ScriptedModel(agent: [good]), clock: clock, takes: .seconds(59))
        let outcome = backend(model, clock: clock).run(attempt(ttl: .seconds(60), on: clock))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
    }

    @Test func aDeadlinePassedBeforeTheStartCallsNoModel() {
        let clock = ManualTime(50_000)
        let model = ClockedModel(ScriptedModel(agent: [good]), clock: clock, takes: .zero)
        let spec = attempt(ttl: .zero, on: clock)
        let outcome = backend(model, clock: clock).run(spec)
        #expect(outcome.end == .deadline)
        #expect(model.deadlines.isEmpty && outcome.totalTokens == 0)
    }

    @Test func theSandboxKillsARunWhenTheGivenClockPassesTheDeadline() {
        // 30 s left on the given clock, a 20 s sleep: the clock jumps 31 s half a second in, and
        // the run is killed then, not when the sleep ends.
        let clock = ManualTime(50_000)
        let model = ClockedModel(ScriptedModel(agent: ["```python\nimport time\ntime.sleep(20)\n```"]), clock: clock, takes: .zero)
        let spec = attempt(ttl: .seconds(30), on: clock)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { clock.advance(.seconds(31)) }
        let start = ContinuousClock.now
        let outcome = backend(model, clock: clock, wallSeconds: 60).run(spec)
        #expect(outcome.end == .deadline, "\(outcome.detail)")
        #expect(ContinuousClock.now - start < .seconds(10), "killed when the given clock passed the deadline")
    }

    @Test func aSandboxRunsWallLimitIsCutToTheDeadlineOnItsClock() throws {
        let clock = ManualTime(50_000)
        let box = try Sandbox(root: testRoot(), name: UUID().uuidString, limits: SandboxLimits(wall: .seconds(60)), mode: .unsafeNoSandbox,
                              time: clock)
        defer { box.remove() }
        // Already past on the given clock: killed at once, though real time has a whole minute.
        let past = box.runShell("sleep 20", deadline: clock.instant - .seconds(1))
        #expect(past.timedOut)
        #expect(past.seconds < 1, "no time passed on the given clock")
        // A run that ends on its own within the deadline is measured on the given clock too.
        let quick = box.runShell("true", deadline: clock.instant + .seconds(5))
        #expect(quick.succeeded && !quick.timedOut)
    }
}
