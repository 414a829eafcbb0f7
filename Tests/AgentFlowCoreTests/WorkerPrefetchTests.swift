import AgentFlowCore
import Foundation
import Testing
import Wire
import Worker

/// A worker's queue of prefetched attempts (`coordinator.prefetch`): an attempt sent while every
/// slot is busy waits and starts the moment one frees, its ttl counted from then; it never starts
/// past its job's time, twice, or after it was cancelled or reported; cancelling it, draining or
/// stopping ends it unstarted (cancelled, nothing used); a re-registration lists it apart.
@Suite struct WorkerPrefetchTests {
    static func id(_ n: Int, job: String = "j") -> AttemptID { AttemptID(job: job, subtask: "s\(n)", n: 1) }

    static func spec(_ n: Int, ttl: Duration = .seconds(30), jobTTL: Duration? = .seconds(600), job: String = "j") -> AttemptSpec {
        var s = AttemptSpec(id: id(n, job: job), model: "m", prompt: "p", verify: nil, inputs: [:], tokenCap: 100,
                            ttl: ttl, scaffold: ScaffoldOptions(), simulated: Estimate(success: 1, tokens: 50, seconds: 5), seed: 1)
        s.jobTTL = jobTTL
        return s
    }

    static func worker(slots: Int, at now: Double = 100, drainGrace: Duration? = nil) -> WorkerCore {
        var o = WorkerCore.Options()
        o.drainGrace = drainGrace
        var w = WorkerCore(info: WorkerInfo(WorkerRecord(name: "w", host: "h", gpus: [0], model: "m", slots: slots, freeMemory: 0)), options: o)
        _ = w.handle(.connected, at: .seconds(now))
        _ = w.handle(.message(.welcome(heartbeat: 1, liveness: 3)), at: .seconds(now))
        return w
    }

    static func results(_ a: WorkerActions) -> [AttemptReport] {
        a.sends.compactMap { if case .result(let r) = $0 { r } else { nil } }
    }

    static let done = AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 10, output: 20)], detail: "ok")

    @Test func aQueuedAttemptStartsWhenASlotFreesItsTTLFromThen() throws {
        var w = Self.worker(slots: 1)
        #expect(w.handle(.message(.dispatch(Self.spec(1))), at: .seconds(100)).starts.map(\.id) == [Self.id(1)])
        let second = w.handle(.message(.dispatch(Self.spec(2, ttl: .seconds(30)))), at: .seconds(101))
        #expect(second.starts.isEmpty && Self.results(second).isEmpty, "held, not started, not refused")
        #expect(w.queued.map(\.id) == [Self.id(2)] && w.running == [Self.id(1)])
        #expect(w.handle(.tick, at: .seconds(105)).starts.isEmpty)
        // The running one ends at 110: its report and the queued one's start in the same step.
        let ended = w.handle(.finished(Self.id(1), Self.done, after: .zero), at: .seconds(110))
        #expect(Self.results(ended).map(\.id) == [Self.id(1)])
        let started = try #require(ended.starts.first)
        #expect(started.id == Self.id(2))
        #expect(started.deadline == MonotonicInstant(seconds: 140), "30 s from its start at 110, not from its arrival at 101")
        #expect(w.queued.isEmpty && w.running == [Self.id(2)])
        // The slot's idle gap: ended and restarted in one step.
        #expect(w.slotIdle.count == 1 && w.slotIdle.max == 0)
    }

    @Test func theJobsTimeBoundsTheStartAndTheRun() throws {
        var w = Self.worker(slots: 1)
        _ = w.handle(.message(.dispatch(Self.spec(1, ttl: .seconds(100)))), at: .seconds(100))
        // Attempt 2: its job has 20 s left when it arrives at 100; its own ttl is 15 s.
        _ = w.handle(.message(.dispatch(Self.spec(2, ttl: .seconds(15), jobTTL: .seconds(20)))), at: .seconds(100))
        // Attempt 3: its job has 50 s left; its ttl 40 s.
        _ = w.handle(.message(.dispatch(Self.spec(3, ttl: .seconds(40), jobTTL: .seconds(50)))), at: .seconds(100))
        #expect(w.wakeAt(now: .seconds(100)) <= MonotonicInstant(seconds: 120), "it wakes when the first job's time runs out")
        // At 121 attempt 2's job is past its deadline while it still waits: it ends unstarted.
        let expired = w.handle(.tick, at: .seconds(121))
        let report = try #require(Self.results(expired).first)
        #expect(report.id == Self.id(2) && report.outcome.end == .cancelled && report.outcome.usage.isEmpty)
        #expect(report.outcome.detail.contains("deadline"), "\(report.outcome.detail)")
        #expect(expired.starts.isEmpty && w.queued.map(\.id) == [Self.id(3)])
        // Attempt 3 starts at 130 with 20 s of its job left: its deadline is the job's, not 130 + 40.
        let next = w.handle(.finished(Self.id(1), Self.done, after: .zero), at: .seconds(130))
        let started = try #require(next.starts.first)
        #expect(started.id == Self.id(3) && started.deadline == MonotonicInstant(seconds: 150))
        // A started attempt never comes back: its id again is ignored.
        #expect(w.handle(.message(.dispatch(Self.spec(2))), at: .seconds(131)).starts.isEmpty)
        #expect(w.handle(.message(.dispatch(Self.spec(3))), at: .seconds(131)).starts.isEmpty)
    }

    @Test func aCancelledQueuedAttemptIsRemovedAndNeverStarts() throws {
        var w = Self.worker(slots: 1)
        _ = w.handle(.message(.dispatch(Self.spec(1))), at: .seconds(100))
        _ = w.handle(.message(.dispatch(Self.spec(2))), at: .seconds(100))
        _ = w.handle(.message(.dispatch(Self.spec(3))), at: .seconds(100))
        let cancelled = w.handle(.message(.cancel(id: Self.id(2))), at: .seconds(101))
        #expect(cancelled.cancels.isEmpty, "nothing runs on the backend to stop")
        let report = try #require(Self.results(cancelled).first)
        #expect(report.id == Self.id(2) && report.outcome.end == .cancelled && report.outcome.usage.isEmpty)
        #expect(w.unacked[Self.id(2)] != nil, "kept until acknowledged, like any result")
        // A second cancel, and a resend of the dispatch, change nothing.
        #expect(Self.results(w.handle(.message(.cancel(id: Self.id(2))), at: .seconds(102))).isEmpty)
        #expect(w.handle(.message(.dispatch(Self.spec(2))), at: .seconds(102)).starts.isEmpty)
        // The slot goes to attempt 3, never to 2.
        let next = w.handle(.finished(Self.id(1), Self.done, after: .zero), at: .seconds(110))
        #expect(next.starts.map(\.id) == [Self.id(3)])
        #expect(w.handle(.finished(Self.id(3), Self.done, after: .zero), at: .seconds(111)).starts.isEmpty)
    }

    @Test func aReRegistrationListsQueuedApartFromRunning() throws {
        var w = Self.worker(slots: 2)
        for n in 1...5 { _ = w.handle(.message(.dispatch(Self.spec(n))), at: .seconds(100)) }
        _ = w.handle(.finished(Self.id(1), Self.done, after: .zero), at: .seconds(101))
        let again = w.handle(.connected, at: .seconds(102))
        guard case .register(_, let running, let finished, let queued)? = again.sends.first else {
            Issue.record("no registration")
            return
        }
        #expect(Set(running) == [Self.id(2), Self.id(3)])
        #expect(queued == [Self.id(4), Self.id(5)], "in the order they will start")
        #expect(finished.map(\.id) == [Self.id(1)])
        // Without anything queued the field is left out (the frame of a worker before prefetch).
        var idle = Self.worker(slots: 2)
        guard case .register(_, _, _, let none)? = idle.handle(.connected, at: .seconds(100)).sends.first else {
            Issue.record("no registration")
            return
        }
        #expect(none == nil)
    }

    @Test func drainingAndStoppingEndQueuedAttemptsUnstarted() throws {
        var w = Self.worker(slots: 1, drainGrace: .seconds(60))
        for n in 1...3 { _ = w.handle(.message(.dispatch(Self.spec(n))), at: .seconds(100)) }
        let drain = w.handle(.stop, at: .seconds(101))
        let reports = Self.results(drain)
        #expect(Set(reports.map(\.id)) == [Self.id(2), Self.id(3)])
        #expect(reports.allSatisfy { $0.outcome.end == .cancelled && $0.outcome.usage.isEmpty })
        #expect(drain.cancels.isEmpty, "the running one finishes within the grace")
        #expect(w.handle(.finished(Self.id(1), Self.done, after: .zero), at: .seconds(102)).starts.isEmpty, "nothing starts while draining")

        var s = Self.worker(slots: 1)
        for n in 1...2 { _ = s.handle(.message(.dispatch(Self.spec(n))), at: .seconds(100)) }
        let stop = s.handle(.stop, at: .seconds(101))
        #expect(Self.results(stop).map(\.id) == [Self.id(2)] && stop.cancels == [Self.id(1)] && stop.starts.isEmpty)
    }

    @Test func theQueueIsBoundedAndOnlyForAttemptsThatMayWait() throws {
        var w = Self.worker(slots: 2)
        // Without the job's time (a coordinator that does not prefetch) a busy worker refuses, as before.
        for n in 1...2 { _ = w.handle(.message(.dispatch(Self.spec(n, jobTTL: nil))), at: .seconds(100)) }
        let refused = Self.results(w.handle(.message(.dispatch(Self.spec(3, jobTTL: nil))), at: .seconds(100)))
        #expect(refused.first?.outcome.end == .error && refused.first?.outcome.detail.contains("no free slot") == true)
        // With it, at most slots × maxQueuePerSlot wait; the next is refused.
        let room = 2 * WorkerCore.maxQueuePerSlot
        for n in 0..<room { #expect(Self.results(w.handle(.message(.dispatch(Self.spec(10 + n))), at: .seconds(100))).isEmpty) }
        #expect(w.queued.count == room)
        let over = Self.results(w.handle(.message(.dispatch(Self.spec(99))), at: .seconds(100)))
        #expect(over.first?.id == Self.id(99) && over.first?.outcome.end == .error)
        // Hostile job times: NaN, negative, infinite read as 0…30 days; a spent one never starts.
        var h = Self.worker(slots: 1)
        _ = h.handle(.message(.dispatch(Self.spec(1))), at: .seconds(100))
        _ = h.handle(.message(.dispatch(Self.spec(2, jobTTL: .zero))), at: .seconds(100))
        let next = h.handle(.finished(Self.id(1), Self.done, after: .zero), at: .seconds(100))
        #expect(next.starts.isEmpty && Self.results(next).contains { $0.id == Self.id(2) && $0.outcome.end == .cancelled })
    }

    @Test func theJobTTLTravelsInSecondsAndAbsentReadsAsNil() throws {
        let codec = WireCodec()
        for ttl: Duration? in [.milliseconds(2_500), nil] {
            let data = codec.encode(CoordinatorMessage.dispatch(Self.spec(1, jobTTL: ttl)))
            #expect((data.range(of: Data("jobTTL".utf8)) != nil) == (ttl != nil))
            guard case .dispatch(let back) = try codec.decode(CoordinatorMessage.self, from: data) else {
                Issue.record("not a dispatch")
                continue
            }
            #expect(back.jobTTL == ttl && back.startBy == nil)
            // The generic coder writes and reads the same.
            let generic = try BinaryCodec.encode(CoordinatorMessage.dispatch(Self.spec(1, jobTTL: ttl)))
            #expect(generic == data)
        }
    }
}
