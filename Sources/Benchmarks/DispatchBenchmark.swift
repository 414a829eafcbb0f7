import AgentFlowCore
import Coordinator
import Foundation
import Observability
import Store
import Wire
import Worker
import ZeroMQ

/// `agentflow bench dispatch`: throughput of the whole dispatch path — coordinator → ZeroMQ →
/// workers → results, with every state change persisted in SQLite (a real file, fsynced) — on
/// the sim backend with zero latency, `seq:1`, every attempt passing.
public enum DispatchBenchmark {
    public struct Result: Encodable, Sendable {
        public var workers: Int
        public var slots: Int
        /// Jobs waiting in the queue the whole run (``run(_:subtasks:commitLinger:queued:)``).
        public var queuedJobs: Int
        public var attempts: Int
        public var seconds: Double
        /// CPU seconds of the whole process (the coordinator's threads, the simulated workers,
        /// ZeroMQ's I/O thread) from the workers' start to the jobs' end, and per attempt: on a
        /// 2-core machine the simulated workers share the cores with the coordinator.
        public var processCPUSeconds: Double
        public var cpuMicrosecondsPerAttempt: Double
        /// The same CPU by the threads' roles (coordinator loop, store writer, ZeroMQ I/O,
        /// workers, other), in µs per attempt, largest first; empty where `/proc` cannot say.
        public var cpuByThread: [ThreadCPUShare]
        public var attemptsPerSecond: Double
        public var roundTripP50ms: Double
        public var roundTripP99ms: Double
        /// From when the coordinator began reading the batch whose events freed the slot (the
        /// result, at the latest) to the dispatch's hand-off to ZeroMQ, its rows committed.
        public var dispatchLatencyP50ms: Double
        public var dispatchLatencyP99ms: Double
        /// At the workers, per slot: from an attempt's end to the start of the slot's next
        /// attempt (with prefetch it was waiting there already; without, it comes from the
        /// coordinator after the result's round trip and commit). Slots that start idle and the
        /// end of the run are not counted.
        public var slotIdleP50ms: Double
        public var slotIdleP99ms: Double
        public var slotIdleMeanMs: Double
        /// Attempts per slot the coordinator sent beyond the free slots (`coordinator.prefetch`).
        public var prefetch: Int
        /// Means in ms (the percentiles are bucket bounds): dispatch latency, round trip, and the
        /// parts of a dispatching batch's time (``CoordinatorStats/CommitStages``).
        public var dispatchLatencyMeanMs: Double
        public var roundTripMeanMs: Double
        public var gatheringMeanMs: Double
        public var decideMeanMs: Double
        public var writerWakeMeanMs: Double
        public var applyMeanMs: Double
        public var commitMeanMs: Double
        public var loopWakeMeanMs: Double
        /// The group-commit linger the coordinator ran with, in µs.
        public var commitLingerUs: Double
        public var sqliteFile: String
        public var ledgerRows: Int
        /// Coordinator loop iterations, and results recorded per iteration on average.
        public var coordinatorLoops: Int
        public var resultsPerLoop: Double
        /// Transactions committed while the loop ran (one fsync each on SQLite).
        public var commits: Int
        /// PostgreSQL: the leader's commits and round trips to the database (0 on SQLite).
        public var databaseCommits: Int
        public var databaseRoundTrips: Int
        /// Seconds the leader's loop waited on PostgreSQL in its transactions (0 on SQLite).
        public var databaseWaitSeconds: Double
    }

    /// Runs `settings.jobs` jobs of `subtasks` independent subtasks each (one attempt each);
    /// `commitLinger` replaces the coordinator's default (``Coordinator/Options/commitLinger``).
    /// `prefetch` replaces the product's `coordinator.prefetch`. With `queued` > 0, that many
    /// jobs wait in the queue the whole run, untimed: they may use only another model, whose one
    /// worker has one slot held for an hour (as in `bench intake`), so the loop carries them every
    /// iteration while the timed jobs dispatch — does dispatch stay flat as the queue grows.
    public static func run(_ settings: EmbeddedBenchSettings, subtasks: Int, commitLinger: Duration? = nil, prefetch: Int? = nil,
                           queued: Int = 0) throws -> Result {
        let bench = try EmbeddedBenchCluster(name: "bench", workers: settings.workers, slots: settings.slots, database: settings.database,
                                             recordRoundTrips: true, commitLinger: commitLinger, prefetch: prefetch, heldWorker: queued > 0)
        defer { bench.removeDatabase() }
        let (db, coordinator) = (bench.database, bench.coordinator)
        let client = try BenchClient(endpoint: bench.endpoints.clients, context: bench.context)
        var held: [WorkerThread] = []
        defer { for t in held { t.shutdown() } }
        if queued > 0 {
            held = bench.startWorkers(model: EmbeddedBenchCluster.heldModelName)
            let request = SubmitRequest(yaml: Self.heldWorkflow, file: "held.yaml", planner: "mcpp", seed: 1)
            _ = try IntakeBenchmark.submitConcurrently(queued, clients: 8, submit: .socket(bench.endpoints.clients, request), context: bench.context)
        }
        var yaml = "name: bench\ndeadline: 1h\nbudget: {tokens: 1000000000}\nmodels: [\(EmbeddedBenchCluster.modelName)]\nsubtasks:\n"
        for i in 0..<subtasks {
            yaml += "  - {id: s\(i), prompt: p, estimates: {bench-model: {success: 1, tokens: 100, seconds: 0}}}\n"
        }
        // Submit first (parsing, planning and reserving happen now), then start the workers and
        // time from there: the run measures the dispatch path, not YAML parsing.
        var ids: [String] = []
        for _ in 0..<settings.jobs {
            ids.append(try client.submit(SubmitRequest(yaml: yaml, file: "bench.yaml", deadline: 3600, planner: "seq:1", seed: 1)))
        }
        _ = try client.request(.workers, timeout: 120)
        let started = Date()
        let cpuAtStart = Self.processCPUSeconds()
        let threadsAtStart = ThreadCPU.read()
        let threads = bench.startWorkers(model: EmbeddedBenchCluster.modelName)
        // Wait for the jobs' end by their event windows, not their status: a status report of
        // a 5,000-subtask job reads and encodes every subtask (perf: about 0.4 s of CPU each on
        // the query thread, more than the loop's own share of the two cores while polled once a
        // second). The reports are read once, after the end; the time is the coordinator's
        // `endedAt`, so the polling interval does not change it.
        var running = ids
        while !running.isEmpty {
            Thread.sleep(forTimeInterval: 0.05)
            running = try running.filter { try client.isLive($0) }
        }
        let cpu = Self.processCPUSeconds() - cpuAtStart
        let byThread = ThreadCPU.byRole(from: threadsAtStart, to: ThreadCPU.read())
        let reports = try ids.map { try client.job($0) }
        // The waiting jobs are all still waiting: the queue was as deep as claimed the whole run.
        if queued > 0, case let waiting = try client.unendedJobs(), waiting != queued {
            throw BenchmarkFailure(description: "\(waiting) jobs were waiting at the end, not the \(queued) the run claims")
        }
        for t in threads { t.shutdown() }
        var idle = LatencyHistogram()
        for t in threads { idle.merge(t.slotIdle.withLock { $0 }) }
        let stats = coordinator.shutdown() ?? CoordinatorStats()
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let ends = reports.compactMap { $0.endedAt.flatMap { iso.date(from: $0) } }
        let seconds = (ends.max() ?? Date()).timeIntervalSince(started)
        let total = reports.reduce(0) { $0 + $1.subtasks.reduce(0) { $0 + $1.attempts } }
        if let failed = reports.first(where: { $0.state != .succeeded }) {
            throw BenchmarkFailure(description: "bench job ended \(failed.state.rawValue): \(failed.reason)")
        }
        // Percentiles from the coordinator's fixed-bucket histogram (within about 12%).
        func pct(_ p: Double) -> Double { stats.roundTrips.percentile(p) * 1000 }
        func latency(_ p: Double) -> Double { stats.dispatchLatency.percentile(p) * 1000 }
        let ledgerRows = (try? (PostgresDatabase.isURL(db) ? Store(postgres: db) : Store(readingOnly: db)).connection.query("SELECT COUNT(*) FROM ledger").first?.int(0)) ?? -1
        return Result(workers: settings.workers, slots: settings.slots, queuedJobs: queued, attempts: total, seconds: seconds,
                      processCPUSeconds: cpu, cpuMicrosecondsPerAttempt: cpu * 1e6 / Double(max(total, 1)),
                      cpuByThread: byThread.map { ThreadCPUShare(role: $0.role, threads: $0.threads,
                                                                 microsecondsPerAttempt: $0.seconds * 1e6 / Double(max(total, 1))) },
                      attemptsPerSecond: Double(total) / max(seconds, 1e-9), roundTripP50ms: pct(0.5), roundTripP99ms: pct(0.99),
                      dispatchLatencyP50ms: latency(0.5), dispatchLatencyP99ms: latency(0.99),
                      slotIdleP50ms: idle.percentile(0.5) * 1000, slotIdleP99ms: idle.percentile(0.99) * 1000, slotIdleMeanMs: idle.mean * 1000,
                      prefetch: prefetch ?? CoordinatorSpec().prefetch,
                      dispatchLatencyMeanMs: stats.dispatchLatency.mean * 1000, roundTripMeanMs: stats.roundTrips.mean * 1000,
                      gatheringMeanMs: stats.commitStages.gathering.mean * 1000, decideMeanMs: stats.commitStages.decide.mean * 1000,
                      writerWakeMeanMs: stats.commitStages.writerWake.mean * 1000, applyMeanMs: stats.commitStages.apply.mean * 1000,
                      commitMeanMs: stats.commitStages.commit.mean * 1000,
                      loopWakeMeanMs: stats.commitStages.loopWake.mean * 1000,
                      commitLingerUs: (commitLinger ?? Coordinator.Options.defaultCommitLinger).seconds * 1e6,
                      sqliteFile: db,
                      ledgerRows: ledgerRows, coordinatorLoops: stats.loops, resultsPerLoop: Double(stats.results) / Double(max(stats.loops, 1)),
                      commits: stats.commits,
                      databaseCommits: stats.databaseCommits, databaseRoundTrips: stats.databaseRoundTrips,
                      databaseWaitSeconds: stats.databaseWaitSeconds)
    }

    /// A waiting job of `--queued`: two subtasks that may use only the held worker's model.
    static let heldWorkflow = """
        name: held
        deadline: 24h
        budget: {usd: 5}
        models: [\(EmbeddedBenchCluster.heldModelName)]
        subtasks:
          - {id: first, prompt: "wait", estimates: {\(EmbeddedBenchCluster.heldModelName): {success: 0.9, tokens: 500, seconds: 3600}}}
          - {id: second, prompt: "wait", needs: [first], estimates: {\(EmbeddedBenchCluster.heldModelName): {success: 0.9, tokens: 500, seconds: 3600}}}
        """

    /// One role's share of ``Result/cpuByThread``.
    public struct ThreadCPUShare: Encodable, Sendable {
        public var role: String
        public var threads: Int
        public var microsecondsPerAttempt: Double
    }

    /// The result as lines for a person.
    public static func render(_ r: Result, _ s: EmbeddedBenchSettings, subtasks: Int) -> String {
        let waiting = r.queuedJobs > 0 ? ", \(r.queuedJobs) other jobs waiting in the queue" : ""
        var lines = [
            "dispatch: \(s.workers) workers × \(s.slots) slots, \(s.jobs) jobs × \(subtasks) subtasks, sim backend (zero latency), seq:1, prefetch \(r.prefetch)\(waiting)",
            String(format: "  %d attempts in %.2f s = %.0f attempts/s", r.attempts, r.seconds, r.attemptsPerSecond),
            String(format: "  process CPU while they ran: %.2f s, %.0f µs per attempt (coordinator, simulated workers and ZeroMQ together)",
                   r.processCPUSeconds, r.cpuMicrosecondsPerAttempt),
        ]
        if !r.cpuByThread.isEmpty {
            lines.append("  CPU per attempt by thread: " + r.cpuByThread.map { share in
                (share.threads > 1 ? "\(share.role) (\(share.threads) threads)" : share.role) + String(format: " %.0f µs", share.microsecondsPerAttempt)
            }.joined(separator: ", "))
        }
        lines += [
            String(format: "  dispatch latency at the coordinator (result read → replenishing dispatch sent, rows committed): p50 %.2f ms, p99 %.2f ms, mean %.2f ms",
                   r.dispatchLatencyP50ms, r.dispatchLatencyP99ms, r.dispatchLatencyMeanMs),
            String(format: "  slot idle gap at the worker (its attempt ended → its next attempt started): p50 %.3f ms, p99 %.3f ms, mean %.3f ms",
                   r.slotIdleP50ms, r.slotIdleP99ms, r.slotIdleMeanMs),
            String(format: "  dispatch→result round trip: p50 %.2f ms, p99 %.2f ms, mean %.2f ms", r.roundTripP50ms, r.roundTripP99ms, r.roundTripMeanMs),
            String(format: "  per dispatching batch (means): gathering %.2f ms (commit in flight, linger %.0f µs) → decide %.2f → writer wakes %.2f → apply %.2f → commit %.2f → loop sends %.2f ms",
                   r.gatheringMeanMs, r.commitLingerUs, r.decideMeanMs, r.writerWakeMeanMs, r.applyMeanMs, r.commitMeanMs, r.loopWakeMeanMs),
            String(format: "  coordinator: %d loop iterations, %.1f results per iteration; %d commits, %.1f attempts per commit", r.coordinatorLoops,
                   r.resultsPerLoop, r.commits, Double(r.attempts) / Double(max(r.commits, 1))),
            "  persisted: \(r.sqliteFile) (\(r.ledgerRows) ledger rows)",
        ]
        if r.databaseCommits > 0 {
            lines.append(String(format: "  PostgreSQL: %d commits (%.1f attempts per commit), %d round trips (%.2f per commit)", r.databaseCommits,
                                Double(r.attempts) / Double(r.databaseCommits), r.databaseRoundTrips,
                                Double(r.databaseRoundTrips) / Double(r.databaseCommits)))
            // The submissions' commits (before the timed part) are in the total too.
            lines.append(String(format: "  waiting on PostgreSQL: %.2f s in all, %.2f ms per commit on average (submissions included)", r.databaseWaitSeconds,
                                r.databaseWaitSeconds * 1000 / Double(r.databaseCommits)))
        }
        return lines.joined(separator: "\n")
    }

    /// User + system CPU seconds this process has used.
    static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
