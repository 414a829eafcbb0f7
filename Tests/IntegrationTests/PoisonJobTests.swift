import AgentFlowCore
import Foundation
import Store
import Testing
import Wire
import ZeroMQ

/// One DEALER connection to a coordinator's client socket, sending requests past every check the
/// CLI and the HTTP layer make.
final class RawClient {
    let context = ZMQContext()
    let socket: ZMQSocket

    init(_ endpoint: String) throws {
        socket = try ZMQSocket(context, .dealer)
        try socket.connect(endpoint)
    }

    deinit { socket.close() }

    /// The reply, or nil when none came within `timeout` seconds.
    func request(_ r: ClientRequest, timeout: Double = 20) throws -> ClientReply? {
        try socket.send([try BinaryCodec.encode(r)])
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            var poller = ZMQPoller()
            poller.add(socket)
            try poller.poll(timeout: 0.2)
            if let frames = try socket.receive(dontWait: true), let payload = frames.last {
                return try BinaryCodec.decode(ClientReply.self, from: payload)
            }
        }
        return nil
    }
}

/// A deterministic generator of hostile workflows: extreme and malformed values (±0, subnormals,
/// 1e300, Int.max and past it, negative, NaN, infinities, strings, lists and maps where numbers
/// go) in every numeric field of a workflow, one to three fields at a time.
struct WorkflowFuzzer {
    static let values = [
        "0", "-0", "-0.0", "5e-324", "2.2250738585072014e-308", "1e300", "-1e300", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "-1", ".nan", "NaN", ".inf", "-.inf", "abc", "\"12\"", "[1, 2]", "{a: 1}", "''", "~", "1", "0.5",
        "1e-9", "0x10", "1_000", "200000000000000000", "1e15", "0.999999999999",
    ]
    static let fields = ["budget.tokens", "budget.usd", "deadline", "maxTurns", "maxTokens", "maxAttempts", "success", "tokens", "seconds"]
    var state: UInt64

    mutating func next(_ n: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(n))
    }

    mutating func workflow(_ index: Int) -> String {
        var v: [String: String] = [
            "budget.tokens": "3000", "budget.usd": "", "deadline": "20s", "maxTurns": "3", "maxTokens": "300", "maxAttempts": "3",
            "success": "0.6", "tokens": "100", "seconds": "1",
        ]
        // Zero to two fields: a third of the workflows are valid and get through (with hostile request fields or none).
        for _ in 0..<next(3) { v[Self.fields[next(Self.fields.count)]] = Self.values[next(Self.values.count)] }
        let usd = v["budget.usd"]!.isEmpty ? "" : ", usd: \(v["budget.usd"]!)"
        return """
        name: fuzz-\(index)
        budget: {tokens: \(v["budget.tokens"]!)\(usd)}
        deadline: \(v["deadline"]!)
        scaffold: {maxTurns: \(v["maxTurns"]!)}
        subtasks:
          - id: a
            prompt: fuzz
            maxTokens: \(v["maxTokens"]!)
            maxAttempts: \(v["maxAttempts"]!)
            estimates:
              smollm2-135m: {success: \(v["success"]!), tokens: \(v["tokens"]!), seconds: \(v["seconds"]!)}
          - id: b
            needs: [a]
            prompt: fuzz

        """
    }

    /// Hostile request fields beside the workflow: budgets, deadlines, priorities, planners, names.
    mutating func request(yaml: String, file: String) -> SubmitRequest {
        var r = SubmitRequest(yaml: yaml, file: file, planner: "seq:1")
        switch next(12) {
        case 0: r.budgetTokens = [Int.max, Int.min, 0, -1, 1_000_000_000_001][next(5)]
        case 1: r.budgetUSD = [.nan, .infinity, -0.0, Double.leastNonzeroMagnitude, 1e300, -1][next(6)]
        case 2: r.deadline = [.nan, -.infinity, 0, 1e300, Double.leastNonzeroMagnitude][next(5)]
        case 3: r.minSuccess = [.nan, 2, -0.0, .infinity][next(4)]
        case 4: r.priority = [Int.max, Int.min, 1_000_001][next(3)]
        case 5: r.planner = ["seq:9223372036854775807", "seq:-1", "seq:0", "seq:1:nosuchmodel", String(repeating: "x", count: 5000)][next(5)]
        case 6: r.tenant = ["", "a\u{1b}[31m", String(repeating: "t", count: 500)][next(3)]
        case 7: r.file = ["", "x\ny", String(repeating: "f", count: 100_000)][next(3)]
        case 8: r.seed = UInt64.max
        default: break
        }
        return r
    }
}

/// Issue 15 items 1 and 2: no submission can be acknowledged and then crash the coordinator, and
/// a job that cannot be resumed (or crashed the coordinator) is quarantined, never replayed.
@Suite(.serialized) struct PoisonJobTests {
    static let terminal: Set<String> = ["succeeded", "failed", "cancelled", "deadline_exceeded", "budget_exhausted", "infeasible"]

    /// 240 fuzzed workflows and request fields on the raw client socket, 12 through
    /// `agentflow submit`, 12 over HTTP, then a `kill -9` and a restart that resumes every
    /// acknowledged one: the coordinator answers throughout, every refusal is exit code 2 / HTTP
    /// 400 naming the file or the field, and every job's ledger stays within its budget.
    @Test func fuzzedWorkflowsNeverStopTheCoordinator() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 4), ("w1", "gemma3-270m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        let client = try RawClient("tcp://127.0.0.1:\(cluster.clientsPort)")
        var fuzz = WorkflowFuzzer(state: 15)
        var acknowledged: [String] = []
        var refused = 0
        for i in 0..<240 {
            let yaml = fuzz.workflow(i)
            let request = i % 3 == 0 ? fuzz.request(yaml: yaml, file: "fuzz-\(i).yaml") : SubmitRequest(yaml: yaml, file: "fuzz-\(i).yaml", planner: i % 2 == 0 ? "seq:1" : "mcpp")
            switch try client.request(.submit(request)) {
            case .submitted(let id)?: acknowledged.append(id)
            case .error(let code, let message)?:
                refused += 1
                #expect(code == 2, "\(i): \(message)")
                #expect(message.utf8.count < 2_000, "\(i): a refusal of \(message.utf8.count) bytes")
            case let other:
                Issue.record("submission \(i): \(String(describing: other))\n\(yaml)")
            }
            #expect(cluster.coordinator!.process.isRunning, "the coordinator died on fuzzed workflow \(i):\n\(yaml)\n\(cluster.logs)")
            if !cluster.coordinator!.process.isRunning { return }
        }
        // The CLI and the API refuse with exit code 2 / HTTP 400 and name the file and line.
        for i in 240..<252 {
            let yaml = fuzz.workflow(i)
            let path = cluster.dir.appendingPathComponent("fuzz-\(i).yaml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try cluster.cli(["submit", path, "--planner", "seq:1"], timeout: 30)
            #expect(r.code == 0 || (r.code == 2 && r.err.contains(path)), "\(r.code): \(r.err)")
            if r.code == 0 { acknowledged.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        for i in 252..<264 {
            let yaml = fuzz.workflow(i)
            let posted = try http("POST", base + "/api/v1/jobs?planner=seq:1&file=fuzz-\(i).yaml", body: yaml)
            #expect(posted.status == 201 || posted.status == 400, "\(posted.status) \(posted.body)")
            if posted.status == 400 { #expect(posted.body.contains("fuzz-\(i).yaml"), "\(posted.body)") }
            if let id = posted.json?["id"] as? String { acknowledged.append(id) }
        }
        #expect(refused > 40 && acknowledged.count > 40, "refused \(refused), acknowledged \(acknowledged.count): the fuzzer should hit both sides")
        // A restart resumes every acknowledged job that is still running.
        Thread.sleep(forTimeInterval: 1)
        cluster.coordinator!.kill9()
        try cluster.startCoordinator()
        try waitUntil(timeout: 30, "the restarted coordinator answers") { (try? cluster.aliveWorkers().count) == 2 }
        let restarted = try RawClient("tcp://127.0.0.1:\(cluster.clientsPort)")
        for id in acknowledged { _ = try restarted.request(.cancel(job: id), timeout: 10) }
        try waitUntil(timeout: 60, "every fuzzed job to end") {
            acknowledged.allSatisfy { id in
                if case .job(let j)? = try? restarted.request(.status(job: id), timeout: 10) { return j.state.isTerminal && j.budget.reservedTokens == 0 }
                return false
            }
        }
        #expect(cluster.coordinator!.process.isRunning, "\(cluster.logs)")
        for id in acknowledged {
            let ledger = try LedgerCheck(database: cluster.database, job: id)
            #expect(ledger.consistent && ledger.doubleSettled == 0, "job \(id): \(ledger)")
        }
    }

    /// Rows a person (or an older version) wrote into the database that the coordinator cannot
    /// trust: each such job is ended `failed` as quarantined on restart, and the coordinator goes
    /// on, resuming the untouched job and finishing it once a worker comes.
    @Test func jobRowsCraftedToFailInResumeAreQuarantined() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        // No worker yet: every job stays running with its attempts queued.
        try cluster.startCoordinator()
        try waitUntil(timeout: 20, "the coordinator answers") { (try? cluster.cli(["workers", "--json"], timeout: 5).code) == 0 }
        var ids: [String] = []
        for _ in 0..<6 {
            let r = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1:smollm2-135m", "--deadline", "5m"], timeout: 30)
            #expect(r.code == 0, "\(r.err)")
            ids.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        try waitUntil(timeout: 20, "attempts queued for every job") {
            let c = try SQLiteConnection(path: cluster.database)
            return try c.query("SELECT COUNT(DISTINCT job) FROM attempts WHERE state = 'queued'")[0].int(0) == 6
        }
        cluster.coordinator!.kill9()
        let c = try SQLiteConnection(path: cluster.database)
        // 0: the poison of the issue: a token cap no arithmetic survives.
        try c.execute("UPDATE job_yaml SET yaml = replace(yaml, 'prompt:', 'maxTokens: 200000000000000000\n    prompt:') WHERE job = '\(ids[0])'")
        // 1: a subtask row the workflow does not have, running.
        try c.execute("INSERT INTO subtasks (job, id, state, attempts, tokens, usd_nano) VALUES ('\(ids[1])', 'ghost', 'running', 1, 0, 0)")
        // 2: a token limit stored as a REAL far past Int.max.
        try c.execute("UPDATE jobs SET limit_tokens = 1e300 WHERE id = '\(ids[2])'")
        // 3: a queued attempt holding more than its cap allows.
        try c.execute("UPDATE attempts SET reserved_tokens = 9223372036854775807 WHERE job = '\(ids[3])'")
        // 4: a deadline that is not a number.
        try c.execute("UPDATE jobs SET deadline = 'soon', limit_usd_nano = -5 WHERE id = '\(ids[4])'")
        // 5 is left alone.
        try cluster.startCoordinator()
        try waitUntil(timeout: 20, "the restarted coordinator answers") { (try? cluster.cli(["workers", "--json"], timeout: 5).code) == 0 }
        for id in ids.prefix(5) {
            let s = try #require(try cluster.status(id), "status of \(id)\n\(cluster.logs)")
            #expect(s["state"] as? String == "failed", "\(id): \(s)")
            #expect((s["reason"] as? String ?? "").hasPrefix("quarantined: "), "\(id): \(s["reason"] ?? "")")
        }
        #expect(["queued", "running"].contains(try cluster.status(ids[5])?["state"] as? String ?? ""), "\(cluster.logs)")
        // The coordinator goes on: with a worker the untouched job finishes, the quarantined ones stay ended.
        try cluster.startWorker("w0")
        try waitUntil(timeout: 60, "the untouched job to succeed") { try cluster.status(ids[5])?["state"] as? String == "succeeded" }
        #expect(cluster.coordinator!.process.isRunning)
        let queued = try SQLiteConnection(path: cluster.database).query(
            "SELECT COUNT(*) FROM attempts WHERE state IN ('queued', 'dispatched') AND job IN ('\(ids.prefix(5).joined(separator: "','"))')")[0].int(0)
        #expect(queued == 0, "quarantined jobs still hold attempts")
    }

    /// A job that makes the coordinator crash (a trap injected where its results are recorded,
    /// debug builds) costs one crash: the restarted coordinator quarantines it instead of resuming
    /// it, and goes on with other jobs. Without the guard every restart would crash again: the
    /// worker keeps the unacknowledged result and hands it over when it registers again.
    @Test func aJobThatCrashedTheCoordinatorIsQuarantinedOnRestart() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        let environment = ["AGENTFLOW_FAULT_TRAP_WORKFLOW": "crashy"]
        let log = { (n: Int) in cluster.dir.appendingPathComponent("coordinator-\(n).log").path }
        cluster.coordinator = try Proc(["coordinator", "--cluster", cluster.clusterFile], log: log(1), environment: environment)
        try cluster.startWorker("w0")
        try waitUntil(timeout: 20, "the worker registered") { (try? cluster.aliveWorkers().count) == 1 }
        let path = cluster.dir.appendingPathComponent("crashy.yaml").path
        try "name: crashy\nbudget: {tokens: 5000}\ndeadline: 1m\nsubtasks:\n  - {id: a, prompt: x}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let submitted = try cluster.cli(["submit", path, "--planner", "seq:1:smollm2-135m"], timeout: 30)
        #expect(submitted.code == 0, "\(submitted.err)")
        let id = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try #require(cluster.coordinator)
        #expect(first.wait(timeout: 20) != nil, "the injected fault did not stop the coordinator")
        #expect(first.process.terminationReason == .uncaughtSignal, "\(first.output)")
        let marker = crashMarkerPath(cluster.database)
        #expect((try? String(contentsOfFile: marker, encoding: .utf8))?.hasPrefix(id + "\n") == true, "no marker naming \(id)\n\(first.output)")
        for n in 2...3 {
            cluster.coordinator = try Proc(["coordinator", "--cluster", cluster.clusterFile], log: log(n), environment: environment)
            try waitUntil(timeout: 20, "restart \(n) answers") { (try? cluster.aliveWorkers().count) == 1 }
            let s = try #require(try cluster.status(id))
            #expect(s["state"] as? String == "failed" && (s["reason"] as? String ?? "").contains("quarantined: the coordinator died of signal"), "\(s)")
            let ok = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1:smollm2-135m", "--wait", "--json"], timeout: 60)
            #expect(ok.code == 0, "\(ok.err)")
            #expect(cluster.coordinator!.process.isRunning, "\(cluster.logs)")
            #expect(!FileManager.default.fileExists(atPath: marker))
            cluster.coordinator!.terminate()
            _ = cluster.coordinator!.wait(timeout: 10)
        }
    }
}

/// Where CrashGuard writes the id of the job a crash happened on (`<database>.crashed-job`).
func crashMarkerPath(_ database: String) -> String { database + ".crashed-job" }
