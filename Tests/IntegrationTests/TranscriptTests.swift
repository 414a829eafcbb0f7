import Foundation
import TestSupport
import Testing

/// Transcripts through real processes: a coordinator, worker processes, real ZeroMQ and SQLite,
/// and the scripted OpenAI server (tools/fake_openai_server.py) as the model. A failed attempt's
/// transcript is readable with the CLI (from the coordinator, and from the database with none)
/// and over HTTP, and names what the model wrote; no configured key or token is written
/// anywhere; a worker killed mid-call leaves what it streamed; a coordinator killed mid-attempt
/// gets the rest when the worker comes back; each attempt number has its own transcript.
@Suite(.serialized) struct TranscriptTests {
    /// A scratch directory whose every byte is scanned for secrets, and one beside it for what
    /// legitimately holds them (the token file, the model's scripted reply).
    final class Scratch: @unchecked Sendable {
        let dir: URL
        let secrets: URL
        init() throws {
            let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-transcripts-\(UUID().uuidString)")
            dir = base.appendingPathComponent("cluster")
            secrets = base.appendingPathComponent("secrets")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }

        /// Files under `dir` (logs, the database, its WAL, reports) holding `text`.
        func filesHolding(_ text: String) -> [String] {
            let files = (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String]) ?? []
            return files.filter { name in
                FileManager.default.contents(atPath: dir.appendingPathComponent(name).path)?.range(of: Data(text.utf8)) != nil
            }
        }
    }

    /// A cluster of one worker (gpu0) whose backend asks `server` for model `served` with the key
    /// from AF_TEST_KEY; HTTP on `http` with `tokens` (then clients on a Unix socket).
    func cluster(_ s: Scratch, server: FakeServer, served: String, http: Int? = nil, tokens: String? = nil) throws -> String {
        let file = s.dir.appendingPathComponent("cluster.yaml").path
        var coordinator = "  workers: tcp://127.0.0.1:\(freePort())\n  database: \(s.dir.appendingPathComponent("agentflow.db").path)\n  heartbeat: 1s\n"
        coordinator += tokens == nil ? "  clients: tcp://127.0.0.1:\(freePort())\n" : "  clients: ipc://\(s.dir.appendingPathComponent("clients.sock").path)\n"
        if let http { coordinator += "  http: 127.0.0.1:\(http)\n" }
        if let tokens { coordinator += "  httpTokens: \(tokens)\n" }
        try """
        coordinator:
        \(coordinator)models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}
        workers:
          - {name: gpu0, model: smollm2-135m, slots: 2, backend: {kind: openai, url: "\(server.baseURL)", apiKeyEnv: AF_TEST_KEY, served: \(served)}}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The coordinator and the worker gpu0 (the model's key in AF_TEST_KEY) of one test, on
    /// `cluster`, logging into the scratch directory; either may be killed and started again.
    final class Processes: @unchecked Sendable {
        let s: Scratch
        let cluster: String
        let key: String
        let verbose: Bool
        private(set) var coordinator: Proc
        private(set) var worker: Proc

        init(_ s: Scratch, cluster: String, key: String, verbose: Bool = false, coordinatorLog: String = "coordinator.log",
             workerLog: String = "worker.log") throws {
            (self.s, self.cluster, self.key, self.verbose) = (s, cluster, key, verbose)
            coordinator = try Self.coordinator(s, cluster, log: coordinatorLog)
            worker = try Self.worker(s, cluster, key, verbose, log: workerLog)
        }

        static func coordinator(_ s: Scratch, _ cluster: String, log: String) throws -> Proc {
            try Proc(["coordinator", "--cluster", cluster], log: s.dir.appendingPathComponent(log).path)
        }

        static func worker(_ s: Scratch, _ cluster: String, _ key: String, _ verbose: Bool, log: String) throws -> Proc {
            try Proc(["worker", "--name", "gpu0", "--cluster", cluster] + (verbose ? ["--verbose"] : []), log: s.dir.appendingPathComponent(log).path,
                     environment: ["AF_TEST_KEY": key])
        }

        /// A new coordinator process (after the last one was killed).
        func startCoordinator(log: String) throws { coordinator = try Self.coordinator(s, cluster, log: log) }

        /// A new worker process under the same name (after the last one was killed).
        func startWorker(log: String) throws { worker = try Self.worker(s, cluster, key, verbose, log: log) }

        func stop() {
            worker.terminate()
            coordinator.terminate()
            _ = worker.wait(timeout: 5)
            _ = coordinator.wait(timeout: 5)
        }
    }

    func workflow(_ s: Scratch, verify: String = "from solution import add\\nassert add(2, 3) == 5", maxTurns: Int = 2, deadline: String = "3m") throws -> String {
        let file = s.dir.appendingPathComponent("wf.yaml").path
        try """
        name: transcribed
        budget: {tokens: 60000}
        deadline: \(deadline)
        scaffold: {maxTurns: \(maxTurns)}
        subtasks:
          - id: add
            prompt: "Write a Python function add(a, b) that returns a + b."
            verify: {python: "\(verify)"}
            maxTokens: 8000
            maxAttempts: 1
        """.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func waitForWorker(_ cluster: String) throws {
        try waitUntil(timeout: 30, "the worker to register") {
            let r = try agentflow(["workers", "--json", "--cluster", cluster], timeout: 10)
            return ((try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [[String: Any]] ?? []).contains { $0["state"] as? String == "alive" }
        }
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    func transcript(_ id: String, _ attempt: String, cluster: String) throws -> [String: Any] {
        json(try agentflow(["attempts", id, "--transcript", attempt, "--json", "--cluster", cluster], timeout: 20).out)
    }

    func events(_ t: [String: Any]) -> [[String: Any]] { t["events"] as? [[String: Any]] ?? [] }

    /// The calls of the attempt's turns: all but the estimator's calibration call (call 0), which
    /// the first attempt on a fresh worker makes (and lists) before its first turn.
    func turnCalls(_ t: [String: Any]) -> [[String: Any]] {
        events(t).filter { $0["type"] as? String == "call" && ($0["reply"] as? [String: Any])?["finishReason"] as? String != "calibration" }
    }

    @Test func aFailedAttemptsTranscriptNamesWhatTheModelWroteAndHoldsNoSecret() throws {
        let s = try Scratch()
        let key = "backendkey\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
        let adminToken = "admintoken\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
        let readToken = "readtoken\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
        let openAIKey = "sk-proj-\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))"
        let bearer = "Zq9\(UUID().uuidString.prefix(13))"
        // The model leaks everything it can: the backend key, the HTTP token, a key in OpenAI's
        // format and a bearer header — and writes code that subtracts.
        let reply = s.secrets.appendingPathComponent("reply.txt").path
        try """
        Using \(key) and \(adminToken). Also \(openAIKey) and Authorization: Bearer \(bearer).
        sk-learn stays, and so does the Bearer of bad news.
        ```python
        def add(a, b):
            return a - b  # subtracts on purpose
        ```

        """.write(toFile: reply, atomically: true, encoding: .utf8)
        let tokens = s.secrets.appendingPathComponent("tokens").path
        try "admin \(adminToken)\nread \(readToken)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let server = FakeServer(arguments: ["--reply-file", reply], environment: ["FAKE_OPENAI_API_KEY": key])
        let port = freePort()
        let clusterFile = try cluster(s, server: server, served: "canned", http: port, tokens: tokens)
        let procs = try Processes(s, cluster: clusterFile, key: key, verbose: true)
        defer { procs.stop() }
        try waitForWorker(clusterFile)
        let run = try agentflow(["submit", try workflow(s), "--cluster", clusterFile, "--planner", "seq:1", "--wait", "--json"], timeout: 120)
        let job = json(run.out)
        #expect(run.code == 1 && job["state"] as? String == "failed", "\(run.out)\(run.err)\n\(procs.worker.output)")
        let id = try #require(job["id"] as? String)

        // The CLI prints it readably: the calls with what the model wrote, the checks that failed.
        let printed = try agentflow(["attempts", id, "--transcript", "add#1", "--cluster", clusterFile], timeout: 20)
        #expect(printed.code == 0, "\(printed.err)")
        let text = printed.out
        #expect(text.hasPrefix("Transcript of \(id)/add#1 · smollm2-135m on gpu0 · failed"), "\(text.prefix(300))")
        for expected in ["── call 1 · agent", "── call 2 · corrector", "request: 5 message(s)",
                         // The agent's second call begins with the five messages of its first (prompt caching).
                         "request: 8 message(s); [0–4] as sent before", "Write a Python function add(a, b)",
                         "return a - b  # subtracts on purpose", "── action solution.py", "── verifier", "failed (exit code 1)", "AssertionError",
                         "attempt ended failed", "complete", "sk-learn stays, and so does the Bearer of bad news.",
                         "Using [redacted] and [redacted]. Also sk-[redacted] and Authorization: Bearer [redacted]\n"] {
            #expect(text.contains(expected), "missing «\(expected)» in\n\(text)")
        }

        // The same over HTTP, with a read token; an unknown attempt is 404, a bad number 400.
        let base = "http://127.0.0.1:\(port)/api/v1/jobs/\(id)/attempts"
        let reply1 = try http("GET", base + "/add/1/transcript", token: readToken)
        #expect(reply1.status == 200, "\(reply1.body)")
        let t = json(reply1.body)
        #expect(t["attempt"] as? String == "\(id)/add#1" && t["state"] as? String == "failed" && t["complete"] as? Bool == true && t["missing"] as? Int == 0)
        let calls = turnCalls(t)
        #expect(calls.map { $0["role"] as? String } == ["agent", "corrector", "agent", "corrector"], "\(calls.map { $0["role"] ?? "" })")
        let firstReply = calls.first?["reply"] as? [String: Any] ?? [:]
        #expect((firstReply["text"] as? String)?.contains("return a - b  # subtracts on purpose") == true)
        #expect((firstReply["tokensIn"] as? Int ?? 0) > 0 && (firstReply["tokensOut"] as? Int ?? 0) > 0 && firstReply["finishReason"] is String)
        let checks = events(t).compactMap { $0["verifier"] as? [String: Any] }
        #expect(!checks.isEmpty && checks.allSatisfy { $0["passed"] as? Bool == false && ($0["output"] as? String)?.contains("AssertionError") == true })
        #expect(try http("GET", base + "/add/2/transcript", token: readToken).status == 404)
        #expect(try http("GET", base + "/add/0/transcript", token: readToken).status == 400)
        #expect(try http("GET", base + "/add/1/transcript").status == 401)

        // The HTML report embeds it, for the attempt's bar to open.
        let report = s.dir.appendingPathComponent("report.html").path
        #expect(try agentflow(["report", id, "--html", report, "--cluster", clusterFile]).code == 0)
        let page = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        #expect(page.contains("return a - b  # subtracts on purpose") && page.contains("#transcript="))

        // No coordinator: the CLI reads the database and prints the same transcript.
        procs.coordinator.terminate()
        _ = procs.coordinator.wait(timeout: 10)
        let offline = try agentflow(["attempts", id, "--transcript", "add#1", "--cluster", clusterFile], timeout: 20)
        #expect(offline.code == 0 && offline.out == text, "\(offline.err)")
        #expect(offline.err.contains("reading the database"), "\(offline.err)")

        // No secret anywhere: not in what was read, not in any log, not in the database.
        for secret in [key, adminToken, openAIKey, bearer] {
            for (i, output) in [text, reply1.body, page, offline.out, run.out, run.err].enumerated() {
                #expect(!output.contains(secret), "a secret is in output \(i)")
            }
            #expect(s.filesHolding(secret).isEmpty, "a secret is in \(s.filesHolding(secret))")
        }
    }

    @Test func aWorkerKilledMidCallLeavesWhatItStreamedAndTheNextAttemptHasItsOwn() throws {
        let s = try Scratch()
        let key = "key\(UUID().uuidString)"
        // `slow` streams 200 tokens, one every 0.1 s: the attempt is in its first call for 20 s.
        let server = FakeServer(environment: ["FAKE_OPENAI_API_KEY": key])
        let clusterFile = try cluster(s, server: server, served: "slow")
        let wf = s.dir.appendingPathComponent("wf.yaml").path
        try """
        name: slow
        budget: {tokens: 60000}
        deadline: 3m
        subtasks:
          - {id: add, prompt: "Write add(a, b).", verify: {python: "assert False"}, maxTokens: 8000, maxAttempts: 3}
        """.write(toFile: wf, atomically: true, encoding: .utf8)
        let procs = try Processes(s, cluster: clusterFile, key: key, workerLog: "worker-1.log")
        defer { procs.stop() }
        try waitForWorker(clusterFile)
        let submitted = try agentflow(["submit", wf, "--cluster", clusterFile, "--planner", "seq:1"], timeout: 30)
        let id = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(submitted.code == 0, "\(submitted.err)")
        try waitUntil(timeout: 60, "attempt 1's first call to be recorded") {
            !turnCalls(try transcript(id, "add#1", cluster: clusterFile)).isEmpty
        }
        procs.worker.kill9()
        // A new process under the same name: the coordinator declares the old one dead (3 s),
        // charges attempt 1 as lost and dispatches attempt 2 to the new one.
        try procs.startWorker(log: "worker-2.log")
        try waitUntil(timeout: 60, "attempt 2's first call to be recorded") {
            events(try transcript(id, "add#2", cluster: clusterFile)).contains { $0["type"] as? String == "call" }
        }
        let first = try transcript(id, "add#1", cluster: clusterFile)
        #expect(first["state"] as? String == "lost" && first["complete"] as? Bool == false, "\(first)")
        let call = try #require(turnCalls(first).first)
        #expect(call["reply"] == nil && (call["request"] as? [Int])?.count == 5, "the call was sent, no reply came: \(call)")
        #expect((first["messages"] as? [[String: Any]])?.contains { ($0["content"] as? String)?.contains("Write add(a, b).") == true } == true)
        let printed = try agentflow(["attempts", id, "--transcript", "add#1", "--cluster", clusterFile], timeout: 20).out
        #expect(printed.contains("no reply recorded (the worker stopped during this call)") && printed.contains("ends early"), "\(printed)")
        let second = try transcript(id, "add#2", cluster: clusterFile)
        #expect(second["attempt"] as? String == "\(id)/add#2" && second["state"] as? String == "dispatched")
        #expect(!events(second).contains { ($0["text"] as? String)?.hasPrefix("attempt ended") == true })
        _ = try agentflow(["cancel", id, "--cluster", clusterFile], timeout: 20)
    }

    @Test func aCoordinatorKilledMidAttemptGetsTheWholeTranscriptWhenTheWorkerReturns() throws {
        let s = try Scratch()
        let key = "key\(UUID().uuidString)"
        let reply = s.secrets.appendingPathComponent("reply.txt").path
        try "```python\ndef add(a, b):\n    return a - b\n```\n".write(toFile: reply, atomically: true, encoding: .utf8)
        let server = FakeServer(arguments: ["--reply-file", reply], environment: ["FAKE_OPENAI_API_KEY": key])
        let clusterFile = try cluster(s, server: server, served: "canned")
        // Each check takes 3 s: the attempt (two turns, corrector on) runs for 12 s or more.
        let wf = try workflow(s, verify: "import time\\ntime.sleep(3)\\nfrom solution import add\\nassert add(2, 3) == 5")
        let procs = try Processes(s, cluster: clusterFile, key: key, verbose: true, coordinatorLog: "coordinator-1.log")
        defer { procs.stop() }
        try waitForWorker(clusterFile)
        let submitted = try agentflow(["submit", wf, "--cluster", clusterFile, "--planner", "seq:1"], timeout: 30)
        let id = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        try waitUntil(timeout: 60, "the first check to start") {
            events(try transcript(id, "add#1", cluster: clusterFile)).contains { ($0["action"] as? [String: Any])?["kind"] as? String == "solution" }
        }
        procs.coordinator.kill9()
        Thread.sleep(forTimeInterval: 4)
        try procs.startCoordinator(log: "coordinator-2.log")
        var t: [String: Any] = [:]
        // The transcript's last entry and the attempt's result are two messages: they may be
        // committed in two loop iterations, so wait for both.
        try waitUntil(timeout: 90, "the attempt to end and its transcript to be whole") {
            t = try transcript(id, "add#1", cluster: clusterFile)
            return t["complete"] as? Bool == true && t["state"] as? String != "dispatched"
        }
        #expect(t["state"] as? String == "failed" && t["missing"] as? Int == 0, "\(t.filter { $0.key != "messages" && $0.key != "events" })\n\(procs.worker.output)")
        // Entries recorded while no coordinator listened (the first check, the corrector's call)
        // arrived after the worker registered again: two turns, each a call, a run, a check and
        // the corrector's call.
        let kinds = events(t).map { $0["type"] as? String ?? "" }
        #expect(kinds.filter { $0 == "verifier" }.count == 2 && turnCalls(t).count == 4, "\(kinds)")
        let seqs = events(t).compactMap { $0["seq"] as? Int }
        #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count)
        #expect(s.filesHolding(key).isEmpty)
    }
}
