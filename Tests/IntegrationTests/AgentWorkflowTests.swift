import AgentFlowCore
import Foundation
import TestSupport
import Store
import Synchronization
import Testing

/// The scripted stand-in model (`tools/standin_model.py`), started for one test.
final class StandinModel: @unchecked Sendable {
    let process = Process()
    let stdin = Pipe()
    let port: Int

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Paths.root.appendingPathComponent("tools/standin_model.py").path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = stdin
        try launch(process)
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let p = Int(text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw WaitTimeout(what: "the stand-in model's port (got '\(text)')")
        }
        port = p
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }
}

/// A coordinator process and two worker processes whose backend is the stand-in model (under
/// the cluster's model names), in a temporary directory with a real SQLite file.
final class StandinCluster: @unchecked Sendable {
    let model: StandinModel
    let dir: URL
    let clusterFile: String
    let database: String
    var coordinator: Proc?
    var workers: [Proc] = []

    /// The HTTP API's base URL, when started with `http: true`.
    var http: String?

    init(slots: Int = 2, http withHTTP: Bool = false) throws {
        model = try StandinModel()
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        clusterFile = dir.appendingPathComponent("cluster.yaml").path
        database = dir.appendingPathComponent("agentflow.db").path
        let url = "http://127.0.0.1:\(model.port)/v1"
        try """
        coordinator: {workers: "tcp://127.0.0.1:\(freePort())", clients: "tcp://127.0.0.1:\(freePort())", database: "\(database)", heartbeat: 1s}
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}
          - {name: gemma3-270m, price: {input: 0.04, output: 0.10}, context: 8192}
        workers:
          - {name: s0, gpus: [], model: smollm2-135m, slots: \(slots), backend: {kind: openai, url: "\(url)"}}
          - {name: g0, gpus: [], model: gemma3-270m, slots: \(slots), backend: {kind: openai, url: "\(url)"}}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let httpPort = freePort()
        coordinator = try Proc(["coordinator", "--cluster", clusterFile] + (withHTTP ? ["--http", "127.0.0.1:\(httpPort)"] : []),
                               log: dir.appendingPathComponent("coordinator.log").path)
        if withHTTP { http = "http://127.0.0.1:\(httpPort)" }
        for name in ["s0", "g0"] {
            // Workers keep their workspaces and calibration under their own directory.
            workers.append(try Proc(["worker", "--name", name, "--cluster", clusterFile, "--verbose"],
                                    log: dir.appendingPathComponent("\(name).log").path, cwd: dir))
        }
        try waitUntil(timeout: 20, "both workers registered") {
            let r = try self.cli(["workers", "--json"], timeout: 10)
            let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [[String: Any]] ?? []
            return list.filter { $0["state"] as? String == "alive" }.count == 2
        }
    }

    func cli(_ args: [String], timeout: Double = 120) throws -> (code: Int32, out: String, err: String) {
        try agentflow(args + ["--cluster", clusterFile], timeout: timeout)
    }

    /// `submit WF --wait --json` with extra flags; the job's report.
    func run(_ workflow: String, _ flags: [String] = [], timeout: Double = 120) throws -> (code: Int32, job: [String: Any], err: String) {
        let r = try cli(["submit", workflow, "--wait", "--json"] + flags, timeout: timeout)
        let job = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:]
        return (r.code, job, r.err + "\n" + logs)
    }

    var logs: String {
        ([coordinator].compactMap { $0 } + workers).map { $0.output.suffix(4000) }.joined(separator: "\n---\n")
    }

    deinit {
        for w in workers { w.terminate() }
        coordinator?.terminate()
        for w in workers where w.wait(timeout: 5) == nil { w.kill9() }
        if let c = coordinator, c.wait(timeout: 5) == nil { c.kill9() }
        try? FileManager.default.removeItem(at: dir)
    }
}

func subtasks(_ job: [String: Any]) -> [String: [String: Any]] {
    Dictionary(uniqueKeysWithValues: (job["subtasks"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "", $0) })
}

/// A text field of one subtask of a job report ("" when missing or null).
func text(_ job: [String: Any], _ subtask: String, _ key: String) -> String {
    subtasks(job)[subtask]?[key] as? String ?? ""
}

/// The three example workflows of `workflows/`, and the failure paths of each kind, through a
/// real coordinator process, real worker processes, real ZeroMQ and SQLite, and the scripted
/// stand-in model: inputs packed by the CLI and carried to the workers, fenced blocks acted on
/// in the real sandbox, schemas and verifiers checked, every token charged.
@Suite(.serialized) struct AgentWorkflowTests {
    @Test func fixFailingTestEditsTheBundledRepository() throws {
        let c = try StandinCluster()
        let r = try c.run("workflows/fix-failing-test.yaml")
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        let fix = try #require(subtasks(r.job)["fix"], "\(r.err)")
        #expect(fix["state"] as? String == "succeeded", "\(fix)")
        // The kept files are the globbed module files (the fixed one among them).
        #expect(fix["output"] as? String == "calc/__init__.py\ncalc/stats.py", "\(fix)")
        #expect(text(r.job, "fix", "note").contains("verified on turn 2"), "\(fix)")
        // The kept files, as a user takes them away.
        let id = r.job["id"] as? String ?? ""
        let out = c.dir.appendingPathComponent("out")
        let taken = try c.cli(["outputs", id, "--dir", out.path])
        #expect(taken.code == 0, "\(taken.err)")
        let fixed = try String(contentsOf: out.appendingPathComponent("fix/calc/stats.py"), encoding: .utf8)
        #expect(fixed.contains("return sum(values) / len(values)") && !fixed.contains("len(values) - 1"), "\(fixed)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("fix/calc/__init__.py").path))
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("fix/tests").path))
        // status --json lists them with their sizes and hashes.
        let listed = (subtasks(r.job)["fix"]?["outputs"] as? [[String: Any]] ?? []).compactMap { $0["path"] as? String }
        #expect(listed == ["calc/__init__.py", "calc/stats.py"], "\(r.job)")
        // The repository on this disk is untouched: the worker had its own copy.
        let original = try String(contentsOf: Paths.root.appendingPathComponent("workflows/examples/calc/calc/stats.py"), encoding: .utf8)
        #expect(original.contains("len(values) - 1"))
        let check = try LedgerCheck(database: c.database, job: r.job["id"] as? String ?? "")
        #expect(check.consistent && check.ledgerTokens > 0, "\(check)")
    }

    @Test func extractRecordsFansOutOverTheDocumentsWithParameters() throws {
        let c = try StandinCluster()
        // Two documents instead of the workflow's three, in another order.
        let r = try c.run("workflows/extract-records.yaml", ["-p", "docs=[\"oslo.txt\", \"paris.txt\"]"])
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        let s = subtasks(r.job)
        #expect(s.keys.sorted() == ["extract[0]", "extract[1]"], "\(r.job)")
        let records = try s.keys.sorted().map { id -> [String: Any] in
            let text = try #require(s[id]?["output"] as? String, "\(s)")
            return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        }
        #expect(records.map { $0["city"] as? String } == ["Oslo", "Paris"])
        #expect(records.map { $0["population"] as? Int } == [709_037, 2_102_650])
        #expect(records.map { $0["country"] as? String } == ["Norway", "France"])
        let check = try LedgerCheck(database: c.database, job: r.job["id"] as? String ?? "")
        #expect(check.consistent, "\(check)")
    }

    @Test func cityReportWritesFromTheExtractedRecords() throws {
        let c = try StandinCluster()
        let r = try c.run("workflows/city-report.yaml")
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        let report = try #require(subtasks(r.job)["report"]?["output"] as? String, "\(r.job)")
        // Largest first, from the records the extract subtasks produced (the report's task showed them).
        #expect(report.contains("Lima, the capital of Peru, has a population of 10,092,000"), "\(report)")
        let lima = try #require(report.range(of: "Lima")), paris = try #require(report.range(of: "Paris")), oslo = try #require(report.range(of: "Oslo"))
        #expect(lima.lowerBound < paris.lowerBound && paris.lowerBound < oslo.lowerBound, "\(report)")
        #expect((subtasks(r.job)["report"]?["needs"] as? [String]) == ["extract[0]", "extract[1]", "extract[2]"])
        // Judged: an attempt of its own on the judge model's worker, charged under role judge.
        let id = try #require(r.job["id"] as? String)
        let attempts = try JSONSerialization.jsonObject(with: Data(try c.cli(["attempts", id, "--json"]).out.utf8)) as? [[String: Any]] ?? []
        let judge = attempts.first { ($0["detail"] as? String ?? "").hasPrefix("judge of #") }
        #expect(judge?["model"] as? String == "gemma3-270m" && judge?["subtask"] as? String == "report", "\(attempts)")
        let verdict = judge?["detail"] as? String
        #expect(verdict?.contains("judge score 0.90 (pass 0.70)") == true, "\(String(describing: judge))")
        let ledger = try JSONSerialization.jsonObject(with: Data(try c.cli(["ledger", id, "--json"]).out.utf8)) as? [[String: Any]] ?? []
        #expect(ledger.contains { $0["role"] as? String == "judge" && $0["model"] as? String == "gemma3-270m" }, "\(ledger)")
        let check = try LedgerCheck(database: c.database, job: id)
        #expect(check.consistent && check.doubleSettled == 0, "\(check)")
    }

    @Test func eachKindsFailurePathsEndTheJobWithTheReason() throws {
        let c = try StandinCluster()
        let dir = c.dir.appendingPathComponent("wf")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Paths.root.appendingPathComponent("workflows/examples/cities"), to: dir.appendingPathComponent("cities"))
        func workflow(_ name: String, _ body: String) throws -> String {
            let path = dir.appendingPathComponent("\(name).yaml").path
            try """
            name: \(name)
            budget: {tokens: 20000}
            deadline: 60s
            scaffold: {maxTurns: 2, corrector: false}
            inputs: {notes: cities}
            subtasks:
            \(body)
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        // Schema violation: every answer has the wrong type; nothing is kept.
        let schema = try workflow("schema", """
              - {id: record, kind: json, maxAttempts: 1, schema: {type: object, required: [city], properties: {city: {type: string}}}, prompt: "Give the record. STANDIN:schema-violation"}
            """)
        var r = try c.run(schema)
        #expect(r.code == 1, "\(r.job)\n\(r.err)")
        #expect(text(r.job, "record", "note").contains("no verified result in 2 turn(s)"), "\(r.job)")
        #expect(subtasks(r.job)["record"]?["output"] is NSNull, "\(r.job)")

        // Path escape: refused with an observation the agent then quotes; nothing lands outside.
        let escape = try workflow("escape", """
              - {id: note, kind: answer, prompt: "Write notes. STANDIN:escape"}
            """)
        r = try c.run(escape)
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        let told = text(r.job, "note", "output")
        #expect(told.contains("must stay inside the workspace"), "\(told)")
        #expect(told.contains("must be relative to the workspace, not absolute"), "\(told)")
        #expect(told.contains("inputs/ is read-only"), "\(told)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/standin-escaped.txt"))
        #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent(".agentflow/escaped.txt").path))
        #expect(!FileManager.default.fileExists(atPath: c.dir.appendingPathComponent(".agentflow/workspaces/escaped.txt").path))
        #expect(try String(contentsOf: dir.appendingPathComponent("cities/paris.txt"), encoding: .utf8).contains("Paris is the capital"))

        // Output too large: the check passes, the outputs do not fit; the attempt fails saying so.
        let huge = try workflow("huge", """
              - {id: big, kind: files, maxAttempts: 1, prompt: "Make data. STANDIN:huge-output"}
            """)
        r = try c.run(huge)
        #expect(r.code == 1, "\(r.job)\n\(r.err)")
        #expect(text(r.job, "big", "note").contains("outputs are too large"), "\(r.job)")

        // A flood of blocks: at most 16 are acted on.
        let flood = try workflow("flood", """
              - {id: many, kind: files, prompt: "Write files. STANDIN:flood"}
            """)
        r = try c.run(flood)
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        #expect(text(r.job, "many", "output").split(separator: "\n").count == 16, "\(r.job)")
        // A judge that answers garbage never passes the answer it judges.
        let garbage = try workflow("garbage", """
              - {id: note, kind: answer, maxAttempts: 1, prompt: "Write notes. STANDIN:answer=population 5", judge: {model: gemma3-270m, rubric: "STANDIN:garbage"}}
            """)
        r = try c.run(garbage)
        #expect(r.code == 1, "\(r.job)\n\(r.err)")
        #expect(text(r.job, "note", "state") == "failed" || text(r.job, "note", "state") == "abandoned" || text(r.job, "note", "state") == "ready", "\(r.job)")
        #expect(text(r.job, "note", "note").contains("the judge's reply is not a verdict"), "\(r.job)")
        #expect((subtasks(r.job)["note"]?["outputs"] as? [Any])?.isEmpty == true, "\(r.job)")

        // Every job, failed or not: spent ≤ budget, the ledger adds up, nothing settled twice.
        let ids = try SQLiteConnection(path: c.database).query("SELECT id FROM jobs").map { $0.string(0) }
        #expect(ids.count == 5)
        for id in ids {
            let check = try LedgerCheck(database: c.database, job: id)
            #expect(check.consistent && check.doubleSettled == 0, "\(id): \(check)")
        }
    }
}

/// Agent work beyond the examples: many jobs at once, bad submissions, simulated fleets, HTTP.
@Suite(.serialized) struct AgentWorkSubmissionTests {
    @Test func manyFannedOutJobsAtOnceAllFinishWithinTheirBudgets() throws {
        let c = try StandinCluster(slots: 3)
        let subsets = [["oslo.txt"], ["paris.txt", "lima.txt"], ["lima.txt"], ["oslo.txt", "paris.txt", "lima.txt"], ["paris.txt"], ["lima.txt", "oslo.txt"]]
        let results = Mutex<[(code: Int32, out: String, docs: Int)]>([])
        DispatchQueue.concurrentPerform(iterations: subsets.count) { i in
            let docs = "docs=[" + subsets[i].map { "\"\($0)\"" }.joined(separator: ",") + "]"
            if let r = try? c.cli(["submit", "workflows/extract-records.yaml", "--wait", "--json", "-p", docs, "--budget-tokens", "30000"], timeout: 180) {
                results.withLock { $0.append((r.code, r.out, subsets[i].count)) }
            }
        }
        let all = results.withLock { $0 }
        #expect(all.count == subsets.count)
        for (code, out, docs) in all {
            let job = (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
            #expect(code == 0, "\(job)\n\(c.logs)")
            #expect(subtasks(job).count == docs)
            let check = try LedgerCheck(database: c.database, job: job["id"] as? String ?? "")
            #expect(check.consistent && check.doubleSettled == 0 && check.spentTokens <= 30000, "\(check)")
        }
    }

    @Test func parametersAndForeachValidatePlanAndRunWithOverrides() throws {
        let overrides = ["-p", "docs=[\"oslo.txt\", \"lima.txt\"]", "-p", "judge_model=smollm2-135m"]
        // validate prints the expansion with the values given, and nothing of the defaults'.
        let validated = try agentflow(["validate", "workflows/city-report.yaml"] + overrides)
        #expect(validated.code == 0, "\(validated.err)")
        for line in ["params: docs=[\"oslo.txt\",\"lima.txt\"], judge_model=\"smollm2-135m\"",
                     "  extract[0]  json    item \"oslo.txt\"", "  extract[1]  json    item \"lima.txt\"",
                     "  report      answer  needs extract[0], extract[1]  judge smollm2-135m ≥ 0.70"] {
            #expect(validated.out.contains(line), "\(line)\n\(validated.out)")
        }
        #expect(!validated.out.contains("extract[2]") && !validated.out.contains("paris"), "\(validated.out)")
        // plan plans the expanded DAG and shows it.
        let planned = try agentflow(["plan", "workflows/city-report.yaml", "--json"] + overrides)
        #expect(planned.code == 0, "\(planned.err)")
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(planned.out.utf8)) as? [String: Any], "\(planned.out)")
        let expanded = (plan["subtasks"] as? [[String: Any]] ?? []).map { "\($0["id"] ?? "") \($0["item"] ?? "-")" }
        #expect(expanded == ["extract[0] oslo.txt", "extract[1] lima.txt", "report -"], "\(planned.out)")
        // MCPP counts the judge (default gemma3-270m): without it, 90% needs a smaller budget.
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-plan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Paths.root.appendingPathComponent("workflows/examples"), to: dir.appendingPathComponent("examples"))
        let judged = try String(contentsOf: Paths.root.appendingPathComponent("workflows/city-report.yaml"), encoding: .utf8)
        let judgeLines = ["    judge:", "      model: \"{{ judge_model }}\"", "      rubric:", "      pass:"]
        let unjudged = judged.components(separatedBy: "\n").filter { line in !judgeLines.contains { line.hasPrefix($0) } }.joined(separator: "\n")
        #expect(unjudged.count < judged.count - 100 && !unjudged.contains("judge:"))
        try unjudged.write(to: dir.appendingPathComponent("unjudged.yaml"), atomically: true, encoding: .utf8)
        func p90(_ path: String) throws -> Double {
            let r = try agentflow(["plan", path, "--json", "--seed", "3", "-p", "docs=[\"oslo.txt\", \"lima.txt\"]"])
            let json = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
            let frontier = json?["frontier"] as? [[String: Any]] ?? []
            return try #require(frontier.first { $0["deadline"] as? Double == 480 }?["p90"] as? Double, "\(r.out)\n\(r.err)")
        }
        let withJudge = try p90("workflows/city-report.yaml"), without = try p90(dir.appendingPathComponent("unjudged.yaml").path)
        // A judge on gemma3-270m is at least 1,000 tokens at $0.10 per million per judged attempt.
        #expect(withJudge >= without + 0.0001, "judged \(withJudge), unjudged \(without)")
        // An override the workflow cannot take is a validation error naming file and line.
        let bad = try agentflow(["validate", "workflows/city-report.yaml", "-p", "judge_model=gpt-99"])
        #expect(bad.code == 2)
        #expect(bad.err.contains("city-report.yaml:") && bad.err.contains("gpt-99"), "\(bad.err)")
        // And it runs: two records, a report from them, judged on the overridden model.
        let c = try StandinCluster()
        let r = try c.run("workflows/city-report.yaml", overrides)
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        #expect(subtasks(r.job).keys.sorted() == ["extract[0]", "extract[1]", "report"], "\(r.job)")
        let report = text(r.job, "report", "output")
        #expect(report.contains("Lima") && report.contains("Oslo") && !report.contains("Paris"), "\(report)")
        let id = try #require(r.job["id"] as? String)
        let attempts = try JSONSerialization.jsonObject(with: Data(try c.cli(["attempts", id, "--json"]).out.utf8)) as? [[String: Any]] ?? []
        #expect(attempts.contains { ($0["detail"] as? String ?? "").hasPrefix("judge of #") && $0["model"] as? String == "smollm2-135m" }, "\(attempts)")
        let check = try LedgerCheck(database: c.database, job: id)
        #expect(check.consistent && check.doubleSettled == 0 && check.spentTokens <= 80000, "\(check)")
    }

    @Test func badSubmissionsAreRefusedBeforeAnythingIsSent() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 0.01)
        defer { c.stop() }
        try c.startAll()
        let wf = c.dir.appendingPathComponent("wf.yaml")
        try """
        name: bad-inputs
        params: {docs: [a]}
        inputs:
          notes: ./missing-dir
        subtasks:
          - {id: e, foreach: "{{ docs }}", kind: answer, prompt: "read {{ item }}"}
        """.write(to: wf, atomically: true, encoding: .utf8)
        var r = try c.cli(["submit", wf.path])
        #expect(r.code == 2)
        #expect(r.err.contains("wf.yaml:4: input 'notes': \(c.dir.path)/./missing-dir does not exist"), "\(r.err)")
        // Inputs past the packed limit (random bytes do not compress).
        let big = c.dir.appendingPathComponent("big")
        try FileManager.default.createDirectory(at: big, withIntermediateDirectories: true)
        let urandom = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        try urandom.readData(ofLength: 9 << 20).write(to: big.appendingPathComponent("noise.bin"))
        r = try c.cli(["submit", wf.path, "--input", "notes=\(big.path)"])
        #expect(r.code == 2)
        #expect(r.err.contains("inputs may be \(Limits.maxInputBytes) bytes packed in all"), "\(r.err)")
        r = try c.cli(["submit", wf.path, "--input", "notes=\(big.path)", "-p", "docs=[1,"])
        #expect(r.code == 2)
        #expect(r.err.contains("-p docs: the value starts like JSON but is not JSON"), "\(r.err)")
        r = try c.cli(["submit", wf.path, "-p", "nope=1"])
        #expect(r.code == 2)
        #expect(r.err.contains("parameter 'nope' is not declared in 'params' (declared: docs)"), "\(r.err)")
        // Nothing reached the coordinator.
        let jobs = try JSONSerialization.jsonObject(with: Data(try c.cli(["jobs", "--json"]).out.utf8)) as? [Any]
        #expect(jobs?.isEmpty == true)
    }

    @Test func simulatedFleetsProduceEachKindsDefaultOutput() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 4), ("gpu1", "gemma3-270m", 4)], timeScale: 0.001)
        defer { c.stop() }
        try c.startAll()
        let r = try c.cli(["submit", "workflows/city-report.yaml", "--wait", "--json", "--planner", "seq:4"])
        let job = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any] ?? [:]
        #expect(r.code == 0, "\(r.out)\n\(r.err)\n\(c.logs)")
        // The schema's example: every required property, the minimum where one is set.
        let record = try JSONSerialization.jsonObject(with: Data(text(job, "extract[1]", "output").utf8)) as? [String: Any]
        #expect(record?["population"] as? Int == 1 && record?["city"] as? String == "x" && record?["country"] as? String == "x", "\(job)")
        #expect(text(job, "report", "output") == "Simulated answer for report.\n")
        // A files subtask (a workspace from an input, shell actions) keeps its simulated change,
        // and a user takes the files of every kind away.
        // (The workflow's estimates say 5% on the tiny models; the simulated ones always pass here.)
        let examples = c.dir.appendingPathComponent("examples")
        try FileManager.default.createDirectory(at: examples, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Paths.root.appendingPathComponent("workflows/examples/calc"), to: examples.appendingPathComponent("calc"))
        let fixWorkflow = c.dir.appendingPathComponent("fix-failing-test.yaml")
        try String(contentsOf: Paths.root.appendingPathComponent("workflows/fix-failing-test.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "success: 0.05", with: "success: 1").write(to: fixWorkflow, atomically: true, encoding: .utf8)
        let fixed = try c.cli(["submit", fixWorkflow.path, "--wait", "--json", "--planner", "seq:2"])
        let fixJob = (try? JSONSerialization.jsonObject(with: Data(fixed.out.utf8))) as? [String: Any] ?? [:]
        #expect(fixed.code == 0, "\(fixed.out)\n\(fixed.err)")
        let out = c.dir.appendingPathComponent("sim-out")
        for id in [job["id"], fixJob["id"]].compactMap({ $0 as? String }) {
            let taken = try c.cli(["outputs", id, "--dir", out.path])
            #expect(taken.code == 0, "\(taken.err)")
        }
        let kept = try FileManager.default.subpathsOfDirectory(atPath: out.path).filter { !$0.hasSuffix("]") && $0.contains("/") }.sorted()
        #expect(kept == ["extract[0]/answer.json", "extract[1]/answer.json", "extract[2]/answer.json", "fix/simulated-change.txt", "report/answer.md"],
                "\(kept)")
        for id in [job["id"], fixJob["id"]].compactMap({ $0 as? String }) {
            let check = try LedgerCheck(database: c.database, job: id)
            #expect(check.consistent && check.doubleSettled == 0, "\(check)")
        }
    }

    @Test func aJSONSubmissionOverHTTPCarriesParametersAndPackedInputs() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 2)], timeScale: 0.001)
        defer { c.stop() }
        let base = try c.startWithHTTP()
        // Packed by the system's tar, as a client in any language would.
        let tgz = c.dir.appendingPathComponent("notes.tgz")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tar.arguments = ["tar", "-czf", tgz.path, "-C", Paths.root.appendingPathComponent("workflows/examples/cities").path, "."]
        try launch(tar)
        tar.waitUntilExit()
        let yaml = """
            name: http-records
            params: {docs: [a]}
            inputs: {notes: ./cities}
            subtasks:
              - {id: e, foreach: "{{ docs }}", kind: json, schema: {type: object, required: [city]}, prompt: "Read inputs/notes/{{ item }}."}
            """
        let body = try JSONSerialization.data(withJSONObject: [
            "workflow": yaml, "params": ["docs": ["oslo.txt", "lima.txt"]], "inputs": ["notes": try Data(contentsOf: tgz).base64EncodedString()],
        ])
        let posted = try http("POST", base + "/api/v1/jobs?budgetTokens=20000&deadline=1m", body: String(decoding: body, as: UTF8.self),
                              contentType: "application/json")
        #expect(posted.status == 201, "\(posted.body)\n\(c.logs)")
        let id = try #require(posted.json?["id"] as? String)
        var job: [String: Any] = [:]
        try waitUntil(timeout: 60, "the job to end") {
            job = try c.status(id) ?? [:]
            return ["succeeded", "failed"].contains(job["state"] as? String ?? "")
        }
        #expect(job["state"] as? String == "succeeded", "\(job)")
        #expect(subtasks(job).keys.sorted() == ["e[0]", "e[1]"])
        // The bare YAML names a path the server must not read: refused, with the line.
        let refused = try http("POST", base + "/api/v1/jobs?budgetTokens=20000&deadline=1m", body: yaml)
        #expect(refused.status == 400)
        #expect(refused.json?["line"] as? Int == 3, "\(refused.body)")
        let problem = refused.json?["problem"] as? String
        #expect(problem?.contains("input 'notes' (./cities) was not sent with the workflow") == true, "\(refused.body)")
        // Parameters in the envelope are checked like -p: an undeclared one, and a foreach over
        // a value that is not a list, are refused with where and why; nothing is submitted.
        for (params, expected) in [(["nope": 1] as [String: Any], "parameter 'nope' is not declared in 'params' (declared: docs)"),
                                   (["docs": "oslo.txt"], "foreach")] {
            let bad = try JSONSerialization.data(withJSONObject: [
                "workflow": yaml, "params": params, "inputs": ["notes": try Data(contentsOf: tgz).base64EncodedString()],
            ])
            let r = try http("POST", base + "/api/v1/jobs?budgetTokens=20000&deadline=1m", body: String(decoding: bad, as: UTF8.self),
                             contentType: "application/json")
            #expect(r.status == 400, "\(r.body)")
            #expect((r.json?["problem"] as? String)?.contains(expected) == true, "\(r.body)")
        }
        let jobs = try JSONSerialization.jsonObject(with: Data(try c.cli(["jobs", "--json"]).out.utf8)) as? [Any]
        #expect(jobs?.count == 1)
    }
}

/// The files subtasks keep, from worker to coordinator to dependants and to users.
@Suite(.serialized) struct AgentOutputsTests {
    @Test func keptFilesReachDependantsAndUsersOverTheCLIAndHTTP() throws {
        let c = try StandinCluster(http: true)
        let wf = c.dir.appendingPathComponent("wf.yaml")
        try """
        name: make-and-use
        budget: {tokens: 20000}
        deadline: 60s
        subtasks:
          - {id: make, kind: files, prompt: "Make the data. STANDIN:file:data/x.csv=a,b"}
          - id: use
            kind: answer
            needs: [make]
            prompt: "Use it. STANDIN:answer=used"
            verify: {command: "test \\"$(cat inputs/make/data/x.csv)\\" = a,b"}
        """.write(to: wf, atomically: true, encoding: .utf8)
        let r = try c.run(wf.path)
        // `use` passes only if make's kept file reached its workspace under inputs/make/.
        #expect(r.code == 0, "\(r.job)\n\(r.err)")
        let id = try #require(r.job["id"] as? String)
        let base = try #require(c.http)
        try waitUntil(timeout: 20, "the HTTP server") { ((try? http("GET", base + "/api/v1/workers").status) ?? 0) == 200 }
        let manifest = try http("GET", base + "/api/v1/jobs/\(id)/outputs")
        #expect(manifest.status == 200, "\(manifest.body)")
        let make = manifest.json?["make"] as? [[String: Any]]
        #expect(make?.first?["path"] as? String == "data/x.csv" && make?.first?["size"] as? Int == 4, "\(manifest.body)")
        #expect((manifest.json?["use"] as? [[String: Any]])?.first?["path"] as? String == "answer.md")
        let file = try http("GET", base + "/api/v1/jobs/\(id)/outputs/make/data/x.csv")
        #expect(file.status == 200 && file.body == "a,b\n", "\(file.body)")
        #expect(try http("GET", base + "/api/v1/jobs/\(id)/outputs/make/data/nope.csv").status == 404)
        #expect(try http("GET", base + "/api/v1/jobs/\(id)/outputs/nosuch/x").status == 404)
        #expect(try http("GET", base + "/api/v1/jobs/j-nosuchjob/outputs").status == 404)
        // One subtask only, as JSON.
        let listed = try c.cli(["outputs", id, "--json"])
        let json = try JSONSerialization.jsonObject(with: Data(listed.out.utf8)) as? [String: Any]
        #expect(json?.keys.sorted() == ["make", "use"], "\(listed.out)")
        let one = c.dir.appendingPathComponent("one")
        #expect(try c.cli(["outputs", id, "--subtask", "use", "--dir", one.path]).code == 0)
        #expect(try String(contentsOf: one.appendingPathComponent("use/answer.md"), encoding: .utf8) == "used\n")
        #expect(!FileManager.default.fileExists(atPath: one.appendingPathComponent("make").path))
        #expect(try c.cli(["outputs", "j-nosuchjob"]).code == 2)
    }

    @Test func aPlainCodeJobsModulesAreItsOutputsAndSurviveARestart() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 2), ("gpu1", "gemma3-270m", 2)], timeScale: 0.001)
        defer { c.stop() }
        try c.startAll()
        let r = try c.cli(["submit", "workflows/chain.yaml", "--wait", "--json", "--planner", "seq:2"])
        #expect(r.code == 0, "\(r.err)\n\(c.logs)")
        let job = try #require((try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any])?["id"] as? String)
        // The coordinator goes down hard and comes back: the outputs are in the database.
        c.coordinator?.kill9()
        try c.startCoordinator()
        try waitUntil(timeout: 20, "the coordinator back") { try c.cli(["status", job, "--json"], timeout: 10).code == 0 }
        let out = c.dir.appendingPathComponent("chain-out")
        let taken = try c.cli(["outputs", job, "--dir", out.path])
        #expect(taken.code == 0, "\(taken.err)")
        let dirs = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        #expect(dirs.count >= 3, "\(dirs)")
        for d in dirs {
            let module = try String(contentsOf: out.appendingPathComponent("\(d)/solution.py"), encoding: .utf8)
            #expect(module == "# simulated solution for \(d)\n")
        }
    }
}
