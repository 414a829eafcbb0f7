import AgentFlowCore
import Foundation
import TestSupport
import Store
import Testing

/// Paths of the package under test.
enum Paths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The `agentflow` binary built by `swift build` (the test command builds it first).
    static var agentflow: String {
        for config in ["debug", "release"] {
            let p = root.appendingPathComponent(".build/\(config)/agentflow").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return root.appendingPathComponent(".build/debug/agentflow").path
    }
}

/// A free TCP port on loopback (bound to port 0, then released).
func freePort() -> Int { freeLoopbackPort() }

/// A real child process of the `agentflow` binary, its output in a log file.
final class Proc: @unchecked Sendable {
    let process = Process()
    let log: String

    /// `environment`: variables added to (or replacing) the test's own. `launcher`: a command
    /// that runs the binary (e.g. `prlimit --nofile=1024:1024 --`), so its pid is the binary's.
    init(_ args: [String], log: String, cwd: URL = Paths.root, environment: [String: String] = [:], launcher: [String] = []) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.executableURL = URL(fileURLWithPath: launcher.first ?? Paths.agentflow)
        process.arguments = launcher.isEmpty ? args : Array(launcher.dropFirst()) + [Paths.agentflow] + args
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.currentDirectoryURL = cwd
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try launch(process)
        try? handle.close()  // the child writes through its own copy
    }

    var pid: Int32 { process.processIdentifier }
    func kill9() {
        kill(pid, SIGKILL)
        process.waitUntilExit()
    }
    func terminate() {
        if process.isRunning { kill(pid, SIGTERM) }
    }
    func wait(timeout: Double) -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.02) }
        return process.isRunning ? nil : process.terminationStatus
    }
    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// The files under `dir` (logs, a database and its WAL, reports), by relative path, whose bytes
/// hold `secret`: where a key must never be written.
func filesHolding(_ secret: String, in dir: URL) -> [String] {
    let files = (FileManager.default.enumerator(atPath: dir.path)?.allObjects as? [String]) ?? []
    return files.filter { FileManager.default.contents(atPath: dir.appendingPathComponent($0).path)?.range(of: Data(secret.utf8)) != nil }
}

/// Runs `agentflow ARGS` to completion; returns exit status, stdout and stderr.
@discardableResult
/// `recordTimeout`: a run killed at the timeout is a test failure (false: the caller expects some).
/// `launcher`: a command that runs the binary (e.g. `ip netns exec NS`), as ``Proc``'s.
func agentflow(_ args: [String], timeout: Double = 120, environment: [String: String] = [:], recordTimeout: Bool = true,
               launcher: [String] = []) throws -> (code: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: launcher.first ?? Paths.agentflow)
    p.arguments = launcher.isEmpty ? args : Array(launcher.dropFirst()) + [Paths.agentflow] + args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    p.currentDirectoryURL = Paths.root
    let dir = NSTemporaryDirectory() + "af-cmd-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: dir + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: dir + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: dir + ".out")
        try? FileManager.default.removeItem(atPath: dir + ".err")
    }
    let (out, err) = (try FileHandle(forWritingTo: URL(fileURLWithPath: dir + ".out")), try FileHandle(forWritingTo: URL(fileURLWithPath: dir + ".err")))
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try launch(p)
    // The child holds its own copies; the test's would stay open for as long as the Process
    // object lives (see `launch`: leaked descriptors are what crashed Process.run).
    try? out.close()
    try? err.close()
    let end = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        if recordTimeout { Issue.record("agentflow \(args.joined(separator: " ")) timed out after \(timeout)s") }
    }
    // Also lets Foundation drop the run-loop source that keeps the Process (and its handles) alive.
    p.waitUntilExit()
    return (p.terminationStatus,
            (try? String(contentsOfFile: dir + ".out", encoding: .utf8)) ?? "",
            (try? String(contentsOfFile: dir + ".err", encoding: .utf8)) ?? "")
}

/// Runs a short command to completion in `directory`, stdin from `input` (none: empty), with
/// `environment` instead of the test's own when given; its exit status and everything it
/// printed (stdout and stderr together).
func runTool(_ executable: String, _ arguments: [String], in directory: URL = Paths.root, environment: [String: String]? = nil,
             input: String? = nil) throws -> (code: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    p.currentDirectoryURL = directory
    if let environment { p.environment = environment }
    let out = Pipe(), inPipe = Pipe()
    p.standardOutput = out
    p.standardError = out
    p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
    try launch(p)
    if let input {
        inPipe.fileHandleForWriting.write(Data(input.utf8))
        try inPipe.fileHandleForWriting.close()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A temporary cluster: a coordinator and worker processes on free loopback ports,
/// a real SQLite file, simulated models.
final class TestCluster: @unchecked Sendable {
    let dir: URL
    let clusterFile: String
    let database: String
    let workersPort = freePort()
    let clientsPort = freePort()
    var coordinator: Proc?
    var workers: [String: Proc] = [:]
    let workerNames: [String]

    init(workers: [(name: String, model: String, slots: Int)], timeScale: Double, heartbeat: String = "1s") throws {
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        clusterFile = dir.appendingPathComponent("cluster.yaml").path
        database = dir.appendingPathComponent("agentflow.db").path
        workerNames = workers.map(\.name)
        var yaml = """
        coordinator:
          workers: tcp://127.0.0.1:\(workersPort)
          clients: tcp://127.0.0.1:\(clientsPort)
          database: \(database)
          heartbeat: \(heartbeat)
          liveness: 3
        models:
          - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}
          - {name: gemma3-270m,  price: {input: 0.04, output: 0.10}, context: 8192}
        workers:

        """
        for (i, w) in workers.enumerated() {
            yaml += "  - {name: \(w.name), gpus: [\(i)], model: \(w.model), slots: \(w.slots), backend: {kind: sim, timeScale: \(timeScale), seed: \(i + 1)}}\n"
        }
        try yaml.write(toFile: clusterFile, atomically: true, encoding: .utf8)
    }

    func startCoordinator() throws {
        coordinator = try Proc(["coordinator", "--cluster", clusterFile], log: dir.appendingPathComponent("coordinator-\(Date().timeIntervalSince1970).log").path)
    }

    func startWorker(_ name: String) throws {
        workers[name] = try Proc(["worker", "--name", name, "--cluster", clusterFile, "--verbose"], log: dir.appendingPathComponent("\(name).log").path)
    }

    func startAll() throws {
        try startCoordinator()
        for n in workerNames { try startWorker(n) }
        try waitUntil(timeout: 20, "all workers registered") { (try? self.aliveWorkers().count) == self.workerNames.count }
    }

    func cli(_ args: [String], timeout: Double = 120) throws -> (code: Int32, out: String, err: String) {
        try agentflow(args + ["--cluster", clusterFile], timeout: timeout)
    }

    func aliveWorkers() throws -> [[String: Any]] {
        let r = try cli(["workers", "--json"], timeout: 10)
        guard r.code == 0, let list = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]] else { return [] }
        return list.filter { $0["state"] as? String == "alive" }
    }

    func status(_ job: String) throws -> [String: Any]? {
        let r = try cli(["status", job, "--json"], timeout: 10)
        guard r.code == 0 else { return nil }
        return try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
    }

    func stop() {
        for w in workers.values { w.terminate() }
        coordinator?.terminate()
        for w in workers.values { if w.wait(timeout: 5) == nil { w.kill9() } }
        if let c = coordinator, c.wait(timeout: 5) == nil { c.kill9() }
    }

    /// Every log, for failure messages.
    var logs: String {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }) ?? []
        return files.sorted().map { f in "== \(f)\n" + ((try? String(contentsOfFile: dir.appendingPathComponent(f).path, encoding: .utf8)) ?? "") }.joined(separator: "\n")
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: dir)
    }
}

func waitUntil(timeout: Double, _ what: String, _ condition: () throws -> Bool) throws {
    let end = Date().addingTimeInterval(timeout)
    while Date() < end {
        if try condition() { return }
        Thread.sleep(forTimeInterval: 0.1)
    }
    throw WaitTimeout(what: what)
}

struct WaitTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Ledger and job totals straight from the SQLite file.
struct LedgerCheck {
    var spentTokens: Int
    var ledgerTokens: Int
    var limitTokens: Int?
    var spentUSDNano: Int
    var ledgerUSDNano: Int
    var limitUSDNano: Int?
    var lostAttempts: Int
    var attemptRows: Int
    /// Attempts with more than one settlement: charged twice (a role charged twice), charged
    /// and lost, lost twice, or ledger rows for an attempt that is not settled in the attempts
    /// table at all.
    var doubleSettled: Int

    init(database: String, job: String) throws {
        let c = try SQLiteConnection(path: database)
        let j = try c.query("SELECT spent_tokens, limit_tokens, spent_usd_nano, limit_usd_nano FROM jobs WHERE id = ?", job)[0]
        spentTokens = j.int(0)
        limitTokens = j.optionalInt(1)
        spentUSDNano = j.int(2)
        limitUSDNano = j.optionalInt(3)
        let l = try c.query("SELECT COALESCE(SUM(tokens_in + tokens_out), 0), COALESCE(SUM(usd_nano), 0) FROM ledger WHERE job = ?", job)[0]
        ledgerTokens = l.int(0)
        ledgerUSDNano = l.int(1)
        lostAttempts = try c.query("SELECT COUNT(*) FROM attempts WHERE job = ? AND state = 'lost'", job)[0].int(0)
        attemptRows = try c.query("SELECT COUNT(*) FROM attempts WHERE job = ?", job)[0].int(0)
        // One settlement writes one row per role (charge), or one row (clamped, lost). So a row
        // count above the distinct roles, or more than one kind, is a second settlement.
        doubleSettled = try c.query("""
            SELECT COUNT(*) FROM (SELECT subtask, n, COUNT(DISTINCT kind) AS kinds, COUNT(*) AS rows, COUNT(DISTINCT role) AS roles
              FROM ledger WHERE job = ? GROUP BY subtask, n HAVING kinds > 1 OR rows > roles)
            """, job)[0].int(0)
            + c.query("""
            SELECT COUNT(*) FROM ledger l LEFT JOIN attempts a ON a.job = l.job AND a.subtask = l.subtask AND a.n = l.n
              WHERE l.job = ? AND (a.state IS NULL OR a.state IN ('queued', 'dispatched'))
            """, job)[0].int(0)
    }

    var consistent: Bool {
        spentTokens == ledgerTokens && spentUSDNano == ledgerUSDNano
            && (limitTokens.map { spentTokens <= $0 } ?? true) && (limitUSDNano.map { spentUSDNano <= $0 } ?? true)
    }
}
