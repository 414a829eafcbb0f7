import AgentFlowCore
import Coordinator
import Foundation
import Synchronization
import Testing
@testable import Benchmarks

/// What `bench fleet --gpus N --gpu-sharing …` models: the slowdown table, processor sharing on
/// one GPU, and placement's effect through the real coordinator.
@Suite struct GPUSharingTests {
    @Test func theTableInterpolatesAndExtrapolates() throws {
        let s = try GPUSharing.parse("1=1,2=1.5,4=3")
        #expect(s.factor(1) == 1 && s.factor(2) == 1.5 && s.factor(4) == 3)
        #expect(s.factor(3) == 2.25)
        #expect(s.factor(6) == 4.5)
        #expect(s.factor(0) == 1 && s.factor(-5) == 1)
        #expect(s.factor(Int.max) == 1e6)
        #expect(try GPUSharing.parse("llama.cpp") == GPUSharing.llamaCpp)
        #expect(GPUSharing.llamaCpp.factor(8) == 3.99)
    }

    @Test func absurdTablesAreRefused() {
        for bad in ["", "2=1", "1=2", "1=1,2=0.5", "1=1,4=2,2=3", "1=1,2=nan", "1=1,2=inf", "1=1,2=1e9", "x", "1=1,\u{7}=2", "1=1,2=2,2=3"] {
            #expect(throws: (any Error).self, "\(bad)") { try GPUSharing.parse(bad) }
        }
    }
}

/// A clock the test moves.
final class TestClock: TimeSource, @unchecked Sendable {
    var t = 0.0
    var now: Double { t }
    var monotonic: Double { t }
}

/// Every finish an attempt reported, in order.
final class Finishes: AttemptEvents, @unchecked Sendable {
    var list: [(id: AttemptID, outcome: AttemptOutcome, after: Double)] = []
    func progress(_ id: AttemptID, tokens: Int) {}
    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) { list.append((id, outcome, seconds)) }
    func last(_ id: AttemptID) -> (outcome: AttemptOutcome, after: Double)? { list.last { $0.id == id }.map { ($0.outcome, $0.after) } }
}

/// Every attempt takes 10 s alone and 100 tokens; a cancel pays what the inner backend says.
struct TenSeconds: AttemptBackend {
    struct Handle: AttemptHandle {
        let id: AttemptID
        let events: any AttemptEvents
        func cancel() { events.finish(id, AttemptOutcome(end: .cancelled, usage: [TokenUsage(role: .agent, input: 0, output: 100)], detail: "cancelled"), after: 0) }
    }
    func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle {
        events.finish(spec.id, AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 0, output: 100)], output: "ok", detail: "", seconds: 10), after: 10)
        return Handle(id: spec.id, events: events)
    }
}

@Suite struct SharedGPUBackendTests {
    func spec(_ n: Int, deadline: Double = 1_000) -> AttemptSpec {
        var s = AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: n), model: "m", prompt: "p", verify: nil, inputs: [:], tokenCap: 1_000,
                            scaffold: ScaffoldOptions(), simulated: nil, seed: 1)
        s.deadline = MonotonicInstant(seconds: deadline)
        return s
    }

    /// Two attempts share the GPU from t=0 (factor 2: each 20 s); a third joins at t=5
    /// (factor 3) and pushes both back; cancelling one at t=10 brings the others forward.
    @Test func attemptsSlowAsOthersJoinAndSpeedUpAsTheyLeave() throws {
        let clock = TestClock()
        let gpu = SharedGPUBackend(TenSeconds(), sharing: try GPUSharing.parse("1=1,2=2"), time: clock)
        let events = Finishes()
        let a = spec(1), b = spec(2), c = spec(3)
        _ = gpu.start(a, events: events)
        #expect(events.last(a.id)?.after == 10)
        _ = gpu.start(b, events: events)
        #expect(events.last(a.id)?.after == 20 && events.last(b.id)?.after == 20)
        clock.t = 5
        _ = gpu.start(c, events: events)
        // a, b: 7.5 s of work left at 1/3 speed → 27.5; c: then 2.5 s alone → 30.
        #expect(events.last(a.id)?.after == 22.5 && events.last(b.id)?.after == 22.5 && events.last(c.id)?.after == 25)
        clock.t = 10
        let handleB = TenSeconds.Handle(id: b.id, events: SharedGPUBackend.Slowed(events: events, gpu: gpu, deadline: 1_000))
        handleB.cancel()
        let cancelled = try #require(events.last(b.id))
        #expect(cancelled.after == 0 && cancelled.outcome.end == .cancelled)
        // b did 10 − 5.83 = 4.17 of its 10 s of work: 41 of its 100 tokens.
        #expect(cancelled.outcome.totalTokens == 41)
        let aEnd = try #require(events.last(a.id)), cEnd = try #require(events.last(c.id))
        #expect(abs(aEnd.after - 35.0 / 3) < 1e-9, "\(aEnd.after)")   // 5.83 left at 1/2 → 21.67
        #expect(abs(cEnd.after - 85.0 / 6) < 1e-9, "\(cEnd.after)")   // then 2.5 alone → 24.17
        #expect(aEnd.outcome.end == .succeeded && abs(aEnd.outcome.seconds - (10 + 35.0 / 3)) < 1e-9)
    }

    /// Slowed past its deadline, an attempt ends there, `deadline`, paying the share it did.
    @Test func anAttemptSlowedPastItsDeadlineEndsThere() throws {
        let clock = TestClock()
        let gpu = SharedGPUBackend(TenSeconds(), sharing: try GPUSharing.parse("1=1,2=4"), time: clock)
        let events = Finishes()
        let a = spec(1, deadline: 15)
        _ = gpu.start(a, events: events)
        _ = gpu.start(spec(2), events: events)
        let end = try #require(events.last(a.id))
        #expect(end.after == 15 && end.outcome.end == .deadline && end.outcome.output == nil)
        #expect(end.outcome.totalTokens == 37)   // 15 s at quarter speed: 3.75 of its 10 s
        // The other had done 3.75 s by then too; the rest alone: 15 + 6.25.
        #expect(events.last(spec(2).id)?.after == 21.25)
    }

    /// An attempt whose report is due has left the GPU: one starting after it runs alone.
    @Test func aFinishedAttemptNoLongerSharesTheGPU() throws {
        let clock = TestClock()
        let gpu = SharedGPUBackend(TenSeconds(), sharing: try GPUSharing.parse("1=1,2=2"), time: clock)
        let events = Finishes()
        _ = gpu.start(spec(1), events: events)
        clock.t = 10
        _ = gpu.start(spec(2), events: events)
        #expect(events.list.count == 2 && events.last(spec(2).id)?.after == 10)
    }
}

/// Eight independent 10-second nodes, one job, `seq:1`, 4 GPUs × 4 slots, each GPU serial
/// (factor k): least-loaded placement runs 2 per GPU (20 s each); first-free runs 4 on each of
/// the first two GPUs (40 s each).
@Test func leastLoadedPlacementHalvesTheAttemptTimeOfAFanOut() throws {
    let rows = Array(repeating: CalibrationSample(latency: 10, success: true, tokens: 100), count: 8)
    let dag = PoolDAG(index: 0, kind: "test", modelIDs: ["m"], nodes: (0..<8).map { PoolNode(id: $0, parents: [], samples: [rows]) })
    var settings = FleetBenchSettings()
    settings.slotsPerModel = 16
    settings.gpusPerModel = 4
    settings.gpuSharing = try GPUSharing.parse("1=1,8=8")
    settings.planner = "seq:1"
    // Arriving once every worker has registered (at t = 0 the first to register would take 4).
    let job = [FleetJobSpec(dag: 0, arrival: 10, budgetUSD: 1, deadline: 1_000)]
    let spread = try FleetRun(dags: [dag], variant: FleetVariant(kind: .fleet), settings: settings).run(job, load: 1)
    var firstFree = FleetVariant(kind: .fleet)
    firstFree.placement = .firstFree
    #expect(firstFree.name == "fleet:firstfree")
    #expect(try FleetVariant.parse("fleet:firstfree") == firstFree)
    let piled = try FleetRun(dags: [dag], variant: firstFree, settings: settings).run(job, load: 1)
    #expect(spread.outcomes == [true] && piled.outcomes == [true])
    #expect(spread.attempts == 8 && piled.attempts == 8)
    #expect(abs(spread.meanAttemptSeconds - 20) < 0.5, "\(spread.meanAttemptSeconds)")
    #expect(abs(piled.meanAttemptSeconds - 40) < 0.5, "\(piled.meanAttemptSeconds)")
}
