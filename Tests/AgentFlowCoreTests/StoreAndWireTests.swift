import AgentFlowCore
import Foundation
import Store
import Testing
import Wire
import Worker

@Suite struct StoreTests {
    func tempDB() -> String { NSTemporaryDirectory() + "af-store-\(UUID().uuidString).db" }

    @Test func migratesAndRoundTrips() throws {
        let path = tempDB()
        defer { for s in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let job = JobRecord(id: "j-1", workflowName: "w", yaml: "name: w", file: "w.yaml", state: .running, reason: "", planner: "seq:1",
                            seed: UInt64.max - 3, priority: 2, limitTokens: 100, limitUSD: NanoUSD(usd: 0.5), spentTokens: 0, spentUSD: .zero,
                            submittedAt: 10, deadline: 70, startedAt: 10, endedAt: nil, minSuccess: nil)
        do {
            let store = try Store(path: path)
            #expect(store.schemaVersion == Store.latestSchemaVersion)
            try store.begin()
            try store.save(job)
            let id = AttemptID(job: "j-1", subtask: "a", n: 1)
            try store.save(AttemptRecord(id: id, model: "m", worker: "w0", state: .dispatched, tokenCap: 50,
                                         reserved: Amount(tokens: 50, usd: NanoUSD(5)), deadline: 70, createdAt: 11))
            try store.append(LedgerEntry(attempt: id, role: "agent", model: "m", tokensIn: 3, tokensOut: 4, usd: NanoUSD(9), kind: "charge", at: 12))
            try store.commit()
            // While it is open, nobody else may open the database: the refusal names the file and pid.
            #expect { try Store(path: path) } throws: { e in
                let d = "\(e)"
                return d.contains(path) && d.contains("pid \(getpid())")
            }
        }
        // Closed, then opened again (as after a restart): the same state.
        let reopened = try Store(path: path)
        #expect(try reopened.job("j-1") == job)
        #expect(try reopened.activeJobs().map(\.id) == ["j-1"])
        #expect(try reopened.attempts(of: "j-1").first?.reserved.tokens == 50)
        #expect(try reopened.ledger(of: "j-1").first?.tokensOut == 4)
    }

    @Test func ledgerIsAppendOnly() throws {
        let store = try Store(path: ":memory:")
        let id = AttemptID(job: "j", subtask: "a", n: 1)
        try store.append(LedgerEntry(attempt: id, role: "agent", model: "m", tokensIn: 1, tokensOut: 1, usd: NanoUSD(1), kind: "charge", at: 1))
        #expect(throws: SQLiteError.self) { try store.connection.execute("UPDATE ledger SET tokens_out = 0") }
        #expect(throws: SQLiteError.self) { try store.connection.execute("DELETE FROM ledger") }
        #expect(try store.ledger(of: "j").count == 1)
    }
}

@Suite struct WireTests {
    @Test func roundTripsAndRejectsMalformed() throws {
        let codec = WireCodec()
        let spec = AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: 2), model: "m", prompt: "p", verify: .python("assert True"),
                               inputs: ["x": "y"], tokenCap: 10, ttl: .seconds(5), scaffold: ScaffoldOptions(), simulated: nil, seed: 9)
        let data = codec.encode(CoordinatorMessage.dispatch(spec))
        guard case .dispatch(let back) = try codec.decode(CoordinatorMessage.self, from: data) else {
            Issue.record("wrong case")
            return
        }
        #expect(back.id == spec.id && back.inputs == ["x": "y"] && back.verify == .python("assert True"))
        for junk in ["", "{", "null", "{\"dispatch\": 3}", "[1,2,3]", String(repeating: "[", count: 10_000)] {
            #expect(throws: (any Error).self) { try codec.decode(WorkerMessage.self, from: Data(junk.utf8)) }
        }
        // Lying lengths, deep nesting, trailing bytes, the wrong message type.
        let hostile: [Data] = [
            Data([8, 0xff, 0xff, 0xff, 0xff]), Data([6, 0xff, 0xff, 0xff, 0x7f, 65]),
            Data(Array(repeating: [UInt8(7), 1, 0, 0, 0], count: 100).flatMap { $0 }),
            data + Data([0]), data.dropLast(), codec.encode(ClientRequest.jobs),
        ]
        for h in hostile {
            #expect(throws: (any Error).self) { try codec.decode(CoordinatorMessage.self, from: h) }
        }
    }

    /// The binary layout is a wire contract between versions (an old worker, a new coordinator):
    /// pinned byte for byte for a value with every kind of container, a nil optional (left out),
    /// an enum case with a payload, and a value that encodes nothing (null).
    @Test func binaryLayoutIsPinned() throws {
        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        enum Case: Encodable { case x(Int) }
        struct Pin: Encodable {
            var a = 1
            var b: String? = nil
            var c: [Bool?] = [true, nil]
            var e = Case.x(2)
            var empty = Nothing()
            var s = "é"
        }
        func key(_ k: String) -> [UInt8] { [UInt8(k.utf8.count), 0, 0, 0] + Array(k.utf8) }
        let int1: [UInt8] = [3, 1, 0, 0, 0, 0, 0, 0, 0], int2: [UInt8] = [3, 2, 0, 0, 0, 0, 0, 0, 0]
        var expected: [UInt8] = [8, 5, 0, 0, 0]
        expected += key("a") + int1
        expected += key("c") + [7, 2, 0, 0, 0, 2, 0]
        expected += key("e") + [8, 1, 0, 0, 0] + key("x") + [8, 1, 0, 0, 0] + key("_0") + int2
        expected += key("empty") + [0]
        expected += key("s") + [6, 2, 0, 0, 0, 0xC3, 0xA9]
        #expect([UInt8](try BinaryCodec.encode(Pin())) == expected)
        #expect([UInt8](try BinaryCodec.encode(Nothing())) == [0])
        #expect([UInt8](try BinaryCodec.encode([UInt8(7), 8])) == [7, 2, 0, 0, 0, 4, 7, 0, 0, 0, 0, 0, 0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0])
        #expect([UInt8](try BinaryCodec.encode(-1.5)) == [5] + withUnsafeBytes(of: (-1.5).bitPattern.littleEndian) { Array($0) })
    }

    /// The reports' optional fields (``ExplicitNull``): unset, they are `null` in JSON, never
    /// left out; a missing key still reads as nil; the binary codec carries them both ways.
    @Test func unsetReportFieldsAreNull() throws {
        let attempt = AttemptInfo(id: "j/s#1", job: "j", subtask: "s", n: 1, model: "m", worker: nil, state: "queued", tokenCap: 10, tokens: 0,
                                  tokensIn: 0, tokensOut: 0, usd: 0, reservedTokens: 0, reservedUSD: 0, createdAt: "t", dispatchedAt: nil,
                                  endedAt: nil, detail: "")
        let event = JobEvent(seq: 1, kind: "attempt", at: "t", job: "j", attempt: attempt)
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(event)) as? [String: Any])
        #expect(Set(json.keys) == ["seq", "kind", "at", "job", "state", "reason", "attempt", "budget"])
        #expect(json["state"] is NSNull && json["budget"] is NSNull)
        let inner = try #require(json["attempt"] as? [String: Any])
        #expect(inner.count == 18 && inner["worker"] is NSNull && inner["dispatchedAt"] is NSNull && inner["endedAt"] is NSNull)
        #expect(inner["model"] as? String == "m")
        let period = TenantPeriodReport(per: "day", start: "a", end: "b", limitUSD: nil, limitTokens: 5, spentUSD: 0, spentTokens: 0,
                                        reservedUSD: 0, reservedTokens: 0)
        let periodJSON = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(period)) as? [String: Any])
        #expect(periodJSON["limitUSD"] is NSNull && periodJSON["limitTokens"] as? Int == 5)

        let missing = try JSONDecoder().decode(BudgetReport.self, from: Data(#"{"spentTokens": 1, "spentUSD": 0.5, "reservedTokens": 2, "reservedUSD": 0}"#.utf8))
        #expect(missing == BudgetReport(limitTokens: nil, limitUSD: nil, spentTokens: 1, spentUSD: 0.5, reservedTokens: 2, reservedUSD: 0))
        #expect(try JSONDecoder().decode(JobEvent.self, from: JSONEncoder().encode(event)) == event)
        let codec = WireCodec()
        #expect(try codec.decode(JobEvent.self, from: codec.encode(event)) == event)
        var full = event
        full.state = "running"
        full.budget = missing
        full.attempt?.worker = "w"
        #expect(try codec.decode(JobEvent.self, from: codec.encode(full)) == full)
        #expect(try JSONDecoder().decode(JobEvent.self, from: JSONEncoder().encode(full)) == full)
    }

    /// Random corruption of valid messages: decoding either fails cleanly or yields a value; it never crashes.
    @Test func corruptedMessagesNeverCrash() {
        let codec = WireCodec()
        let spec = AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: 2), model: "m", prompt: "p", verify: .command("true"),
                               inputs: ["a": "b"], tokenCap: 10, ttl: .seconds(5), scaffold: ScaffoldOptions(), simulated: Estimate(success: 1, tokens: 2, seconds: 3), seed: .max)
        let samples = [codec.encode(CoordinatorMessage.dispatch(spec)), codec.encode(CoordinatorMessage.ack(ids: [spec.id, spec.id])),
                       codec.encode(WorkerMessage.progress(id: spec.id, tokens: 7))]
        var rng = TestRNG(state: 99)
        var rejected = 0
        for _ in 0..<3000 {
            var bytes = [UInt8](samples[Int.random(in: 0..<samples.count, using: &rng)])
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            if (try? codec.decode(CoordinatorMessage.self, from: Data(bytes))) == nil,
               (try? codec.decode(WorkerMessage.self, from: Data(bytes))) == nil { rejected += 1 }
        }
        #expect(rejected > 0)
    }

    @Test func everyMessageRoundTrips() throws {
        let codec = WireCodec()
        let id = AttemptID(job: "j-1", subtask: "s", n: 3)
        let outcome = AttemptOutcome(end: .capReached, usage: [TokenUsage(role: .corrector, input: 5, output: 6)], output: nil, detail: "d", seconds: 1.5)
        let info = WorkerInfo(WorkerRecord(name: "w", host: "h", gpus: [0, 1], model: "m", slots: 2, freeMemory: 1 << 40))
        let messages: [WorkerMessage] = [.register(info: info, running: [id], finished: [AttemptReport(id: id, outcome: outcome)]),
                                         .heartbeat, .progress(id: id, tokens: 9), .result(AttemptReport(id: id, outcome: outcome)), .goodbye,
                                         .serverLoad(ServerLoad(running: 3, waiting: Int.max))]
        for m in messages {
            let back = try codec.decode(WorkerMessage.self, from: codec.encode(m))
            #expect(String(describing: back) == String(describing: m))
        }
        let submit = SubmitRequest(yaml: "name: x", file: "f", budgetTokens: nil, budgetUSD: 0.5, deadline: 60, planner: "seq:1", seed: UInt64.max, priority: -2, minSuccess: nil)
        let back = try codec.decode(ClientRequest.self, from: codec.encode(ClientRequest.submit(submit)))
        guard case .submit(let s) = back else {
            Issue.record("wrong case")
            return
        }
        #expect(s.seed == UInt64.max && s.budgetTokens == nil && s.budgetUSD == 0.5 && s.priority == -2)
    }
}

/// Collects what a backend reports.
final class Recorder: AttemptEvents, @unchecked Sendable {
    // Guarded by `lock`.
    let lock = NSLock()
    var finished: [(AttemptOutcome, Double)] = []
    func progress(_ id: AttemptID, tokens: Int) {}
    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) {
        lock.withLock { finished.append((outcome, seconds)) }
    }
}

@Suite struct SimBackendTests {
    func spec(cap: Int, deadline: Double, tokens: Double = 1000, seconds: Double = 10, success: Double = 1) -> AttemptSpec {
        var s = AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: 1), model: "m", prompt: "", verify: nil, inputs: [:], tokenCap: cap,
                            scaffold: ScaffoldOptions(), simulated: Estimate(success: success, tokens: tokens, seconds: seconds), seed: 42)
        s.deadline = MonotonicInstant(seconds: deadline)
        return s
    }

    @Test func neverPassesTheCap() {
        let time = ManualTime(0)
        let r = Recorder()
        for seed in 0..<50 {
            _ = SimBackend(timeScale: 1, seed: UInt64(seed), time: time).start(spec(cap: 900, deadline: 1e9), events: r)
        }
        #expect(r.finished.count == 50)
        #expect(r.finished.allSatisfy { $0.0.totalTokens <= 900 })
        #expect(r.finished.contains { $0.0.end == .capReached })
    }

    @Test func stopsAtTheDeadline() {
        let time = ManualTime(100)
        let r = Recorder()
        _ = SimBackend(timeScale: 1, seed: 1, time: time).start(spec(cap: 10_000, deadline: 102, seconds: 10), events: r)
        let (outcome, after) = r.finished[0]
        #expect(outcome.end == .deadline)
        #expect(after <= 2)
        #expect(outcome.totalTokens < 1000)
    }

    @Test func cancelReportsPartialUsage() {
        let time = ManualTime(0)
        let r = Recorder()
        let h = SimBackend(timeScale: 1, seed: 1, time: time).start(spec(cap: 10_000, deadline: 1e9, seconds: 10), events: r)
        let full = r.finished[0].0.totalTokens
        time.advance(r.finished[0].1 / 2)
        h.cancel()
        h.cancel()
        #expect(r.finished.count == 2)
        #expect(r.finished[1].0.end == .cancelled)
        #expect(r.finished[1].1 == 0)
        #expect(abs(r.finished[1].0.totalTokens - full / 2) <= 1)
    }

    @Test func seededDraws() {
        let r1 = Recorder(), r2 = Recorder()
        _ = SimBackend(timeScale: 1, seed: 5, time: ManualTime(0)).start(spec(cap: 5000, deadline: 1e9, success: 0.5), events: r1)
        _ = SimBackend(timeScale: 1, seed: 5, time: ManualTime(0)).start(spec(cap: 5000, deadline: 1e9, success: 0.5), events: r2)
        #expect(r1.finished[0].0.totalTokens == r2.finished[0].0.totalTokens)
        #expect(r1.finished[0].0.end == r2.finished[0].0.end)
    }
}
