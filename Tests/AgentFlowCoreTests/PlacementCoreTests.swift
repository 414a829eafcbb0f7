import AgentFlowCore
import Coordinator
import Foundation
import Testing
import Wire
import Worker

/// Placement (issue 20 item 3): an attempt goes to the worker of its model with the lowest
/// fraction of busy slots — its model server's queue counted as busy — ties to the one whose
/// last dispatch is oldest; never the first worker with a free slot.
@Suite struct PlacementCoreTests {
    /// `n` independent subtasks of m-small, each sure to pass.
    static func fanOut(_ n: Int) -> String {
        var yaml = "name: fan\nmodels: [m-small]\nbudget: {tokens: 10000000}\ndeadline: 1h\nsubtasks:\n"
        for i in 0..<n { yaml += "  - {id: s\(i), prompt: x, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}\n" }
        return yaml
    }

    static func counts(_ d: [(to: String, spec: AttemptSpec)]) -> [String: Int] {
        d.reduce(into: [:]) { $0[String($1.to.split(separator: "#")[0]), default: 0] += 1 }
    }

    func succeed(_ h: CoreHarness, _ d: (to: String, spec: AttemptSpec)) throws {
        let report = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 60, output: 40)], output: "ok"))
        try h.iterate([.worker(.result(report), from: Data(d.to.utf8))])
    }

    func load(_ h: CoreHarness, _ identity: String, running: Int, waiting: Int) throws {
        try h.iterate([.worker(.heartbeat, from: Data(identity.utf8)), .worker(.serverLoad(ServerLoad(running: running, waiting: waiting)), from: Data(identity.utf8))])
    }

    /// The issue's reproduction: 4 workers × 8 slots, an 8-way fan-out. First-free placement put
    /// all 8 on w0; now each worker runs 2, dispatched round-robin (equal fractions go to the
    /// oldest last dispatch).
    @Test func anEightWayFanOutOnFourWorkersOfEightSlotsUsesAllFour() throws {
        let h = try CoreHarness()
        for i in 0..<4 { try h.register("w\(i)#1", slots: 8) }
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(8))))
        let d = CoreHarness.dispatches(h.sent)
        #expect(d.count == 8)
        #expect(Self.counts(d) == ["w0": 2, "w1": 2, "w2": 2, "w3": 2], "\(d.map(\.to))")
        #expect(d.map { $0.to.prefix(2) } == ["w0", "w1", "w2", "w3", "w0", "w1", "w2", "w3"])
    }

    /// Fractions, not counts: a worker of 8 slots takes 4 attempts for each one of a worker of 2.
    @Test func slotsOfDifferentSizesFillInProportion() throws {
        let h = try CoreHarness()
        try h.register("big#1", slots: 8)
        try h.register("small#1", slots: 2)
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(5))))
        #expect(Self.counts(CoreHarness.dispatches(h.sent)) == ["big": 4, "small": 1])
    }

    /// A freed slot makes its worker the least loaded; among idle workers the one whose last
    /// dispatch is oldest goes first.
    @Test func theNextAttemptGoesWhereASlotFreedAndTiesToTheOldestDispatch() throws {
        let h = try CoreHarness()
        for i in 0..<3 { try h.register("w\(i)#1", slots: 2) }
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(5))))
        let first = CoreHarness.dispatches(h.sent)
        #expect(first.map { $0.to.prefix(2) } == ["w0", "w1", "w2", "w0", "w1"])
        // w2 (1 of 2 busy) is the least loaded; a second job's attempt goes there.
        h.sent = []
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(1))))
        #expect(CoreHarness.dispatches(h.sent).map(\.to) == ["w2#1"])
        // Every attempt ends: all idle, w0's last dispatch is the oldest.
        for d in first { try succeed(h, d) }
        try succeed(h, (to: "w2#1", spec: try #require(CoreHarness.dispatches(h.sent).first?.spec)))
        h.sent = []
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(1))))
        #expect(CoreHarness.dispatches(h.sent).map(\.to) == ["w0#1"])
    }

    /// A worker whose model server reports waiting requests counts them as busy slots: the
    /// fan-out goes to the other worker until the fractions meet. A server serving more than
    /// the worker runs (other clients) counts too.
    @Test func theModelServersQueueCountsAsBusy() throws {
        let h = try CoreHarness()
        try h.register("queued#1", slots: 8)
        try h.register("idle#1", slots: 8)
        try h.register("shared#1", slots: 8)
        try load(h, "queued#1", running: 0, waiting: 6)
        try load(h, "shared#1", running: 7, waiting: 0)
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(8))))
        let d = CoreHarness.dispatches(h.sent)
        // idle takes 6 (to 6/8 = queued's), then idle and queued alternate to 7/8 each, then shared.
        #expect(Self.counts(d) == ["idle": 7, "queued": 1], "\(d.map(\.to))")
    }

    /// The queue ranks workers; it never takes slots away: with the others full, a worker whose
    /// server reports a huge queue still gets attempts for its free slots.
    @Test func aLongQueueRanksLastButKeepsItsSlots() throws {
        let h = try CoreHarness()
        // gpu0 is first by name: first-free placement would fill it first.
        try h.register("gpu0#1", slots: 2)
        try h.register("gpu1#1", slots: 2)
        try load(h, "gpu0#1", running: 0, waiting: 1_000)
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(4))))
        let d = CoreHarness.dispatches(h.sent)
        #expect(d.map { String($0.to.split(separator: "#")[0]) } == ["gpu1", "gpu1", "gpu0", "gpu0"])
    }

    /// A report older than the liveness window is not counted (the worker's poller stopped
    /// hearing from its server); a fresh one is.
    @Test func aStaleQueueReportIsIgnored() throws {
        let h = try CoreHarness()
        try h.register("a#1", slots: 4)
        try h.register("b#1", slots: 4)
        try load(h, "a#1", running: 0, waiting: 100)
        for _ in 0..<4 {
            h.clock.advance(1)
            try h.iterate([.worker(.heartbeat, from: Data("a#1".utf8)), .worker(.heartbeat, from: Data("b#1".utf8))])
        }
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(2))))
        #expect(Self.counts(CoreHarness.dispatches(h.sent)) == ["a": 1, "b": 1])
    }

    /// Hostile reports: negative, huge and Int.max counts are clamped (no trap, no overflow in
    /// the comparison); a report from a connection that is not the worker's is ignored.
    @Test func hostileQueueReportsAreClampedOrIgnored() throws {
        let h = try CoreHarness()
        try h.register("a#1", slots: 4)
        try h.register("b#1", slots: 4)
        try load(h, "a#1", running: Int.max, waiting: Int.max)
        try load(h, "b#1", running: Int.min, waiting: -5)
        // Another process using a's name says a is idle: not a's connection, so ignored.
        let forged = try h.iterate([.worker(.serverLoad(ServerLoad(running: 0, waiting: 0)), from: Data("a#2".utf8))])
        #expect(forged.contains { if case .toWorker(let id, .reregister) = $0 { return id == Data("a#2".utf8) } else { return false } })
        _ = try #require(CoreHarness.submitted(try h.submit(Self.fanOut(6))))
        let d = CoreHarness.dispatches(h.sent)
        #expect(d.map { String($0.to.split(separator: "#")[0]) } == ["b", "b", "b", "b", "a", "a"])
        #expect(h.shell.core.jobSnapshots.allSatisfy { $0.consistent })
    }
}

/// The worker's side: the model server's load, once polled, rides with every heartbeat
/// (clamped); a server that says nothing adds nothing.
@Suite struct WorkerServerLoadTests {
    func heartbeats(_ core: inout WorkerCore, at t: Double) -> [WorkerMessage] {
        core.handle(.tick, at: .seconds(t)).sends
    }

    func names(_ m: [WorkerMessage]) -> [String] {
        m.map { if case .serverLoad(let l) = $0 { "load \(l.running)/\(l.waiting)" } else if case .heartbeat = $0 { "heartbeat" } else { "other" } }
    }

    @Test func theLoadGoesWithEachHeartbeatWhileTheServerSaysIt() {
        var o = WorkerCore.Options()
        o.heartbeat = .seconds(1)
        var core = WorkerCore(info: CoreHarness.info("w0"), options: o)
        _ = core.handle(.connected, at: .seconds(0))
        _ = core.handle(.message(.welcome(heartbeat: 1, liveness: 3)), at: .seconds(0))
        #expect(names(heartbeats(&core, at: 1)) == ["heartbeat"])
        _ = core.handle(.serverLoad(ServerLoad(running: 2, waiting: 5)), at: .seconds(1.5))
        _ = core.handle(.message(.heartbeat), at: .seconds(1.5))
        #expect(names(heartbeats(&core, at: 2)) == ["heartbeat", "load 2/5"])
        _ = core.handle(.serverLoad(ServerLoad(running: -1, waiting: Int.max)), at: .seconds(2.5))
        _ = core.handle(.message(.heartbeat), at: .seconds(2.5))
        #expect(names(heartbeats(&core, at: 3)) == ["heartbeat", "load 0/\(ServerLoad.maxCount)"])
        _ = core.handle(.serverLoad(nil), at: .seconds(3.5))
        _ = core.handle(.message(.heartbeat), at: .seconds(3.5))
        #expect(names(heartbeats(&core, at: 4)) == ["heartbeat"])
    }
}
