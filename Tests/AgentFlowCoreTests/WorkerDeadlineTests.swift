import AgentFlowCore
import Foundation
import Testing
import Wire
import Worker

/// The attempt's deadline on its way into a worker (issue 16 item 4): the wire carries a relative
/// `ttl` in seconds only; the worker turns it, once, into an instant on its monotonic clock when
/// the dispatch arrives; hostile values become a span in 0…30 days, never a trap.
@Suite struct WorkerDeadlineTests {
    static func spec(ttl: Duration) -> AttemptSpec {
        AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: 1), model: "m", prompt: "p", verify: nil, inputs: [:], tokenCap: 100,
                    ttl: ttl, scaffold: ScaffoldOptions(), simulated: Estimate(success: 1, tokens: 50, seconds: 5), seed: 1)
    }

    /// A dispatch as the wire carries it, its ttl's eight bytes replaced by `seconds` (what a
    /// broken or hostile coordinator could send).
    static func dispatchBytes(ttlSeconds seconds: Double) throws -> Data {
        let marker = 1234.5678
        var bytes = [UInt8](WireCodec().encode(CoordinatorMessage.dispatch(spec(ttl: .seconds(marker)))))
        let pattern = [UInt8(5)] + withUnsafeBytes(of: marker.bitPattern.littleEndian) { Array($0) }
        let at = try #require((0...(bytes.count - pattern.count)).first { Array(bytes[$0..<($0 + pattern.count)]) == pattern })
        bytes.replaceSubrange((at + 1)..<(at + 9), with: withUnsafeBytes(of: seconds.bitPattern.littleEndian) { Array($0) })
        return Data(bytes)
    }

    static func welcomedWorker(at now: Double) -> WorkerCore {
        var w = WorkerCore(info: WorkerInfo(WorkerRecord(name: "w", host: "h", gpus: [0], model: "m", slots: 4, freeMemory: 0)), options: WorkerCore.Options())
        _ = w.handle(.connected, at: .seconds(now))
        _ = w.handle(.message(.welcome(heartbeat: 1, liveness: 3)), at: .seconds(now))
        return w
    }

    @Test func theWireCarriesTheTTLInSecondsOnly() throws {
        var spec = Self.spec(ttl: .milliseconds(12_500))
        spec.deadline = MonotonicInstant(seconds: 999)
        let data = WireCodec().encode(CoordinatorMessage.dispatch(spec))
        let twelveAndAHalf = [UInt8(5)] + withUnsafeBytes(of: (12.5).bitPattern.littleEndian) { Array($0) }
        #expect(data.range(of: Data(twelveAndAHalf)) != nil, "ttl goes as a Double of seconds")
        #expect(data.range(of: Data("deadline".utf8)) == nil, "the worker's deadline is never sent")
        guard case .dispatch(let back) = try WireCodec().decode(CoordinatorMessage.self, from: data) else {
            Issue.record("not a dispatch")
            return
        }
        #expect(back.ttl == .milliseconds(12_500))
        #expect(back.deadline == MonotonicInstant(sinceOrigin: .zero), "set by the receiving worker, not carried")
    }

    static let hostileTTLs: [(Double, Double)] = [
        (.nan, 0), (-5, 0), (-.infinity, 0), (0, 0), (-0.0, 0), (12.5, 12.5), (.infinity, Limits.maxSeconds),
        (1e300, Limits.maxSeconds), (Limits.maxSeconds + 1, Limits.maxSeconds), (.leastNonzeroMagnitude, 0),
    ]

    @Test(arguments: hostileTTLs)
    func theWorkerConvertsTheTTLOnceOnArrival(ttl: Double, expected: Double) throws {
        let message = try WireCodec().decode(CoordinatorMessage.self, from: try Self.dispatchBytes(ttlSeconds: ttl))
        var w = Self.welcomedWorker(at: 5_000)
        let started = try #require(w.handle(.message(message), at: .seconds(5_000)).starts.first)
        #expect(abs((started.deadline - MonotonicInstant(seconds: 5_000)).seconds - expected) < 1e-6, "ttl \(ttl)")
        // Time passing and the same dispatch again (a resend) change nothing: one conversion.
        let again = w.handle(.message(message), at: .seconds(5_100))
        #expect(again.starts.isEmpty)
        #expect(w.handle(.tick, at: .seconds(5_200)).starts.isEmpty)
    }

    @Test func theDeadlineCountsFromArrivalOnTheWorkersClock() throws {
        let message = CoordinatorMessage.dispatch(Self.spec(ttl: .seconds(30)))
        var early = Self.welcomedWorker(at: 100)
        var late = Self.welcomedWorker(at: 100)
        let a = try #require(early.handle(.message(message), at: .seconds(100)).starts.first)
        let b = try #require(late.handle(.message(message), at: .seconds(160)).starts.first)
        #expect(a.deadline == MonotonicInstant(seconds: 130))
        #expect(b.deadline == MonotonicInstant(seconds: 190), "a dispatch delayed in transit still gets its whole ttl")
    }

    @Test func aZeroTTLEndsAtItsDeadlineOnTheBackend() throws {
        // The sim backend, on the same clock as the worker, ends a spent ttl at once as `deadline`.
        let clock = ManualTime(7_000)
        var w = Self.welcomedWorker(at: clock.monotonic)
        let spec = try #require(w.handle(.message(.dispatch(Self.spec(ttl: .zero))), at: .seconds(clock.monotonic)).starts.first)
        let events = Recorder()
        _ = SimBackend(timeScale: 1, seed: 1, time: clock).start(spec, events: events)
        let (outcome, after) = try #require(events.finished.first)
        #expect(outcome.end == .deadline && after == 0 && outcome.totalTokens == 0)
    }
}

@Suite struct TimeTypeTests {
    @Test func clampedSecondsNeverTraps() {
        #expect(Duration.clampedSeconds(.nan) == .zero)
        #expect(Duration.clampedSeconds(-1) == .zero)
        #expect(Duration.clampedSeconds(.infinity) == .seconds(Limits.maxSeconds))
        #expect(Duration.clampedSeconds(1.25) == .milliseconds(1_250))
        #expect(Duration.milliseconds(1_250).seconds == 1.25)
    }

    @Test func instantsFromHostileReadingsAndArithmetic() {
        #expect(MonotonicInstant(seconds: .nan) == MonotonicInstant(sinceOrigin: .zero))
        #expect(MonotonicInstant(seconds: .infinity) == MonotonicInstant(sinceOrigin: .zero))
        let t = MonotonicInstant(seconds: 10)
        #expect(t + .seconds(5) - t == .seconds(5))
        #expect((t + .seconds(5)).remaining(at: t) == .seconds(5))
        #expect(t.remaining(at: t + .seconds(1)) == .zero, "a passed deadline leaves nothing, never a negative span")
        #expect(t < t + .nanoseconds(1))
    }

    @Test func aManualClockSleepsByMovingOn() {
        let clock = ManualTime(0)
        let start = ContinuousClock.now
        clock.sleep(for: .seconds(3_600))
        #expect(clock.instant == MonotonicInstant(seconds: 3_600))
        #expect(ContinuousClock.now - start < .seconds(1))
    }
}
