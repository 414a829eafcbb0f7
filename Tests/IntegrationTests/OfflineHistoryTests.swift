import Foundation
import Store
import Testing

/// Reading ended jobs with no coordinator (DESIGN §5, issue 20 item 6): `status`, `jobs`,
/// `attempts`, `ledger` and `report` read the database read-only when no coordinator listens,
/// or with `--database F`; `run --report FILE` writes the HTML report.
@Suite struct OfflineHistoryTests {
    func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test func endedJobReadsBackWithNoCoordinator() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 2), ("gpu1", "gemma3-270m", 2)], timeScale: 0.01)
        let html = c.dir.appendingPathComponent("run-report.html").path
        // Embedded mode: the job runs and the process leaves no coordinator behind.
        let run = try c.cli(["run", "workflows/diamond.yaml", "--planner", "seq:2", "--json", "--report", html], timeout: 120)
        #expect(run.code == 0, "\(run.err)")
        let job = try #require(try json(run.out) as? [String: Any])
        let id = try #require(job["id"] as? String)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains(id) && page.lowercased().hasPrefix("<!doctype html"), "the report is a page about the job")
        #expect(run.err.contains("wrote the report \(html)"), "\(run.err)")

        // No coordinator listens: each read says it reads the database, and answers what run saw.
        let status = try c.cli(["status", id, "--json"], timeout: 30)
        #expect(status.code == 0, "\(status.err)")
        #expect(status.err.contains("reading the database \(c.database)"), "\(status.err)")
        let stored = try #require(try json(status.out) as? [String: Any])
        #expect(stored["state"] as? String == job["state"] as? String)
        #expect((stored["budget"] as? [String: Any])?["spentTokens"] as? Int == (job["budget"] as? [String: Any])?["spentTokens"] as? Int)
        let storedSubtasks = try #require(stored["subtasks"] as? [[String: Any]])
        let runSubtasks = try #require(job["subtasks"] as? [[String: Any]])
        #expect(storedSubtasks.map { $0["id"] as? String } == runSubtasks.map { $0["id"] as? String })
        #expect(storedSubtasks.map { $0["attempts"] as? Int } == runSubtasks.map { $0["attempts"] as? Int })
        #expect(storedSubtasks.map { $0["note"] as? String } == runSubtasks.map { $0["note"] as? String })
        #expect(storedSubtasks.contains { !(($0["needs"] as? [String]) ?? []).isEmpty }, "the DAG's edges come back from the stored workflow")

        let attempts = try c.cli(["attempts", id, "--json"], timeout: 30)
        #expect(attempts.code == 0, "\(attempts.err)")
        let rows = try #require(try json(attempts.out) as? [[String: Any]])
        #expect(rows.count == runSubtasks.reduce(0) { $0 + (($1["attempts"] as? Int) ?? 0) })
        #expect(rows.allSatisfy { ($0["id"] as? String)?.hasPrefix(id + "/") == true && $0["worker"] is String })

        let ledger = try c.cli(["ledger", id, "--json"], timeout: 30)
        #expect(ledger.code == 0, "\(ledger.err)")
        let lines = try #require(try json(ledger.out) as? [[String: Any]])
        let ledgerTokens = lines.reduce(0) { $0 + (($1["tokensIn"] as? Int) ?? 0) + (($1["tokensOut"] as? Int) ?? 0) }
        #expect(ledgerTokens == (job["budget"] as? [String: Any])?["spentTokens"] as? Int)

        let jobs = try c.cli(["jobs", "--json"], timeout: 30)
        #expect(jobs.code == 0 && ((try? json(jobs.out)) as? [[String: Any]])?.contains { $0["id"] as? String == id } == true, "\(jobs.err)")
        let text = try c.cli(["report", id], timeout: 30)
        #expect(text.code == 0 && text.out.contains("job \(id)"), "\(text.err)")
        let html2 = c.dir.appendingPathComponent("offline-report.html").path
        let report = try c.cli(["report", id, "--html", html2], timeout: 30)
        #expect(report.code == 0, "\(report.err)")
        #expect((try? String(contentsOfFile: html2, encoding: .utf8))?.contains(id) == true)

        // An unknown job in the database is bad input, named.
        let unknown = try c.cli(["attempts", "j-nosuchjob"], timeout: 30)
        #expect(unknown.code == 2 && unknown.err.contains("no job") && unknown.err.contains("j-nosuchjob"), "\(unknown.err)")
        // No coordinator and no database: exit 3, saying both.
        let elsewhere = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 0.01)
        let none = try elsewhere.cli(["status", id], timeout: 30)
        #expect(none.code == 3 && none.err.contains("no database at"), "\(none.err)")
        // `--database` reads a named file from anywhere, with any cluster file.
        let named = try elsewhere.cli(["status", id, "--json", "--database", c.database], timeout: 30)
        #expect(named.code == 0 && ((try? json(named.out)) as? [String: Any])?["id"] as? String == id, "\(named.err)")
    }

    /// A read-only reader beside a live coordinator: it takes no lock, sees committed state while
    /// a job runs, and the coordinator goes on writing.
    @Test func readsBesideALiveCoordinator() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 4), ("gpu1", "gemma3-270m", 4)], timeScale: 0.02)
        try c.startAll()
        defer { c.stop() }
        let submitted = try c.cli(["submit", "workflows/big-dag.yaml", "--planner", "seq:1"], timeout: 30)
        #expect(submitted.code == 0, "\(submitted.err)")
        let id = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        var reads = 0
        var sawRunning = false
        var ended = false
        let end = Date().addingTimeInterval(90)
        while !ended && Date() < end {
            let r = try c.cli(["status", id, "--json", "--database", c.database], timeout: 30)
            #expect(r.code == 0, "read \(reads): \(r.err)")
            let state = ((try? json(r.out)) as? [String: Any])?["state"] as? String
            sawRunning = sawRunning || state == "running"
            ended = state != nil && state != "running" && state != "queued"
            let a = try c.cli(["attempts", id, "--json", "--database", c.database], timeout: 30)
            #expect(a.code == 0, "\(a.err)")
            reads += 1
        }
        #expect(ended, "the job ended while being read: \(c.logs.suffix(2000))")
        #expect(sawRunning, "a read saw the job running")
        // What the coordinator says and what the file says agree once the job has ended.
        Thread.sleep(forTimeInterval: 1)
        let live = try c.cli(["attempts", id, "--json"], timeout: 30)
        let file = try c.cli(["attempts", id, "--json", "--database", c.database], timeout: 30)
        #expect(live.code == 0 && file.code == 0)
        #expect(live.out == file.out, "coordinator and database disagree")
        // The coordinator still owns and writes its database.
        let second = try c.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1", "--wait", "--json"], timeout: 90)
        #expect(second.code == 0, "\(second.err)")
    }

    /// Bad `--database` values: a clear message and exit 2, and the file is never changed.
    @Test func badDatabases() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-baddb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

        let missing = try agentflow(["jobs", "--database", path("missing.db")], timeout: 30)
        #expect(missing.code == 2 && missing.err.contains("no such file"), "\(missing.err)")
        #expect(!FileManager.default.fileExists(atPath: path("missing.db")), "a read must not create the database")

        try Data("this is not a database\n".utf8).write(to: URL(fileURLWithPath: path("text.db")))
        let text = try agentflow(["status", "j-x", "--database", path("text.db")], timeout: 30)
        #expect(text.code == 2 && text.err.contains("not an AgentFlow database"), "\(text.err)")
        #expect(try String(contentsOfFile: path("text.db"), encoding: .utf8) == "this is not a database\n")

        _ = try SQLiteConnection(path: path("empty.db"))
        let empty = try agentflow(["attempts", "j-x", "--database", path("empty.db")], timeout: 30)
        #expect(empty.code == 2 && empty.err.contains("not an AgentFlow database"), "\(empty.err)")

        // A database from a newer agentflow: refused with both versions, not misread.
        do {
            let store = try Store(path: path("future.db"))
            try (store.connection as! SQLiteConnection).setUserVersion(Store.latestSchemaVersion + 7)
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: path("future.db")))
        let future = try agentflow(["ledger", "j-x", "--database", path("future.db")], timeout: 30)
        #expect(future.code == 2 && future.err.contains("newer"), "\(future.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path("future.db"))) == before)

        // Hostile job ids are answered as unknown, never crash or inject.
        let ok = try Store(path: path("ok.db"))
        _ = ok
        for id in ["j-x' OR '1'='1", String(repeating: "j", count: 5000), "j-\u{1}\u{7f}", "../../etc/passwd"] {
            let r = try agentflow(["attempts", id, "--database", path("ok.db")], timeout: 30)
            #expect(r.code == 2 && r.err.contains("no job"), "\(id.prefix(40)): \(r.err.prefix(300))")
        }
    }
}
