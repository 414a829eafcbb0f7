import AgentFlowCore
import Foundation
import Store
import Testing

/// The PostgreSQL store against a real PostgreSQL 15 (issue 21 item 1): the same writes give
/// the same reads as SQLite's, the schema has SQLite's tables and columns, the ledger is
/// append-only in the database, a commit is all or nothing, and the lease fences a coordinator
/// that was taken over.
@Suite(.serialized) struct PostgresStoreTests {
    /// Hostile but legal values: control characters, quotes, placeholders in text, extremes, a
    /// NUL (PostgreSQL's text cannot hold one: escaped, see `PostgresText`) and the escape's marker.
    static let odd = "a'b\"c ? $1 \\ \t\u{1}\u{7f} ünï € \u{0}nul\u{0} \u{FFFF}0 \u{FFFF}"

    static func writes(job: String = "j1") -> [StoreWrite] {
        let id1 = AttemptID(job: job, subtask: "s1", n: 1)
        let id2 = AttemptID(job: job, subtask: "s1", n: 2)
        var j = JobRecord(id: job, workflowName: "wf", yaml: "name: wf\n# \(odd)", file: "w.yaml", state: .running, reason: odd, planner: "mcpp",
                          seed: UInt64.max, priority: -7, limitTokens: Int(Int32.max) * 4, limitUSD: NanoUSD(9_000_000_000_000), spentTokens: 0,
                          spentUSD: .zero, submittedAt: 1_700_000_000.125, deadline: .infinity, startedAt: 1_700_000_001, endedAt: nil, minSuccess: 0.25)
        j.tenant = "team-\(odd.prefix(3))"
        var writes: [StoreWrite] = [.insertJob(j)]
        // Subtasks in an order that is not alphabetical: reads keep insertion order.
        for s in ["s9", "s1", "s5"] { writes.append(.subtask(SubtaskRecord(job: job, id: s, state: .pending))) }
        writes.append(.attempt(AttemptRecord(id: id1, model: "m", state: .queued, tokenCap: 100, reserved: Amount(tokens: 100, usd: NanoUSD(5)),
                                             deadline: 1e12, createdAt: 1_700_000_002)))
        writes.append(.dispatched(id1, worker: "w\(odd)", at: 1_700_000_003, deadline: 1_700_000_100))
        writes.append(.attempt(AttemptRecord(id: id1, model: "m", worker: "w\(odd)", state: .failed, tokenCap: 100, reserved: .zero, tokensIn: 7,
                                             tokensOut: 9, usd: NanoUSD(3), deadline: 1_700_000_100, createdAt: 1_700_000_002,
                                             dispatchedAt: 1_700_000_003, endedAt: 1_700_000_010, detail: odd)))
        writes.append(.ledger(LedgerEntry(attempt: id1, role: "solver", model: "m", tokensIn: 7, tokensOut: 9, usd: NanoUSD(3), kind: "charge", at: 1_700_000_010)))
        writes.append(.attempt(AttemptRecord(id: id2, model: "m2", state: .succeeded, tokenCap: 50, reserved: .zero, tokensIn: 1, tokensOut: 2,
                                             usd: NanoUSD(1), deadline: 1_700_000_200, createdAt: 1_700_000_011, dispatchedAt: 1_700_000_012,
                                             endedAt: 1_700_000_020, detail: "ok")))
        writes.append(.ledger(LedgerEntry(attempt: id2, role: "verifier", model: "m2", tokensIn: 1, tokensOut: 2, usd: NanoUSD(1), kind: "charge", at: 1_700_000_020)))
        writes.append(.subtask(SubtaskRecord(job: job, id: "s1", state: .succeeded, model: "m2", attempts: 2, tokens: 19, usd: NanoUSD(4), output: odd)))
        j.spentTokens = 19
        j.spentUSD = NanoUSD(4)
        j.state = .succeeded
        j.endedAt = 1_700_000_030
        writes.append(.updateJob(j))
        writes.append(.worker(WorkerRecord(name: "w\(odd)", host: "h", gpus: [0, 3], model: "m", slots: 4, freeMemory: Int64.max),
                              state: .alive, lastSeen: 1_700_000_031))
        writes.append(.transcript(id2, [TranscriptEntry(seq: 1, at: 1_700_000_013, event: .note(odd)),
                                        TranscriptEntry(seq: 2, at: 1_700_000_014, event: .note("second"))],
                                  limits: TranscriptLimits(), at: 1_700_000_015))
        // Sent again after a reconnect: stored once.
        writes.append(.transcript(id2, [TranscriptEntry(seq: 2, at: 1_700_000_014, event: .note("second"))], limits: TranscriptLimits(), at: 1_700_000_016))
        return writes
    }

    static func commit(_ store: Store, _ writes: [StoreWrite]) throws { try store.applyAndCommit(writes) }

    /// Everything the coordinator reads back, as text to compare.
    static func reads(_ store: Store, job: String = "j1") throws -> [String] {
        [
            "\(try store.job(job).map { String(describing: $0) } ?? "nil")",
            "\(try store.subtasks(of: job))",
            "\(try store.attempts(of: job))",
            "\(try store.ledger(of: job))",
            "\(try store.ledgerLines(of: job).map(\.seq))",
            "\(try store.workers())",
            "\(try store.roleTokens(of: job).sorted { $0.key < $1.key }.map { ($0.key, $0.value.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }) })",
            "\(try store.lastAttemptDetails(of: job).sorted { $0.key < $1.key })",
            "\(try store.jobCountsByState().sorted { $0.key < $1.key })",
            "\(try store.finishedAttempts(workflow: "wf").map { "\($0)" })",
            "\(try store.jobs(state: "succeeded", workflow: "wf", tenant: nil, limit: 10, offset: 0).jobs.map(\.id))",
            "\(try store.activeJobs().map(\.id))",
            "\(try store.transcript(of: AttemptID(job: job, subtask: "s1", n: 2)).map { "\($0)" } ?? "nil")",
            "\(try store.transcriptTotal())",
        ]
    }

    @Test func theSameWritesReadTheSameAsSQLite() throws {
        let pg = try Store(postgres: try PostgresTestCluster.get().database())
        let lite = try Store(path: ":memory:")
        for store in [pg, lite] { try Self.commit(store, Self.writes()) }
        let (a, b) = (try Self.reads(pg), try Self.reads(lite))
        for (x, y) in zip(a, b) { #expect(x == y) }
        #expect(try pg.job("j1")?.deadline == .infinity)
        // Text with NULs comes back whole from both stores (not cut at the first NUL).
        for store in [pg, lite] {
            #expect(try store.job("j1")?.reason == Self.odd)
            #expect(try store.subtasks(of: "j1").first { $0.id == "s1" }?.output == Self.odd)
            #expect(try store.attempts(of: "j1").first?.detail == Self.odd)
            #expect(try store.workers().first?.worker.name == "w\(Self.odd)")
        }
        // PostgreSQL holds the escaped text (it cannot hold NUL): the marker is in the row, and
        // its length is the original's plus one per NUL and per U+FFFF (two of each in `odd`).
        let raw = try #require(try pg.connection.query("SELECT strpos(reason, chr(65535)) > 0, length(reason) FROM jobs WHERE id = 'j1'").first)
        #expect(raw.int(0) == 1)
        #expect(raw.int(1) == Self.odd.unicodeScalars.count + 4)
        #expect(try pg.job("j1")?.seed == UInt64.max)
        // The transcript's resent entry is stored once.
        #expect(try pg.transcript(of: AttemptID(job: "j1", subtask: "s1", n: 2))?.entries.count == 2)
        // A reader session sees what was committed, and may not write.
        let reader = try pg.reader()
        #expect(try Self.reads(reader) == a)
        #expect(throws: (any Error).self) { try reader.connection.execute("DELETE FROM workers") }
    }

    /// Many rows of each per-attempt write in one batch, several to a statement (multi-row
    /// upserts, `UPDATE … FROM (VALUES …)`): across chunk boundaries, rows written two and three
    /// times in the batch, a write that is not gathered in the middle, and hostile text.
    static func batchWrites() -> [StoreWrite] {
        var writes: [StoreWrite] = []
        var jobs: [String: JobRecord] = [:]
        for job in ["b1", "b2\(odd)"] {
            jobs[job] = JobRecord(id: job, workflowName: "wf", yaml: "name: wf", file: "w.yaml", state: .running, reason: "", planner: "seq:1",
                                  seed: 1, priority: 0, limitTokens: nil, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: 1,
                                  deadline: 1e12, startedAt: 2, endedAt: nil, minSuccess: nil)
            writes.append(.insertJob(jobs[job]!))
        }
        let names = Array(jobs.keys).sorted()
        func id(_ i: Int) -> AttemptID { AttemptID(job: names[i % 2], subtask: "s\(i)\(i % 5 == 0 ? odd : "")", n: 1) }
        func queued(_ i: Int) -> AttemptRecord {
            AttemptRecord(id: id(i), model: "m", state: .queued, tokenCap: 100 + i, reserved: Amount(tokens: i, usd: NanoUSD(Int64(i))),
                          deadline: 1e12, createdAt: WallInstant(secondsSince1970: 10 + Double(i)))
        }
        for i in 0..<70 {
            writes.append(.attempt(queued(i)))
            writes.append(.subtask(SubtaskRecord(job: names[i % 2], id: id(i).subtask, state: .ready)))
        }
        for i in stride(from: 0, to: 70, by: 2) { writes.append(.dispatched(id(i), worker: "w\(odd)", at: WallInstant(secondsSince1970: 20 + Double(i)), deadline: WallInstant(secondsSince1970: 30 + Double(i)))) }
        writes.append(.worker(WorkerRecord(name: "w\(odd)", host: "h", gpus: [0], model: "m", slots: 4, freeMemory: 1), state: .alive, lastSeen: 5))
        for i in 0..<33 {
            var a = queued(i)
            a.worker = "w\(odd)"
            a.state = i % 3 == 0 ? .failed : .succeeded
            a.tokensIn = i
            a.tokensOut = Int(Int32.max) + i
            a.usd = NanoUSD(Int64(i) * 1_000_000_000)
            a.dispatchedAt = WallInstant(secondsSince1970: 20 + Double(i))
            a.endedAt = WallInstant(secondsSince1970: 40 + Double(i))
            a.detail = "ended \(odd)"
            // Every other end as the narrow UPDATE (`attemptEnded`): PostgreSQL's casts and the row count.
            writes.append(i % 2 == 1 ? .attemptEnded(a) : .attempt(a))
            writes.append(.ledger(LedgerEntry(attempt: a.id, role: "agent", model: "m", tokensIn: i, tokensOut: 1, usd: NanoUSD(Int64(i)), kind: "charge", at: 40)))
            writes.append(.ledger(LedgerEntry(attempt: a.id, role: "corrector", model: "m", tokensIn: 0, tokensOut: i, usd: NanoUSD(1), kind: "charge", at: 40)))
            writes.append(.subtask(SubtaskRecord(job: names[i % 2], id: a.id.subtask, state: a.state == .succeeded ? .succeeded : .ready, model: "m",
                                                 attempts: 1, tokens: i, usd: NanoUSD(Int64(i)), output: a.state == .succeeded ? "out \(odd)" : nil)))
            if i % 8 == 7 {
                for name in names {
                    jobs[name]!.spentTokens += i
                    writes.append(.updateJob(jobs[name]!))
                }
            }
        }
        return writes
    }

    @Test func batchedRowsReadTheSameAsSQLite() throws {
        let pg = try Store(postgres: try PostgresTestCluster.get().database())
        let lite = try Store(path: ":memory:")
        let writes = Self.batchWrites()
        for store in [pg, lite] { try Self.commit(store, writes) }
        for job in ["b1", "b2\(Self.odd)"] {
            let (a, b) = (try Self.reads(pg, job: job), try Self.reads(lite, job: job))
            for (x, y) in zip(a, b) { #expect(x == y) }
        }
        #expect(try pg.attempts(of: "b1").count == 35)
        #expect(try pg.attempts(of: "b1").filter { $0.state == .dispatched }.count == 35 - 17)
        #expect(try pg.ledger(of: "b1").count == 34)
        #expect(try pg.job("b1")?.spentTokens == 7 + 15 + 23 + 31)
    }

    /// Batches that write rows twice, as a dispatch round does: an attempt upserted then
    /// dispatched (folded into one upsert row, also for rows that exist from an earlier
    /// transaction, whose deadline the dispatch changes), an end after its upsert or after its
    /// dispatch, a subtask and a job written twice (the later replaces the pending one).
    static func foldRounds() -> [[StoreWrite]] {
        let names = ["f1", "f2\(odd)"]
        var job = JobRecord(id: names[0], workflowName: "wf", yaml: "name: wf", file: "w.yaml", state: .queued, reason: odd, planner: "seq:1",
                            seed: 1, priority: 0, limitTokens: nil, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: 1,
                            deadline: 1e12, startedAt: nil, endedAt: nil, minSuccess: nil)
        var rounds: [[StoreWrite]] = [names.map { n in job.id = n; return .insertJob(job) }]
        func id(_ i: Int) -> AttemptID { AttemptID(job: names[i % 2], subtask: "s\(i)\(odd.prefix(i % 9))", n: i % 3 + 1) }
        func queued(_ i: Int, deadline: Double) -> AttemptRecord {
            AttemptRecord(id: id(i), model: "m", state: .queued, tokenCap: Int.max - i, reserved: Amount(tokens: i, usd: NanoUSD(Int64(i))),
                          deadline: WallInstant(secondsSince1970: deadline), createdAt: WallInstant(secondsSince1970: 10 + Double(i)), detail: odd)
        }
        // The even attempts' rows exist before the batches that fold.
        rounds.append(stride(from: 0, to: 40, by: 2).map { .attempt(queued($0, deadline: 1e12)) })
        for r in 0..<3 {
            var writes: [StoreWrite] = []
            for i in 0..<40 {
                var a = queued(i, deadline: 1e12 + Double(r))
                writes.append(.attempt(a))
                writes.append(.subtask(SubtaskRecord(job: a.id.job, id: a.id.subtask, state: .ready, model: odd, attempts: r)))
                writes.append(.subtask(SubtaskRecord(job: a.id.job, id: a.id.subtask, state: .running, model: nil, attempts: r + 1, output: odd)))
                if i % 4 != 3 {
                    writes.append(.dispatched(a.id, worker: "w\(i)\(odd)", at: WallInstant(secondsSince1970: 20 + Double(r)),
                                              deadline: WallInstant(secondsSince1970: 1e9 + Double(i * 10 + r))))
                    a.worker = "w\(i)\(odd)"
                    a.state = .dispatched
                }
                if i % 3 == r {
                    a.state = [.succeeded, .failed, .lost][r]
                    a.tokensIn = Int.max - r
                    a.usd = NanoUSD(Int64(i))
                    a.endedAt = WallInstant(secondsSince1970: 30 + Double(r))
                    a.detail = "end \(r) \(odd)"
                    writes.append(.attemptEnded(a))
                }
                writes.append(.ledger(LedgerEntry(attempt: a.id, role: "agent", model: "m", tokensIn: i, tokensOut: r, usd: NanoUSD(1), kind: "charge", at: 40)))
                job.id = names[i % 2]
                job.state = .running
                job.spentTokens = i * 100 + r
                writes.append(.updateJob(job))
            }
            rounds.append(writes)
        }
        return rounds
    }

    @Test func foldedBatchesReadTheSameAsOneWriteAtATime() throws {
        let batched = try Store(postgres: try PostgresTestCluster.get().database())
        let single = try Store(postgres: try PostgresTestCluster.get().database())
        let lite = try Store(path: ":memory:")
        for writes in Self.foldRounds() {
            for store in [batched, lite] { try Self.commit(store, writes) }
            try single.begin()
            for w in writes { try single.apply([w]) }
            try single.commit()
        }
        for job in ["f1", "f2\(Self.odd)"] {
            let (a, b, c) = (try Self.reads(batched, job: job), try Self.reads(single, job: job), try Self.reads(lite, job: job))
            #expect(a == b)
            #expect(a == c)
        }
        let attempts = try batched.attempts(of: "f1") + batched.attempts(of: "f2\(Self.odd)")
        #expect(attempts.count == 40)
        // Dispatched in the last batch and not ended: the dispatch's deadline, rows old and new alike.
        let open = attempts.filter { $0.state == .dispatched }
        #expect(open.count > 10)
        #expect(open.allSatisfy { a in
            let i = Int(a.id.subtask.dropFirst().prefix { $0.isNumber })!
            return a.deadline == WallInstant(secondsSince1970: 1e9 + Double(i * 10 + 2))
        })
    }

    /// The narrow UPDATE of an ended attempt never loses an end: one whose row is missing fails
    /// the whole batch (nothing of it is left, the ledger neither) instead of updating nothing, and
    /// says so with the same error on both stores — SQLite checks the statement's row count after
    /// it, PostgreSQL's statement checks its own on the server, so the COMMIT in the same pipeline
    /// rolls back; also when a read inside the transaction sends the writes before the COMMIT.
    @Test(arguments: [false, true], [false, true]) func anEndedAttemptWithoutItsRowFailsTheWholeBatch(postgres: Bool, withReads: Bool) throws {
        let store = postgres ? try Store(postgres: try PostgresTestCluster.get().database()) : try Store(path: ":memory:")
        let rows = (0..<20).map { i in
            AttemptRecord(id: AttemptID(job: "j", subtask: "s\(i)", n: 1), model: "m", state: .dispatched, tokenCap: 1, reserved: .zero, deadline: 1, createdAt: 1)
        }
        try Self.commit(store, rows.dropLast().map { .attempt($0) })
        var writes: [StoreWrite] = rows.map { a in
            var e = a
            e.state = .succeeded
            e.endedAt = 2
            e.detail = Self.odd
            return .attemptEnded(e)
        }
        writes.append(.ledger(LedgerEntry(attempt: rows[0].id, role: "agent", model: "m", tokensIn: 1, tokensOut: 1, usd: NanoUSD(1), kind: "charge", at: 2)))
        if withReads {
            writes.append(.transcript(rows[0].id, [TranscriptEntry(seq: 1, at: 2, event: .note("n"))], limits: TranscriptLimits(), at: 2))
        }
        // 20 ends go out as statements of 16 and 4 rows: the second finds 3 of its 4.
        let failed = #expect(throws: MissingRowsError.self) { try Self.commit(store, writes) }
        #expect(failed?.expected == 4 && failed?.changed == 3, "\(String(describing: failed))")
        #expect(try store.attempts(of: "j").allSatisfy { $0.state == .dispatched })
        #expect(try store.ledger(of: "j").isEmpty)
        #expect(try store.transcriptTotal() == 0)
        // Alone in its batch too (the one-row statement), and the connection is usable after.
        let alone = #expect(throws: MissingRowsError.self) { try Self.commit(store, [writes[19]]) }
        #expect(alone?.expected == 1 && alone?.changed == 0)
        writes.remove(at: 19)
        try Self.commit(store, writes)
        #expect(try store.attempts(of: "j").filter { $0.state == .succeeded && $0.detail == Self.odd }.count == 19)
        #expect(try store.ledger(of: "j").count == 1)
    }

    @Test func theSchemaHasSQLitesTablesAndColumns() throws {
        let pg = try Store(postgres: try PostgresTestCluster.get().database())
        let lite = try Store(path: ":memory:")
        #expect(PostgresSchema.migrations.count == Store.latestSchemaVersion)
        #expect(pg.schemaVersion == Store.latestSchemaVersion)
        let tables = try lite.connection.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map { $0.string(0) }
        #expect(tables.count >= 10)
        for table in tables {
            let liteColumns = try lite.connection.query("SELECT name FROM pragma_table_info(?) ORDER BY name", table).map { $0.string(0) }
            let pgColumns = try pg.connection.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ? AND column_name != 'rowid' ORDER BY column_name",
                table).map { $0.string(0) }
            #expect(pgColumns == liteColumns, "table \(table)")
        }
        let names = try pg.connection.query("SELECT name FROM schema_migrations ORDER BY version").map { $0.string(0) }
        #expect(names == PostgresSchema.migrations.map(\.name))
    }

    @Test func coordinatorsStartingTogetherMigrateOnce() throws {
        let url = try PostgresTestCluster.get().database()
        let errors = CoordinatorFailoverTests.Acknowledged()
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            do { _ = try Store(postgres: url) } catch { errors.append("\(error)") }
        }
        #expect(errors.ids == [])
        let store = try Store(postgres: url)
        #expect(try store.connection.query("SELECT COUNT(*) FROM schema_migrations").first?.int(0) == PostgresSchema.migrations.count)
    }

    @Test func theLedgerIsAppendOnlyInTheDatabase() throws {
        let store = try Store(postgres: try PostgresTestCluster.get().database())
        try Self.commit(store, Self.writes())
        for sql in ["UPDATE ledger SET tokens_out = 0", "DELETE FROM ledger", "TRUNCATE ledger"] {
            #expect(throws: PostgresError.self, "\(sql)") { try store.connection.execute(sql) }
        }
        #expect(try store.ledger(of: "j1").count == 2)
    }

    /// Both ways a commit goes out: one pipeline (no reads in the transaction), and an explicit
    /// transaction whose reads (transcripts') sent the writes before them.
    @Test(arguments: [false, true]) func aCommitIsAllOrNothing(withReads: Bool) throws {
        let store = try Store(postgres: try PostgresTestCluster.get().database())
        var writes = Self.writes().filter { w in
            if case .transcript = w { return withReads }
            return true
        }
        // The last write breaks a constraint.
        writes.append(.insertJob(JobRecord(id: "j1", workflowName: "wf", yaml: "", file: "", state: .queued, reason: "", planner: "", seed: 0,
                                           priority: 0, limitTokens: nil, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: 0,
                                           deadline: 0, startedAt: nil, endedAt: nil, minSuccess: nil)))
        try store.connection.execute("ALTER TABLE jobs ADD CONSTRAINT no_queued CHECK (state != 'queued' OR id != 'j1')")
        #expect(throws: PostgresError.self) { try Self.commit(store, writes) }
        #expect(try store.job("j1") == nil)
        #expect(try store.ledger(of: "j1").isEmpty)
        #expect(try store.transcriptTotal() == 0)
        // The connection is usable again after the rollback.
        try Self.commit(store, Array(writes.dropLast()))
        #expect(try store.ledger(of: "j1").count == 2)
    }

    /// A loop iteration's writes — many rows over several tables, and the lease's extension
    /// first — cost one round trip and one commit (what `bench dispatch` counts); a read in the
    /// transaction (transcripts check their totals) costs round trips of its own, still one commit.
    @Test func anIterationsWritesAreOneRoundTripAndOneCommit() throws {
        let store = try Store(postgres: try PostgresTestCluster.get().database())
        let db = store.postgres!
        #expect(try db.acquireLease(holder: "me", workers: "", clients: "", for: .seconds(5)))
        var writes: [StoreWrite] = []
        for j in 0..<20 {
            writes += Self.writes(job: "j\(j)").filter { w in
                if case .transcript = w { return false }
                return true
            }
        }
        let (trips, commits) = (db.roundTrips, db.commits)
        try Self.commit(store, writes)
        #expect(db.roundTrips - trips == 1)
        #expect(db.commits - commits == 1)
        #expect(try store.ledger(of: "j19").count == 2)
        let before = db.roundTrips
        try Self.commit(store, Self.writes(job: "t"))
        #expect(db.roundTrips - before > 1)
        #expect(db.commits - commits == 2)
        #expect(db.transactionWait > .zero)
    }

    @Test func aURLWithAPasswordIsRefused() throws {
        let port = try PostgresTestCluster.get().port
        for url in ["postgres://agentflow:secret@127.0.0.1:\(port)/agentflow",
                    "postgres://agentflow:secret@127.0.0.1:\(port),127.0.0.2:\(port)/agentflow?target_session_attrs=read-write",
                    "postgresql://agentflow@127.0.0.1:\(port)/agentflow?sslmode=disable&password=secret"] {
            #expect {
                _ = try Store(database: url)
            } throws: { error in
                "\(error)".contains("holds a password") && !"\(error)".contains("secret")
            }
        }
        #expect(PostgresConnection.redacted("postgres://u:secret@a:1,b:2/db") == "postgres://u:…@a:1,b:2/db")
    }

    /// Two coordinators: the first leads; the second cannot take the lease until it expires by
    /// the database's clock; then the first one's next commit fails whole (LeaseLostError)
    /// and none of its writes are there.
    @Test func aTakenOverLeaderCommitsNothing() throws {
        let url = try PostgresTestCluster.get().database()
        let a = try Store(postgres: url, lease: .seconds(1))
        let b = try Store(postgres: url, lease: .seconds(1))
        #expect(try a.postgres!.acquireLease(holder: "a", workers: "tcp://a:5555", clients: "tcp://a:5556", for: .seconds(1)))
        #expect(try !b.postgres!.acquireLease(holder: "b", workers: "", clients: "", for: .seconds(1)))
        #expect(try b.postgres!.leaseHolder().holder == "a")
        #expect(try b.postgres!.leaseHolder().workers == "tcp://a:5555")
        try Self.commit(a, Self.writes(job: "before"))
        let epochA = a.postgres!.lease!.epoch
        // a stops committing (frozen); b takes over once the lease ran out.
        let start = Date()
        while try !b.postgres!.acquireLease(holder: "b", workers: "", clients: "", for: .seconds(1)) {
            #expect(Date().timeIntervalSince(start) < 5)
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(Date().timeIntervalSince(start) > 0.5)
        #expect(b.postgres!.lease!.epoch == epochA + 1)
        try Self.commit(b, Self.writes(job: "after"))
        #expect {
            try Self.commit(a, Self.writes(job: "stale"))
        } throws: { error in
            (error as? LeaseLostError)?.epoch == epochA
        }
        #expect(try b.job("stale") == nil)
        #expect(try b.ledger(of: "stale").isEmpty)
        #expect(try b.job("before") != nil && b.job("after") != nil)
        // An idle leader keeps its lease by itself.
        Thread.sleep(forTimeInterval: 1.2)
        try b.postgres!.renewLeaseIfDue()
        #expect(try !a.postgres!.acquireLease(holder: "a", workers: "", clients: "", for: .seconds(1)))
        // A graceful stop hands it over at once.
        b.postgres!.releaseLease()
        #expect(try a.postgres!.acquireLease(holder: "a", workers: "", clients: "", for: .seconds(1)))
    }
}
