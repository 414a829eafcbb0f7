import AgentFlowCore
import Foundation
import Store
import Testing

/// The per-attempt writes gathered per table and sent several rows to a statement
/// (`Store.apply`, `WriteBatch`): every row ends as the writes applied one at a time would
/// leave it, across chunk boundaries (1…32 rows a statement), with repeated keys, hostile text
/// and extreme numbers; a row the database refuses fails the whole batch.
@Suite struct BatchedWritesTests {
    /// Text a hostile workflow or worker could put in ids and details.
    static let odd = ["a'b", "?", "$1", "x\u{1}y", "tab\there", "line\nbreak", "del\u{7f}", "ünï €", "😀", "", "s\"q", "--", "; DROP TABLE attempts"]

    struct Writes {
        var rng: TestRNG
        let jobs: [String]

        init(seed: UInt64) {
            rng = TestRNG(state: seed)
            jobs = ["j-\(Self.pick(BatchedWritesTests.odd, seed))", "j2", "j\u{2}3"]
        }

        static func pick(_ a: [String], _ seed: UInt64) -> String { a[Int(seed % UInt64(a.count))] }

        mutating func text() -> String { BatchedWritesTests.odd.randomElement(using: &rng)! + "\(Int.random(in: 0..<3, using: &rng))" }
        mutating func int() -> Int { [0, 1, -1, 7, Int.max, Int.min, Int(Int32.max) * 3].randomElement(using: &rng)! }
        mutating func double() -> Double { [0, -0.0, 1.5, 1e300, -1e-300, .infinity, -.infinity, 1_700_000_000.125].randomElement(using: &rng)! }
        mutating func maybe<T>(_ v: T) -> T? { Bool.random(using: &rng) ? v : nil }

        mutating func attemptID() -> AttemptID {
            // Few keys, so batches repeat them (each repeat sends the table's pending rows first).
            AttemptID(job: jobs.randomElement(using: &rng)!, subtask: "s\(Int.random(in: 0..<25, using: &rng))\(Self.pick(BatchedWritesTests.odd, UInt64(Int.random(in: 0..<2, using: &rng))))",
                      n: Int.random(in: 1...2, using: &rng))
        }

        /// A wall-clock reading as hostile as `double()`.
        mutating func wall() -> WallInstant { WallInstant(secondsSince1970: double()) }

        mutating func job(_ id: String) -> JobRecord {
            JobRecord(id: id, workflowName: "wf", yaml: "name: wf", file: "w.yaml", state: [.queued, .running, .succeeded].randomElement(using: &rng)!,
                      reason: text(), planner: "seq:1", seed: .max, priority: int(), limitTokens: maybe(int()), limitUSD: nil, spentTokens: int(),
                      spentUSD: NanoUSD(Int64(int())), submittedAt: wall(), deadline: wall(), startedAt: maybe(wall()), endedAt: maybe(wall()),
                      minSuccess: nil)
        }

        mutating func write() -> StoreWrite {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<30:
                let id = attemptID()
                return .attempt(AttemptRecord(id: id, model: text(), worker: maybe(text()), state: [.queued, .dispatched, .succeeded, .failed, .lost].randomElement(using: &rng)!,
                                              tokenCap: int(), reserved: Amount(tokens: int(), usd: NanoUSD(Int64(int()))), tokensIn: int(), tokensOut: int(),
                                              usd: NanoUSD(Int64(int())), deadline: wall(), createdAt: wall(), dispatchedAt: maybe(wall()),
                                              endedAt: maybe(wall()), detail: text()))
            case 30..<50:
                return .dispatched(attemptID(), worker: text(), at: wall(), deadline: wall())
            case 50..<70:
                return .subtask(SubtaskRecord(job: jobs.randomElement(using: &rng)!, id: "s\(Int.random(in: 0..<30, using: &rng))", state: [.pending, .ready, .succeeded].randomElement(using: &rng)!,
                                              model: maybe(text()), attempts: int(), tokens: int(), usd: NanoUSD(Int64(int())), output: maybe(text())))
            case 70..<80:
                return .updateJob(job(jobs.randomElement(using: &rng)!))
            case 80..<97:
                return .ledger(LedgerEntry(attempt: attemptID(), role: text(), model: text(), tokensIn: int(), tokensOut: int(), usd: NanoUSD(Int64(int())),
                                           kind: text(), at: wall()))
            default:
                // Not gathered: everything pending goes out before it.
                return .worker(WorkerRecord(name: text(), host: "h", gpus: [1], model: "m", slots: int(), freeMemory: 5), state: .alive, lastSeen: wall())
            }
        }
    }

    static func commit(_ store: Store, _ writes: [StoreWrite]) throws { try store.applyAndCommit(writes) }

    /// Every row of the tables the batch writes, in a fixed order (the ledger by `seq`, the
    /// subtasks by insertion order, as the store reads them).
    static func dump(_ store: Store) throws -> [String] {
        try [
            "SELECT * FROM attempts ORDER BY job, subtask, n",
            "SELECT rowid, * FROM subtasks ORDER BY rowid",
            "SELECT id, state, reason, spent_tokens, spent_usd_nano, started_at, ended_at FROM jobs ORDER BY id",
            "SELECT * FROM ledger ORDER BY seq",
            "SELECT * FROM workers ORDER BY name",
        ].flatMap { sql in try store.connection.query(sql).map { "\($0.values)" } }
    }

    @Test(arguments: 1...12) func aBatchLeavesWhatOneWriteAtATimeLeaves(seed: UInt64) throws {
        var gen = Writes(seed: seed * 7919)
        var writes: [StoreWrite] = gen.jobs.map { .insertJob(gen.job($0)) }
        for _ in 0..<400 { writes.append(gen.write()) }
        let batched = try Store(path: ":memory:")
        let single = try Store(path: ":memory:")
        try Self.commit(batched, writes)
        try single.begin()
        for w in writes { try single.apply([w]) }
        try single.commit()
        let (a, b) = (try Self.dump(batched), try Self.dump(single))
        #expect(a.count == b.count)
        #expect(a == b)
        #expect(try batched.connection.query("SELECT COUNT(*) FROM ledger").first?.int(0) ?? 0 > 40)
    }

    /// n rows of each kind in one batch, for n around every chunk size: each row reads back as written.
    @Test(arguments: [0, 1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 100])
    func rowsAcrossChunkBoundariesReadBack(n: Int) throws {
        let store = try Store(path: ":memory:")
        let job = "job\u{1}'?"
        var j = JobRecord(id: job, workflowName: "wf", yaml: "name: wf", file: "w.yaml", state: .running, reason: "", planner: "seq:1", seed: 1,
                          priority: 0, limitTokens: nil, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: 1, deadline: .infinity,
                          startedAt: 1, endedAt: nil, minSuccess: nil)
        try Self.commit(store, [.insertJob(j)])
        var attempts: [AttemptRecord] = []
        var subtasks: [SubtaskRecord] = []
        var ledger: [LedgerEntry] = []
        for i in 0..<n {
            let sub = "s\(i)\(Self.odd[i % Self.odd.count])"
            let id = AttemptID(job: job, subtask: sub, n: i % 3 + 1)
            attempts.append(AttemptRecord(id: id, model: "m", state: .queued, tokenCap: Int.max - i, reserved: Amount(tokens: i, usd: NanoUSD(Int64(-i))),
                                          deadline: i % 2 == 0 ? .infinity : -1e300, createdAt: WallInstant(secondsSince1970: Double(i) + 0.25), detail: "d\(i)\n"))
            subtasks.append(SubtaskRecord(job: job, id: sub, state: .ready, model: i % 2 == 0 ? nil : "m\u{7f}", attempts: i, tokens: Int.min + i,
                                          usd: NanoUSD(Int64(i)), output: i % 3 == 0 ? nil : "out'\(i)"))
            ledger.append(LedgerEntry(attempt: id, role: "agent", model: "m", tokensIn: i, tokensOut: Int.max, usd: NanoUSD(Int64.max - Int64(i)),
                                      kind: "charge", at: WallInstant(secondsSince1970: Double(i))))
        }
        var writes = attempts.map { StoreWrite.attempt($0) } + subtasks.map { StoreWrite.subtask($0) } + ledger.map { StoreWrite.ledger($0) }
        // Half of them dispatched in the same batch: a second write to those rows.
        for (i, a) in attempts.enumerated() where i % 2 == 0 {
            writes.append(.dispatched(a.id, worker: "w\(i)\t", at: WallInstant(secondsSince1970: 10 + Double(i)), deadline: WallInstant(secondsSince1970: 20 + Double(i))))
        }
        j.spentTokens = n
        writes.append(.updateJob(j))
        try Self.commit(store, writes)

        var expected = attempts
        for i in stride(from: 0, to: n, by: 2) {
            expected[i].worker = "w\(i)\t"
            expected[i].state = .dispatched
            expected[i].dispatchedAt = WallInstant(secondsSince1970: 10 + Double(i))
            expected[i].deadline = WallInstant(secondsSince1970: 20 + Double(i))
        }
        let read = try store.attempts(of: job)
        #expect(read.count == n)
        #expect(Set(read.map(\.id)) == Set(expected.map(\.id)))
        for a in read { #expect(expected.first { $0.id == a.id } == a) }
        #expect(try store.subtasks(of: job) == subtasks)
        #expect(try store.ledger(of: job) == ledger)
        #expect(try store.job(job)?.spentTokens == n)
    }

    /// A NaN in a column that must hold a number reaches SQLite as NULL and is refused: the whole
    /// batch fails and rolls back, and nothing of it — not the rows before it, not the ledger — is left.
    @Test func aRefusedRowFailsTheWholeBatch() throws {
        let store = try Store(path: ":memory:")
        let good = (0..<40).map { i in
            AttemptRecord(id: AttemptID(job: "j", subtask: "s\(i)", n: 1), model: "m", state: .queued, tokenCap: 1, reserved: .zero, deadline: 1, createdAt: 1)
        }
        try Self.commit(store, [.attempt(good[0])])
        var bad = good[37]
        bad.deadline = WallInstant(secondsSince1970: .nan)
        var writes = good.dropFirst().map { StoreWrite.attempt($0) }
        writes[36] = .attempt(bad)
        writes.append(.ledger(LedgerEntry(attempt: good[1].id, role: "agent", model: "m", tokensIn: 1, tokensOut: 1, usd: NanoUSD(1), kind: "charge", at: 1)))
        #expect(throws: SQLiteError.self) { try Self.commit(store, writes) }
        #expect(try store.attempts(of: "j") == [good[0]])
        #expect(try store.ledger(of: "j").isEmpty)
        // The store goes on: the same batch without the bad row commits.
        writes.remove(at: 36)
        try Self.commit(store, writes)
        #expect(try store.attempts(of: "j").count == 39)
    }

    /// An ended attempt is written as a narrow UPDATE (`StoreWrite.attemptEnded`): the rows end as
    /// the full upsert leaves them, for n around every chunk size, with hostile text and extreme
    /// numbers, and with half the attempts dispatched in the same batch as their end.
    @Test(arguments: [1, 2, 5, 16, 17, 33, 64])
    func anEndedAttemptLeavesWhatTheUpsertLeaves(n: Int) throws {
        let narrow = try Store(path: ":memory:")
        let full = try Store(path: ":memory:")
        var queued: [StoreWrite] = []
        var ends: [StoreWrite] = []
        var upserts: [StoreWrite] = []
        for i in 0..<n {
            let id = AttemptID(job: "j\(i % 3)", subtask: "s\(i)\(Self.odd[i % Self.odd.count])", n: i % 2 + 1)
            var a = AttemptRecord(id: id, model: "m", state: .queued, tokenCap: 100, reserved: Amount(tokens: 100, usd: NanoUSD(7)),
                                  deadline: 5, createdAt: 1, detail: "")
            queued.append(.attempt(a))
            let dispatch = StoreWrite.dispatched(id, worker: "w\(i)", at: 2, deadline: 9)
            if i % 2 == 0 { queued.append(dispatch) } else { ends.append(dispatch); upserts.append(dispatch) }
            a.worker = "w\(i)"
            a.dispatchedAt = 2
            a.deadline = 9
            a.state = [.succeeded, .failed, .cancelled][i % 3]
            a.tokensIn = [0, Int.max, Int.min, 12][i % 4]
            a.tokensOut = i
            a.usd = NanoUSD(Int64.max - Int64(i))
            a.endedAt = WallInstant(secondsSince1970: [3, .infinity, 1e300][i % 3])
            a.detail = Self.odd[(i + 3) % Self.odd.count] + "\n\(i)"
            ends.append(.attemptEnded(a))
            upserts.append(.attempt(a))
        }
        for store in [narrow, full] { try Self.commit(store, queued) }
        try Self.commit(narrow, ends)
        try Self.commit(full, upserts)
        #expect(try Self.dump(narrow) == Self.dump(full))
        #expect(try narrow.connection.query("SELECT COUNT(*) FROM attempts WHERE ended_at IS NOT NULL").first?.int(0) == n)
    }

    // A missing row's end failing the whole batch: PostgresStoreTests, on SQLite and PostgreSQL alike.

    /// Transactions of writes to few rows, so a batch often writes a row twice: a dispatch or an
    /// end after its attempt's upsert, an end after a dispatch, a subtask or a job written again,
    /// rows that exist from an earlier transaction. Keys include "é" written precomposed and
    /// decomposed: equal as Swift strings, two rows in the database. Ends go only to rows that
    /// exist (else the batch fails, which `anEndedAttemptWithoutItsRowFailsTheWholeBatch` covers).
    struct Rounds {
        var rng: TestRNG
        static let jobs = ["j\u{1}\"1", "\u{E9}", "e\u{301}"]
        static let subtasks = ["s'0", "\u{E9}", "e\u{301}"]
        static let ns = [1, Int.max]
        /// The attempt rows the database holds, by their keys' bytes.
        var existing: Set<[UInt8]> = []

        init(seed: UInt64) { rng = TestRNG(state: seed) }

        static func bytes(_ id: AttemptID) -> [UInt8] { Array(id.job.utf8) + [0xFF] + Array(id.subtask.utf8) + [0xFF] + withUnsafeBytes(of: id.n) { Array($0) } }

        mutating func text() -> String { BatchedWritesTests.odd.randomElement(using: &rng)! + ["", "\u{E9}", "e\u{301}", "\r\n", "\u{0}"].randomElement(using: &rng)! }
        mutating func int() -> Int { [0, 1, -1, Int.max, Int.min, Int(Int32.max) * 3].randomElement(using: &rng)! }
        /// Any double, NaN included: for columns that may be NULL (SQLite stores a NaN as NULL).
        mutating func double() -> Double { [0, -0.0, 1.5, 1e300, -1e-300, .infinity, -.infinity, .nan, 1_700_000_000.125].randomElement(using: &rng)! }
        /// A double for a NOT NULL column: no NaN.
        mutating func number() -> Double { [0, -0.0, 1.5, 1e300, .infinity, -.infinity, 1_700_000_000.125].randomElement(using: &rng)! }
        mutating func maybe<T>(_ v: T) -> T? { Bool.random(using: &rng) ? v : nil }
        mutating func wall() -> WallInstant { WallInstant(secondsSince1970: double()) }
        mutating func instant() -> WallInstant { WallInstant(secondsSince1970: number()) }
        mutating func state() -> AttemptState { [.queued, .dispatched, .succeeded, .failed, .cancelled, .lost].randomElement(using: &rng)! }

        mutating func attemptID() -> AttemptID {
            AttemptID(job: Self.jobs.randomElement(using: &rng)!, subtask: Self.subtasks.randomElement(using: &rng)!, n: Self.ns.randomElement(using: &rng)!)
        }

        mutating func record(_ id: AttemptID) -> AttemptRecord {
            AttemptRecord(id: id, model: text(), worker: maybe(text()), state: state(), tokenCap: int(), reserved: Amount(tokens: int(), usd: NanoUSD(Int64(int()))),
                          tokensIn: int(), tokensOut: int(), usd: NanoUSD(Int64(int())), deadline: instant(), createdAt: instant(),
                          dispatchedAt: maybe(wall()), endedAt: maybe(wall()), detail: text())
        }

        mutating func job(_ id: String) -> JobRecord {
            JobRecord(id: id, workflowName: "wf", yaml: "name: wf", file: "w.yaml", state: [.queued, .running, .succeeded, .failed].randomElement(using: &rng)!,
                      reason: text(), planner: "seq:1", seed: 1, priority: 0, limitTokens: nil, limitUSD: nil, spentTokens: int(),
                      spentUSD: NanoUSD(Int64(int())), submittedAt: 1, deadline: .infinity, startedAt: maybe(wall()), endedAt: maybe(wall()), minSuccess: nil)
        }

        /// One transaction's writes.
        mutating func round() -> [StoreWrite] {
            var writes: [StoreWrite] = []
            var upserted: [AttemptID] = []
            var dispatched: [AttemptID] = []
            for _ in 0..<Int.random(in: 1...60, using: &rng) {
                switch Int.random(in: 0..<100, using: &rng) {
                case 0..<22:
                    let id = attemptID()
                    writes.append(.attempt(record(id)))
                    upserted.append(id)
                    existing.insert(Self.bytes(id))
                case 22..<40:
                    // Mostly an attempt upserted earlier in this batch, as a dispatch round does.
                    let id = Int.random(in: 0..<4, using: &rng) > 0 ? upserted.randomElement(using: &rng) ?? attemptID() : attemptID()
                    writes.append(.dispatched(id, worker: text(), at: wall(), deadline: instant()))
                    dispatched.append(id)
                case 40..<52:
                    let pick = Int.random(in: 0..<3, using: &rng)
                    let id = pick == 0 ? dispatched.randomElement(using: &rng) : pick == 1 ? upserted.randomElement(using: &rng) : attemptID()
                    guard let id, existing.contains(Self.bytes(id)) else { continue }
                    var end = record(id)
                    end.state = [.succeeded, .failed, .cancelled, .lost].randomElement(using: &rng)!
                    writes.append(.attemptEnded(end))
                case 52..<70:
                    writes.append(.subtask(SubtaskRecord(job: Self.jobs.randomElement(using: &rng)!, id: Self.subtasks.randomElement(using: &rng)!,
                                                         state: [.pending, .ready, .running, .succeeded].randomElement(using: &rng)!, model: maybe(text()),
                                                         attempts: int(), tokens: int(), usd: NanoUSD(Int64(int())), output: maybe(text()))))
                case 70..<82:
                    writes.append(.updateJob(job(Self.jobs.randomElement(using: &rng)!)))
                case 82..<97:
                    writes.append(.ledger(LedgerEntry(attempt: attemptID(), role: text(), model: text(), tokensIn: int(), tokensOut: int(),
                                                      usd: NanoUSD(Int64(int())), kind: text(), at: instant())))
                default:
                    writes.append(.worker(WorkerRecord(name: text(), host: "h", gpus: [1], model: "m", slots: int(), freeMemory: 5), state: .alive, lastSeen: instant()))
                }
            }
            return writes
        }
    }

    static func changes(_ store: Store) throws -> Int { try store.connection.query("SELECT total_changes()").first?.int(0) ?? 0 }

    /// Rounds of writes, each one transaction, applied through `apply` (folding, gathering) and
    /// one write at a time in order (one statement each): every row of attempts, subtasks, jobs,
    /// ledger and workers is the same after every round. The folds did happen: the batches
    /// changed fewer rows than the writes one by one did.
    @Test(arguments: 1...16) func foldedWritesLeaveWhatOneWriteAtATimeLeaves(seed: UInt64) throws {
        var gen = Rounds(seed: seed &* 104_729)
        let batched = try Store(path: ":memory:")
        let single = try Store(path: ":memory:")
        // Two of the three jobs exist ("é" decomposed does not: its updates change nothing).
        let setup: [StoreWrite] = Rounds.jobs.dropLast().map { .insertJob(gen.job($0)) }
        for store in [batched, single] { try Self.commit(store, setup) }
        var written = 0
        for round in 0..<25 {
            let writes = gen.round()
            written += writes.count
            try Self.commit(batched, writes)
            try single.begin()
            for w in writes { try single.apply([w]) }
            try single.commit()
            let (a, b) = (try Self.dump(batched), try Self.dump(single))
            #expect(a == b, "seed \(seed) round \(round): \(writes)")
            if a != b { return }
        }
        #expect(written > 500)
        #expect(try Self.changes(batched) < Self.changes(single))
        #expect(try batched.connection.query("SELECT COUNT(*) FROM attempts WHERE state = 'dispatched'").first?.int(0) ?? 0 > 0)
    }

    /// A dispatch round's batch — each attempt upserted then dispatched, a subtask and a job
    /// written twice — writes each row once; an attempt whose row exists from an earlier
    /// transaction takes the dispatch's deadline (the upsert writes it on conflict too), and an
    /// end after the upsert lands in the same row.
    @Test func aDispatchRoundWritesEachRowOnce() throws {
        let store = try Store(path: ":memory:")
        var gen = Rounds(seed: 1)
        var job = gen.job("j")
        job.spentTokens = 0
        let old = AttemptRecord(id: AttemptID(job: "j", subtask: "old", n: 1), model: "m", state: .queued, tokenCap: 5, reserved: .zero, deadline: 100, createdAt: 1)
        try Self.commit(store, [.insertJob(job), .attempt(old)])
        let before = try Self.changes(store)
        var writes: [StoreWrite] = []
        var expected: [AttemptRecord] = []
        for i in 0..<20 {
            var a = i == 0 ? old : AttemptRecord(id: AttemptID(job: "j", subtask: "s\(i)", n: 1), model: "m", state: .queued, tokenCap: 5,
                                                 reserved: .zero, deadline: 100, createdAt: 2)
            writes.append(.attempt(a))
            writes.append(.subtask(SubtaskRecord(job: "j", id: a.id.subtask, state: .ready)))
            writes.append(.subtask(SubtaskRecord(job: "j", id: a.id.subtask, state: .running, attempts: 1)))
            writes.append(.dispatched(a.id, worker: "w\(i)", at: 3, deadline: WallInstant(secondsSince1970: 50 + Double(i))))
            a.worker = "w\(i)"
            a.dispatchedAt = 3
            a.deadline = WallInstant(secondsSince1970: 50 + Double(i))
            a.state = .dispatched
            if i % 5 == 4 {
                a.state = .lost
                a.tokensOut = 5
                a.endedAt = 4
                a.detail = "lost: \(i)"
                writes.append(.attemptEnded(a))
            }
            expected.append(a)
            job.spentTokens = i
            writes.append(.updateJob(job))
        }
        try Self.commit(store, writes)
        // 20 attempts, 20 subtasks, 1 job: one row change each.
        #expect(try Self.changes(store) - before == 41)
        #expect(try store.attempts(of: "j").sorted { $0.id.subtask < $1.id.subtask } == expected.sorted { $0.id.subtask < $1.id.subtask })
        #expect(try store.subtasks(of: "j").allSatisfy { $0.state == .running && $0.attempts == 1 })
        #expect(try store.job("j")?.spentTokens == 19)
    }
}
