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
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let store = try Store(path: path)
        #expect(store.schemaVersion == Store.latestSchemaVersion)
        let job = JobRecord(id: "j-1", workflowName: "w", yaml: "name: w", file: "w.yaml", state: .running, reason: "", planner: "seq:1",
                            seed: UInt64.max - 3, priority: 2, limitTokens: 100, limitUSD: NanoUSD(usd: 0.5), spentTokens: 0, spentUSD: .zero,
                            submittedAt: 10, deadline: 70, startedAt: 10, endedAt: nil, minSuccess: nil)
        try store.begin()
        try store.save(job)
        let id = AttemptID(job: "j-1", subtask: "a", n: 1)
        try store.save(AttemptRecord(id: id, model: "m", worker: "w0", state: .dispatched, tokenCap: 50,
                                     reserved: Amount(tokens: 50, usd: NanoUSD(5)), deadline: 70, createdAt: 11))
        try store.append(LedgerEntry(attempt: id, role: "agent", model: "m", tokensIn: 3, tokensOut: 4, usd: NanoUSD(9), kind: "charge", at: 12))
        try store.commit()
        // A second connection (as after a restart) sees the same state.
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
                               inputs: ["x": "y"], tokenCap: 10, deadline: 5, scaffold: ScaffoldOptions(), simulated: nil, seed: 9)
        let data = codec.encode(CoordinatorMessage.dispatch(spec))
        guard case .dispatch(let back) = try codec.decode(CoordinatorMessage.self, from: data) else {
            Issue.record("wrong case")
            return
        }
        #expect(back.id == spec.id && back.inputs == ["x": "y"] && back.verify == .python("assert True"))
        for junk in ["", "{", "null", "{\"dispatch\": 3}", "[1,2,3]", String(repeating: "[", count: 10_000)] {
            #expect(throws: (any Error).self) { try codec.decode(WorkerMessage.self, from: Data(junk.utf8)) }
        }
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
        AttemptSpec(id: AttemptID(job: "j", subtask: "s", n: 1), model: "m", prompt: "", verify: nil, inputs: [:], tokenCap: cap,
                    deadline: deadline, scaffold: ScaffoldOptions(), simulated: SimulatedBehaviour(success: success, tokens: tokens, seconds: seconds), seed: 42)
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
