import AgentFlowCore
import ArgumentParser
import Coordinator
import Foundation
import Wire
import Worker
import ZeroMQ

/// Throughput of the whole dispatch path: coordinator → ZeroMQ → workers → results, with every
/// state change persisted in SQLite. Simulated model with zero latency, seq:1, all attempts pass.
struct BenchDispatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch", abstract: "Benchmark attempts/s and dispatch latency end to end (sim backend, zero latency).")

    @Option(name: .long, help: "Worker processes (threads here, each with its own ZeroMQ socket).") var workers = 8
    @Option(name: .long, help: "Slots per worker.") var slots = 4
    @Option(name: .long, help: "Jobs submitted at once.") var jobs = 4
    @Option(name: .long, help: "Independent subtasks per job (one attempt each).") var subtasks = 5000
    @Option(name: .long, help: "SQLite file (default: a fresh temporary file).") var database: String?
    @Flag(name: .long, help: "Print JSON.") var json = false

    struct Result: Encodable {
        var workers: Int
        var slots: Int
        var attempts: Int
        var seconds: Double
        var attemptsPerSecond: Double
        var roundTripP50ms: Double
        var roundTripP99ms: Double
        var sqliteFile: String
        var ledgerRows: Int
        /// Coordinator loop iterations, and attempts recorded per iteration on average.
        var coordinatorLoops: Int
    }

    func run() throws {
        let model = ModelSpec(name: "bench-model", priceInput: 0.1, priceOutput: 0.2, context: 4096)
        let workerSpecs = (0..<workers).map {
            WorkerSpec(name: "bench\($0)", gpus: [$0], model: model.name, backend: .sim(timeScale: 0, seed: 1), slots: slots)
        }
        let cluster = Cluster(models: [model], workers: workerSpecs)
        let db = database ?? NSTemporaryDirectory() + "agentflow-bench-\(ProcessInfo.processInfo.processIdentifier).db"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        var options = Coordinator.Options(cluster: cluster)
        options.workersEndpoint = "tcp://127.0.0.1:*"
        options.clientsEndpoint = "tcp://127.0.0.1:*"
        options.database = db
        options.recordRoundTrips = true
        let context = ZMQContext()
        let coordinator = CoordinatorThread(cluster: cluster, options: options, context: context)
        let endpoints = try coordinator.waitUntilBound()
        let client = try CoordinatorClient(endpoint: endpoints.clients, context: context)
        var yaml = "name: bench\ndeadline: 1h\nbudget: {tokens: 1000000000}\nsubtasks:\n"
        for i in 0..<subtasks {
            yaml += "  - {id: s\(i), prompt: p, estimates: {bench-model: {success: 1, tokens: 100, seconds: 0}}}\n"
        }
        // Submit first (parsing, planning and reserving happen now), then start the workers and
        // time from there: the run measures the dispatch path, not YAML parsing.
        var ids: [String] = []
        for _ in 0..<jobs {
            let request = SubmitRequest(yaml: yaml, file: "bench.yaml", deadline: 3600, planner: "seq:1", seed: 1)
            ids.append(try client.submit(request))
        }
        _ = try client.request(.workers, timeout: 120)
        let started = Date()
        let threads = workerSpecs.map {
            WorkerThread(info: workerInfo($0), options: WorkerProcess.Options(endpoint: endpoints.workers),
                         backend: SimBackend(timeScale: 0, seed: 1), context: context)
        }
        var reports: [JobReport] = []
        for id in ids {
            // Status replies carry every subtask; poll rarely so the coordinator's loop is not
            // busy encoding them (endedAt is stamped by the coordinator, so timing stays exact).
            var r = try client.job(.status(job: id))
            while !r.state.isTerminal {
                Thread.sleep(forTimeInterval: 1)
                r = try client.job(.status(job: id))
            }
            reports.append(r)
        }
        for t in threads { t.shutdown() }
        let stats = coordinator.shutdown() ?? CoordinatorStats()
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let ends = reports.compactMap { $0.endedAt.flatMap { iso.date(from: $0) } }
        let seconds = (ends.max() ?? Date()).timeIntervalSince(started)
        let total = reports.reduce(0) { $0 + $1.subtasks.reduce(0) { $0 + $1.attempts } }
        let failedJobs = reports.filter { $0.state != .succeeded }
        if !failedJobs.isEmpty { throw CLIError(code: 1, message: "bench job ended \(failedJobs[0].state.rawValue): \(failedJobs[0].reason)") }
        // Percentiles from the coordinator's fixed-bucket histogram (within about 12%).
        func pct(_ p: Double) -> Double { stats.roundTrips.percentile(p) * 1000 }
        let ledgerRows = (try? countLedgerRows(db)) ?? -1
        let result = Result(workers: workers, slots: slots, attempts: total, seconds: seconds, attemptsPerSecond: Double(total) / max(seconds, 1e-9),
                            roundTripP50ms: pct(0.5), roundTripP99ms: pct(0.99), sqliteFile: db, ledgerRows: ledgerRows,
                            coordinatorLoops: stats.loops)
        if json {
            printJSON(result)
        } else {
            print("dispatch: \(workers) workers × \(slots) slots, \(jobs) jobs × \(subtasks) subtasks, sim backend (zero latency), seq:1")
            print(String(format: "  %d attempts in %.2f s = %.0f attempts/s", total, seconds, result.attemptsPerSecond))
            print(String(format: "  dispatch→result round trip: p50 %.2f ms, p99 %.2f ms", result.roundTripP50ms, result.roundTripP99ms))
            print(String(format: "  coordinator: %d loop iterations, %.1f results per iteration", stats.loops, Double(stats.results) / Double(max(stats.loops, 1))))
            print("  persisted: \(db) (\(ledgerRows) ledger rows)")
        }
        if database == nil { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) } }
    }
}

import Store

func countLedgerRows(_ path: String) throws -> Int {
    let c = try SQLiteConnection(path: path)
    return try c.query("SELECT COUNT(*) FROM ledger").first?.int(0) ?? 0
}
