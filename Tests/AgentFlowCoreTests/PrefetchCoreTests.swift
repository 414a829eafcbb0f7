import AgentFlowCore
import Coordinator
import Foundation
import Testing
import Wire

/// The coordinator's side of prefetch (`coordinator.prefetch`): a worker is sent up to
/// `slots × (1 + prefetch)` attempts; one beyond its free slots waits queued there, holding its
/// reservation but no slot; its time (silence, the planner's observations) counts from when it
/// takes a slot; the worker's word that it never started one releases it, a lost worker's
/// queued attempts are charged like running ones.
@Suite struct PrefetchCoreTests {
    static func fanOut(_ n: Int, seconds: Int = 5) -> String {
        var yaml = "name: fan\nmodels: [m-small]\nbudget: {tokens: 10000000}\ndeadline: 1h\nsubtasks:\n"
        for i in 0..<n { yaml += "  - {id: s\(i), prompt: x, estimates: {m-small: {success: 1, tokens: 100, seconds: \(seconds)}}}\n" }
        return yaml
    }

    static func report(_ id: AttemptID, _ end: AttemptEnd = .succeeded, tokens: Int = 100) -> AttemptReport {
        AttemptReport(id: id, outcome: AttemptOutcome(end: end, usage: tokens > 0 ? [TokenUsage(role: .agent, input: tokens / 2, output: tokens / 2)] : [],
                                                      output: end == .succeeded ? "ok" : nil))
    }

    static func cancels(_ out: [Outgoing]) -> [AttemptID] {
        out.compactMap { if case .toWorker(_, .cancel(let id)) = $0 { id } else { nil } }
    }

    @Test func aWorkerGetsItsSlotsAndPrefetchPerSlotEachSayingItsJobsTime() throws {
        for prefetch in [0, 1, 2] {
            let h = try CoreHarness(prefetch: prefetch)
            try h.register("w0#1", slots: 2)
            _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(10), deadline: 600)))
            let d = CoreHarness.dispatches(h.sent)
            #expect(d.count == 2 * (1 + prefetch), "prefetch \(prefetch)")
            for x in d {
                if prefetch == 0 {
                    #expect(x.spec.jobTTL == nil, "without prefetch the frame is what it was")
                } else {
                    let t = try #require(x.spec.jobTTL)
                    #expect(t > .seconds(590) && t <= .seconds(600) && x.spec.ttl <= t)
                }
            }
            // One result frees one slot: one more attempt goes (the queued one took the slot).
            h.sent = []
            try h.iterate([.worker(.result(Self.report(d[0].spec.id)), from: Data("w0#1".utf8))])
            #expect(CoreHarness.dispatches(h.sent).count == 1)
        }
    }

    @Test func preemptionTurnsPrefetchOffAndPlacementCountsQueuedAsBusy() throws {
        let p = try CoreHarness(scheduling: SchedulingSpec(preemption: true), prefetch: 2)
        try p.register("w0#1", slots: 2)
        _ = try #require(CoreHarness.submitted(try p.submit(Self.fanOut(10))))
        #expect(CoreHarness.dispatches(p.sent).count == 2, "only free slots: a job at risk must be able to take a victim's slot")
        // Two workers of 2 slots, prefetch 1: 8 attempts spread 4 and 4 (queued ones count as
        // busy), never 6 on one because its running slots looked as full as the other's.
        let h = try CoreHarness(prefetch: 1)
        try h.register("a#1", slots: 2)
        try h.register("b#1", slots: 2)
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(8))))
        let to = CoreHarness.dispatches(h.sent).map { String($0.to.prefix(1)) }
        #expect(to == ["a", "b", "a", "b", "a", "b", "a", "b"], "\(to)")
    }

    @Test func aQueuedAttemptIsNotSilentWhileItWaitsAndItsTimeCountsFromItsStart() throws {
        let h = try CoreHarness(prefetch: 1)
        try h.register("w0#1", slots: 1)
        let job = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(2, seconds: 1), deadline: 3_000)))
        let d = CoreHarness.dispatches(h.sent)
        try #require(d.count == 2)
        let (first, second) = (d[0].spec, d[1].spec)
        // The first runs far past the second's ttl, saying how far it got: the second waits
        // queued at the worker all along and is not reclaimed.
        let wait = second.ttl.seconds + 200
        var t = 0.0
        while t < wait {
            h.clock.advance(1)
            t += 1
            try h.iterate([.worker(.progress(id: first.id, tokens: 10), from: Data("w0#1".utf8))])
        }
        #expect(try h.ledgerRows(job, kind: "lost") == 0)
        // The first ends: the second takes its slot now, and is silent from here on.
        h.sent = []
        try h.iterate([.worker(.result(Self.report(first.id)), from: Data("w0#1".utf8))])
        for _ in 0..<Int(second.ttl.seconds + 100) {
            h.clock.advance(1)
            try h.iterate([.worker(.heartbeat, from: Data("w0#1".utf8))])
        }
        #expect(try h.ledgerRows(job, kind: "lost") == 1, "reclaimed once silent for its ttl and the grace after its start")
        #expect(Self.cancels(h.sent) == [second.id])
    }

    @Test func theWorkersWordThatItNeverStartedReleasesTheReservation() throws {
        let h = try CoreHarness(prefetch: 1)
        try h.register("w0#1", slots: 1)
        let job = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(2))))
        let d = CoreHarness.dispatches(h.sent)
        try #require(d.count == 2)
        // The job is cancelled: both attempts are told to stop.
        h.sent = []
        try h.iterate([.client(.cancel(job: job), route: [Data("c".utf8)])])
        #expect(Set(Self.cancels(h.sent)) == Set(d.map(\.spec.id)))
        // The queued one is dropped at the worker: cancelled, nothing used; the running one
        // reports what it used.
        try h.iterate([.worker(.result(Self.report(d[1].spec.id, .cancelled, tokens: 0)), from: Data("w0#1".utf8)),
                       .worker(.result(Self.report(d[0].spec.id, .cancelled, tokens: 40)), from: Data("w0#1".utf8))])
        let snapshot = try #require(h.shell.core.jobSnapshots.first { $0.id == job })
        #expect(snapshot.reserved == .zero && snapshot.spent.tokens == 40)
        #expect(try h.ledgerRows(job, kind: "lost") == 0)
        let rows = try h.store.attempts(of: job)
        #expect(rows.first { $0.id == d[1].spec.id }?.state == .cancelled)
    }

    @Test func aLostWorkersQueuedAttemptsAreChargedInFullLikeRunningOnes() throws {
        let h = try CoreHarness(prefetch: 1)
        try h.register("w0#1", slots: 1)
        let job = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(2))))
        try #require(CoreHarness.dispatches(h.sent).count == 2)
        // The worker goes silent: it may have started the queued one after its last message.
        for _ in 0..<10 {
            h.clock.advance(1)
            try h.iterate()
        }
        #expect(try h.ledgerRows(job, kind: "lost") == 2)
        let snapshot = try #require(h.shell.core.jobSnapshots.first { $0.id == job })
        #expect(snapshot.consistent)
    }

    @Test func aReRegistrationKeepsQueuedAttemptsQueued() throws {
        let h = try CoreHarness(prefetch: 1)
        try h.register("w0#1", slots: 2)
        let job = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(10))))
        let d = CoreHarness.dispatches(h.sent).map(\.spec.id)
        try #require(d.count == 4)
        // The same process reconnects: two running, two queued (in its order), nothing lost.
        h.sent = []
        try h.iterate([.worker(.register(info: CoreHarness.info("w0", slots: 2), running: [d[0], d[1]], finished: [], queued: [d[2], d[3]]),
                               from: Data("w0#1".utf8))])
        #expect(try h.ledgerRows(job, kind: "lost") == 0)
        #expect(Self.cancels(h.sent).isEmpty)
        #expect(CoreHarness.dispatches(h.sent).isEmpty, "its room is full: 2 running + 2 queued")
        // Another worker's ids, a repeat and an unknown id listed as queued are told to stop.
        h.sent = []
        let stranger = AttemptID(job: "nope", subtask: "x", n: 1)
        try h.iterate([.worker(.register(info: CoreHarness.info("w0", slots: 2), running: [d[0], d[1]], finished: [],
                                         queued: [d[2], d[3], d[3], stranger]), from: Data("w0#1".utf8))])
        #expect(Self.cancels(h.sent) == [stranger])
        // A slot frees: the oldest queued takes it and one more is sent.
        h.sent = []
        try h.iterate([.worker(.result(Self.report(d[0])), from: Data("w0#1".utf8))])
        #expect(CoreHarness.dispatches(h.sent).count == 1)
    }
}
