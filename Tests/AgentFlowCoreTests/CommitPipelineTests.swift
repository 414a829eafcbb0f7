import AgentFlowCore
import Coordinator
import Foundation
import Store
import Testing
import Wire

/// The socket loop's commit-then-send with the commit on a writer thread (CommitPipeline.swift):
/// nothing of a batch leaves before its rows are committed, batches leave in the order they were
/// decided, and a failed commit releases nothing of it or of anything decided after it.
@Suite struct CommitPipelineTests {
    /// Drives the pipeline as the loop does until no commit is in flight; returns what it sent.
    static func settle(_ pipeline: CommitPipeline, _ h: CoreHarness, send: (Outgoing) -> Void) throws {
        _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        while pipeline.isCommitting {
            var p = pollfd(fd: pipeline.wake.readFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, 1000)
            pipeline.wake.drain()
            _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        }
    }

    /// Registers worker w0 (4 slots, identity `w0#1`) and settles its batch.
    static func registerWorker(_ pipeline: CommitPipeline, _ h: CoreHarness, send: (Outgoing) -> Void) throws {
        h.shell.handle(.worker(.register(info: CoreHarness.info("w0", slots: 4), running: [], finished: []), from: Data("w0#1".utf8)),
                       at: CoreTime(h.clock))
        try settle(pipeline, h, send: send)
    }

    /// Advances the pipeline as the loop does (every 5 ms, for up to 2 s) until a call throws:
    /// true when one did.
    static func advanceUntilItFails(_ pipeline: CommitPipeline, _ h: CoreHarness, send: (Outgoing) -> Void) -> Bool {
        for _ in 0..<400 {
            do { _ = try pipeline.advance(at: CoreTime(h.clock), send: send) } catch { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    @Test func everyMessageLeavesAfterItsRowsAreCommittedAndInTheOrderDecided() throws {
        // One dispatch per slot (the counts below), as without prefetch.
        let h = try CoreHarness(prefetch: 0)
        let pipeline = CommitPipeline(shell: h.shell)
        let reader = try h.store.reader()
        var sent: [Outgoing] = []
        var violations: [String] = []
        // At each send, a read connection must already see the rows the message speaks of.
        let send: (Outgoing) -> Void = { m in
            sent.append(m)
            switch m {
            case .toClient(_, .submitted(let job)):
                if (try? reader.job(job)) == nil { violations.append("reply for \(job) before its row") }
            case .toWorker(_, .dispatch(let spec)):
                let row = (try? reader.attempts(of: spec.id.job))?.first { $0.id == spec.id }
                if row?.state != .dispatched { violations.append("dispatch \(spec.id) sent while its row is \(String(describing: row?.state))") }
            default: break
            }
        }
        try Self.registerWorker(pipeline, h, send: send)
        // Submissions arrive while earlier batches are still committing: each iteration hands
        // one more to the core before advancing, as the loop does with whatever arrived.
        for i in 0..<12 {
            guard case .submission(var p) = h.submission(oneTask) else { preconditionFailure() }
            p.route = [Data("client\(i)".utf8)]
            h.shell.handle(.submission(p), at: CoreTime(h.clock))
            _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        }
        try Self.settle(pipeline, h, send: send)
        let replies = sent.compactMap { m -> (String, String)? in
            if case .toClient(let route, .submitted(let job)) = m { return (String(decoding: route[0], as: UTF8.self), job) } else { return nil }
        }
        // The replies left in the order the submissions were decided, each job stored.
        #expect(replies.map(\.0) == (0..<12).map { "client\($0)" })
        #expect(Set(replies.map(\.1)) == Set(try h.store.recentJobs(limit: 100).map(\.id)))
        #expect(CoreHarness.dispatches(sent).count == 4)
        #expect(violations.isEmpty, "\(violations)")
    }

    /// The writer thread lets go of the store before it posts a batch's outcome, so the store
    /// (and its file's lock) goes with the pipeline, at once: a coordinator restarted on the same
    /// file right after never finds the database still held by the writer of the one before.
    @Test func theStoreGoesWithItsPipelineAndItsFileCanBeOpenedAgainAtOnce() throws {
        let h = try CoreHarness(prefetch: 0)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pipeline-\(UUID().uuidString).db").path
        defer { for suffix in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        for round in 0..<20 {
            weak var released: Store?
            do {
                let store = try Store(path: path)
                released = store
                let shell = try CoreHarness.start(h.cluster, store, h.clock)
                let pipeline = CommitPipeline(shell: shell)
                shell.handle(.worker(.register(info: CoreHarness.info("w\(round)", slots: 2), running: [], finished: []), from: Data("w\(round)#1".utf8)),
                             at: CoreTime(h.clock))
                try Self.settle(pipeline, h, send: { _ in })
                #expect(pipeline.commits >= 1, "round \(round): nothing was committed on the writer")
            }
            #expect(released == nil, "round \(round): the store outlived its pipeline")
        }
        // Every round's worker row was committed, and the file opens again.
        let reopened = try Store(path: path)
        #expect(try reopened.workers().count == 20)
    }

    /// The socket loop's form: worker messages encoded while their batch commits (`WorkerFrames`)
    /// and, for a batch that sends only to workers, its live views and notes published at the end
    /// of `advance`. Each frame leaves after its rows are committed and decodes to what the batch
    /// decided; client replies still go through `send`; by the time `advance` returns the board
    /// shows what the dispatch-only batch changed (the first attempt's charge).
    @Test func framesEncodedWhileTheirBatchCommitsLeaveAfterItAndItsViewsArePublishedByTheEndOfAdvance() throws {
        let h = try CoreHarness(prefetch: 0)
        let codec = WireCodec()
        let reader = try h.store.reader()
        var framed: [(to: String, message: CoordinatorMessage)] = []
        var violations: [String] = []
        let frames = CommitPipeline.WorkerFrames(encode: { codec.encode($0) }, send: { identity, frame in
            guard let m = try? codec.decode(CoordinatorMessage.self, from: frame) else {
                violations.append("a frame that does not decode")
                return
            }
            if case .dispatch(let spec) = m {
                let row = (try? reader.attempts(of: spec.id.job))?.first { $0.id == spec.id }
                if row?.state != .dispatched { violations.append("dispatch \(spec.id) sent while its row is \(String(describing: row?.state))") }
            }
            framed.append((String(decoding: identity, as: UTF8.self), m))
        })
        let pipeline = CommitPipeline(shell: h.shell, workerFrames: frames)
        var sent: [Outgoing] = []
        let send: (Outgoing) -> Void = { sent.append($0) }
        // One slot, two subtasks: the second is dispatched by a batch that sends only to the worker.
        h.shell.handle(.worker(.register(info: CoreHarness.info("w0", slots: 1), running: [], finished: []), from: Data("w0#1".utf8)),
                       at: CoreTime(h.clock))
        try Self.settle(pipeline, h, send: send)
        h.shell.handle(h.submission(oneTask + "  - {id: b, prompt: y, estimates: {m-small: {success: 1, tokens: 100, seconds: 5}}}\n"),
                       at: CoreTime(h.clock))
        try Self.settle(pipeline, h, send: send)
        let job = try #require(CoreHarness.submitted(sent))
        func dispatched() -> [(to: String, spec: AttemptSpec)] {
            framed.compactMap { if case .dispatch(let spec) = $0.message { ($0.to, spec) } else { nil } }
        }
        let first = try #require(dispatched().first)
        #expect(first.to == "w0#1")
        #expect(h.shell.board.view(job)?.budget.spentTokens == 0)
        let report = AttemptReport(id: first.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 60, output: 40)]))
        let before = sent.count
        h.shell.handle(.worker(.result(report), from: Data("w0#1".utf8)), at: CoreTime(h.clock))
        try Self.settle(pipeline, h, send: send)
        #expect(dispatched().count == 2)
        #expect(framed.contains { if case .ack(let ids) = $0.message { ids == [first.spec.id] } else { false } })
        // Nothing of that batch went through `send`: it was all frames.
        #expect(sent.count == before)
        #expect(CoreHarness.dispatches(sent).isEmpty)
        #expect(h.shell.board.view(job)?.budget.spentTokens == 100)
        #expect(!h.shell.hasDeferred)
        #expect(violations.isEmpty, "\(violations)")
    }

    @Test func aFailedCommitReleasesNothingOfItOrOfWhatCameAfter() throws {
        let h = try CoreHarness()
        let pipeline = CommitPipeline(shell: h.shell)
        var sent: [Outgoing] = []
        let send: (Outgoing) -> Void = { sent.append($0) }
        try Self.registerWorker(pipeline, h, send: send)
        let first = try #require(CoreHarness.submitted(try {
            h.shell.handle(h.submission(oneTask), at: CoreTime(h.clock))
            try Self.settle(pipeline, h, send: send)
            return sent
        }()))
        let before = sent.count
        // The disk refuses from now on: the next batch's job row cannot be written.
        try h.store.connection.execute("CREATE TRIGGER refuse BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'disk refused'); END;")
        h.shell.handle(h.submission(oneTask), at: CoreTime(h.clock))
        _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        #expect(pipeline.isCommitting)
        // Decided while the failing batch commits: a result for the first job's attempt.
        let d = try #require(CoreHarness.dispatches(sent).first)
        let report = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 10, output: 10)], output: "ok"))
        h.shell.handle(.worker(.result(report), from: Data("w0#1".utf8)), at: CoreTime(h.clock))
        #expect(Self.advanceUntilItFails(pipeline, h, send: send))
        // Nothing of the failed batch nor of the one after it left: no reply, no acknowledgement.
        #expect(sent.count == before, "\(sent[before...])")
        // Later calls keep failing, at stop too.
        #expect(throws: (any Error).self) { _ = try pipeline.advance(at: CoreTime(h.clock), send: send) }
        #expect(throws: (any Error).self) { _ = try pipeline.flush(at: CoreTime(h.clock), send: send) }
        #expect(sent.count == before)
        // The store holds the first job only, and its attempt as dispatched (the result was never committed).
        #expect(try h.store.recentJobs(limit: 10).map(\.id) == [first])
        #expect(try h.store.attempts(of: first).map(\.state) == [.dispatched])
    }

    /// Group commit: after a batch that dispatched, the next is decided once its results are
    /// back or the linger is over, whichever is first — and nothing waits while nothing was sent.
    @Test func theNextBatchWaitsForTheResultsOfTheOneThatLeftOrTheLingersEnd() throws {
        let h = try CoreHarness()
        let pipeline = CommitPipeline(shell: h.shell, linger: .seconds(5))
        var sent: [Outgoing] = []
        let send: (Outgoing) -> Void = { sent.append($0) }
        func submittedCount() -> Int { sent.filter { if case .toClient(_, .submitted) = $0 { true } else { false } }.count }
        h.shell.handle(.worker(.register(info: CoreHarness.info("w0", slots: 4), running: [], finished: []), from: Data("w0#1".utf8)),
                       at: CoreTime(h.clock))
        // Nothing dispatched yet: no linger.
        try Self.settle(pipeline, h, send: send)
        #expect(pipeline.decideBy == nil)
        h.shell.handle(h.submission(oneTask), at: CoreTime(h.clock))
        try Self.settle(pipeline, h, send: send)
        let d = try #require(CoreHarness.dispatches(sent).first)
        #expect(submittedCount() == 1)
        let until = try #require(pipeline.decideBy)
        // Another submission arrives while the dispatch's result is awaited: it waits.
        h.shell.handle(h.submission(oneTask), at: CoreTime(h.clock))
        _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        #expect(!pipeline.isCommitting && submittedCount() == 1)
        // The result comes back: the next batch is decided at once, with both.
        let report = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 10, output: 10)], output: "ok"))
        h.shell.handle(.worker(.result(report), from: Data("w0#1".utf8)), at: CoreTime(h.clock))
        try Self.settle(pipeline, h, send: send)
        #expect(submittedCount() == 2)
        #expect(sent.contains { if case .toWorker(_, .ack(let ids)) = $0 { ids == [d.spec.id] } else { false } })
        #expect(CoreHarness.dispatches(sent).count == 2)
        // That batch dispatched too; no result comes back this time: the linger's end decides.
        let second = try #require(pipeline.decideBy)
        #expect(second >= until)
        h.shell.handle(h.submission(oneTask), at: CoreTime(h.clock))
        _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        #expect(submittedCount() == 2)
        h.clock.advance(6)
        try Self.settle(pipeline, h, send: send)
        #expect(submittedCount() == 3)
    }

    /// A COMMIT that fails (here a deferred foreign key, checked only there; in production a
    /// full disk or an I/O error) is rolled back: the batch's rows are not left in an open
    /// transaction for the connection's later reads and writes, and nothing of it leaves.
    @Test func aCommitThatFailsIsRolledBackAndReleasesNothing() throws {
        let h = try CoreHarness(prefetch: 0)
        let pipeline = CommitPipeline(shell: h.shell)
        var sent: [Outgoing] = []
        let send: (Outgoing) -> Void = { sent.append($0) }
        try Self.registerWorker(pipeline, h, send: send)
        let before = sent.count
        // The job row's batch applies, and its COMMIT fails.
        try h.store.connection.execute("""
            CREATE TABLE refusal_parent (id INTEGER PRIMARY KEY);
            CREATE TABLE refusal_child (p INTEGER REFERENCES refusal_parent(id) DEFERRABLE INITIALLY DEFERRED);
            CREATE TRIGGER refuse_at_commit AFTER INSERT ON jobs BEGIN INSERT INTO refusal_child VALUES (42); END;
            """)
        h.shell.handle(h.submission(oneTask), at: CoreTime(h.clock))
        _ = try pipeline.advance(at: CoreTime(h.clock), send: send)
        #expect(Self.advanceUntilItFails(pipeline, h, send: send))
        #expect(sent.count == before, "\(sent[before...])")
        #expect(throws: (any Error).self) { _ = try pipeline.flush(at: CoreTime(h.clock), send: send) }
        // Rolled back: the store's own connection no longer sees the job, and takes a new
        // transaction (a COMMIT that failed left one open before: BEGIN then failed).
        #expect(try h.store.recentJobs(limit: 10).isEmpty)
        try h.store.connection.execute("DROP TRIGGER refuse_at_commit;")
        try h.store.applyAndCommit([])
    }
}
