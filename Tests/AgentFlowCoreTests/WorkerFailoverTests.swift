import AgentFlowCore
import Testing
import Wire
import Worker

/// The worker's protocol with several coordinator endpoints (DESIGN §8, §12; issue 21 item 3):
/// a lost coordinator or a standby sends it to the next endpoint at once, a pass over the whole
/// list with no welcome backs off (1 s, then 2 s at most), a standby may name the leader, and
/// the worker registers wherever it lands with the attempts it runs and the results it holds.
/// One endpoint keeps the 1 s → 32 s backoff.
@Suite struct WorkerFailoverTests {
    static let list = ["tcp://10.0.0.1:5555", "tcp://10.0.0.2:5555", "tcp://10.0.0.3:5555"]

    static func worker(_ endpoints: [String]) -> WorkerCore {
        var options = WorkerCore.Options()
        options.coordinators = endpoints
        return WorkerCore(info: WorkerInfo(WorkerRecord(name: "w", host: "h", gpus: [0], model: "m", slots: 4, freeMemory: 0)), options: options)
    }

    /// Connected and welcomed at `now`.
    static func welcomed(_ w: inout WorkerCore, at now: Double) {
        _ = w.handle(.connected, at: .seconds(now))
        _ = w.handle(.message(.welcome(heartbeat: 1, liveness: 3)), at: .seconds(now))
        #expect(w.welcomed)
    }

    /// Ticks until the core asks to disconnect; returns when it did.
    static func tickUntilDisconnect(_ w: inout WorkerCore, from start: Double) -> Double {
        var t = start
        while t < start + 100 {
            t += 0.05
            if w.handle(.tick, at: .seconds(t)).disconnect { return t }
        }
        Issue.record("the worker never gave up on its coordinator")
        return t
    }

    static func spec(_ n: Int) -> AttemptSpec {
        var s = AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: n), model: "m", prompt: "p", verify: nil, inputs: [:], tokenCap: 100,
                            scaffold: ScaffoldOptions(), simulated: nil, seed: 1)
        s.ttl = .seconds(60)
        return s
    }

    @Test func oneEndpointBacksOffExponentiallyTo32Seconds() {
        var w = Self.worker(["tcp://127.0.0.1:5555"])
        Self.welcomed(&w, at: 0)
        var t = Self.tickUntilDisconnect(&w, from: 0)
        #expect(t > 3 && t < 3.2, "silent for liveness × heartbeat")
        var waits: [Double] = []
        for _ in 0..<7 {
            waits.append((w.reconnectAt?.seconds ?? 0) - t)
            #expect(w.endpoint == 0)
            t = w.reconnectAt?.seconds ?? t
            _ = w.handle(.connected, at: .seconds(t))
            t = Self.tickUntilDisconnect(&w, from: t)
        }
        #expect(waits.map { $0.rounded() } == [1, 2, 4, 8, 16, 32, 32])
    }

    @Test func aLostLeaderSendsTheWorkerToTheNextEndpointAtOnceAndPassesBackOffAtMost2Seconds() {
        var w = Self.worker(Self.list)
        Self.welcomed(&w, at: 0)
        var t = Self.tickUntilDisconnect(&w, from: 0)
        #expect(t > 3 && t < 3.2, "a welcomed connection keeps the usual liveness")
        // The pattern over four passes: next at once, next at once, then a wait (1 s, 2 s, 2 s, 2 s).
        var trail: [(endpoint: Int, wait: Double)] = []
        for _ in 0..<12 {
            trail.append((w.endpoint, ((w.reconnectAt?.seconds ?? 0) - t)))
            t = w.reconnectAt?.seconds ?? t
            _ = w.handle(.connected, at: .seconds(t))
            let before = t
            t = Self.tickUntilDisconnect(&w, from: t)
            #expect(t - before <= 1.1, "an endpoint that never welcomes is left after one heartbeat")
        }
        #expect(trail.map(\.endpoint) == [1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
        #expect(trail.map { ($0.wait * 10).rounded() / 10 } == [0, 0, 1, 0, 0, 2, 0, 0, 2, 0, 0, 2])
    }

    @Test func aStandbyNamingTheLeaderSendsTheWorkerThere() {
        var w = Self.worker(Self.list)
        _ = w.handle(.connected, at: .seconds(0))
        let a = w.handle(.message(.notLeader(leader: Self.list[2])), at: .seconds(0.01))
        #expect(a.disconnect)
        #expect(w.endpoint == 2)
        #expect(w.reconnectAt == .seconds(0.01), "at once")
        #expect(!w.welcomed)
    }

    @Test func aStandbyThatKnowsNoLeaderOrNamesAStrangerSendsTheWorkerToTheNext() {
        var w = Self.worker(Self.list)
        _ = w.handle(.connected, at: .seconds(0))
        _ = w.handle(.message(.notLeader(leader: "")), at: .seconds(0.01))
        #expect(w.endpoint == 1)
        _ = w.handle(.connected, at: .seconds(0.01))
        _ = w.handle(.message(.notLeader(leader: "tcp://evil.example:1\u{0}\u{7f}" + String(repeating: "x", count: 100_000))), at: .seconds(0.02))
        #expect(w.endpoint == 2)
        _ = w.handle(.connected, at: .seconds(0.02))
        _ = w.handle(.message(.notLeader(leader: "")), at: .seconds(0.03))
        #expect(w.endpoint == 0)
        #expect((w.reconnectAt?.seconds ?? 0) > 1, "a whole pass of standbys backs off")
    }

    @Test func theWorkerRegistersAtTheNewLeaderWithWhatItRunsAndTheResultsItHolds() {
        var w = Self.worker(Self.list)
        Self.welcomed(&w, at: 0)
        _ = w.handle(.message(.dispatch(Self.spec(1))), at: .seconds(0.1))
        _ = w.handle(.message(.dispatch(Self.spec(2))), at: .seconds(0.1))
        let done = w.handle(.finished(Self.spec(1).id, AttemptOutcome(end: .succeeded, usage: [], detail: "ok"), after: .zero), at: .seconds(0.2))
        #expect(done.sends.count == 1)
        // The leader dies before acknowledging: the worker moves on and registers with both.
        let t = Self.tickUntilDisconnect(&w, from: 0.2)
        #expect(w.endpoint == 1)
        let connected = w.handle(.connected, at: .seconds(t))
        guard case .register(_, let running, let finished, _)? = connected.sends.first else {
            Issue.record("no registration: \(connected.sends)")
            return
        }
        #expect(running == [Self.spec(2).id])
        #expect(finished.map(\.id) == [Self.spec(1).id])
        // The same attempt dispatched again by the new leader is not run twice.
        _ = w.handle(.message(.welcome(heartbeat: 1, liveness: 3)), at: .seconds(t + 0.01))
        let again = w.handle(.message(.dispatch(Self.spec(2))), at: .seconds(t + 0.02))
        #expect(again.starts.isEmpty)
        let replay = w.handle(.message(.dispatch(Self.spec(1))), at: .seconds(t + 0.02))
        #expect(replay.starts.isEmpty)
    }

    @Test func aWelcomeStartsAFreshPass() {
        var w = Self.worker(Self.list)
        _ = w.handle(.connected, at: .seconds(0))
        _ = w.handle(.message(.notLeader(leader: "")), at: .seconds(0))
        _ = w.handle(.connected, at: .seconds(0))
        _ = w.handle(.message(.welcome(heartbeat: 1, liveness: 3)), at: .seconds(0))
        #expect(w.endpoint == 1)
        // Lost again: two more endpoints are tried at once before any wait.
        var t = Self.tickUntilDisconnect(&w, from: 0)
        #expect(w.reconnectAt == .seconds(t) && w.endpoint == 2)
        _ = w.handle(.connected, at: .seconds(t))
        t = Self.tickUntilDisconnect(&w, from: t)
        #expect(w.reconnectAt == .seconds(t) && w.endpoint == 0)
    }

    /// A draining worker whose coordinator turns out to stand by does not go looking for the
    /// leader: it cancels what runs (reported as usual) and says goodbye.
    @Test func aDrainingWorkerToldItsCoordinatorNoLongerLeadsStops() {
        var options = WorkerCore.Options()
        options.coordinators = Self.list
        options.drainGrace = .seconds(30)
        var w = WorkerCore(info: WorkerInfo(WorkerRecord(name: "w", host: "h", gpus: [0], model: "m", slots: 4, freeMemory: 0)), options: options)
        Self.welcomed(&w, at: 0)
        let started = w.handle(.message(.dispatch(Self.spec(1))), at: .seconds(0.05))
        #expect(started.starts.map(\.id) == [Self.spec(1).id])
        let draining = w.handle(.stop, at: .seconds(0.1))
        #expect(!draining.done, "an attempt runs: the drain waits for it")
        let a = w.handle(.message(.notLeader(leader: "")), at: .seconds(0.2))
        #expect(!a.disconnect, "it does not look for another coordinator")
        #expect(a.cancels == [Self.spec(1).id])
        let ended = w.handle(.finished(Self.spec(1).id, AttemptOutcome(end: .cancelled, usage: [], detail: "worker stopping"), after: .zero), at: .seconds(0.3))
        #expect(ended.sends.count == 1, "the cancelled attempt's result is sent")
        // Its acknowledgement is waited for a moment (the standby will not send it), then goodbye.
        #expect(w.handle(.tick, at: .seconds(2.3)).done)
    }
}
