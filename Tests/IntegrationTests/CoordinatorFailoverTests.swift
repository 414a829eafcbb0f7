import Foundation
import Store
import Testing

/// Coordinator high availability, end to end (issue 21 item 4): a PostgreSQL primary with a
/// synchronous standby, three real coordinators on it (one leads by the lease, restarted like
/// systemd's Restart=always when they exit), two worker processes of simulated GPUs that know
/// all three, and a client submitting 100 jobs through the three client endpoints, logging each
/// acknowledged one. While they run: `kill -9` the leader, then SIGSTOP the new leader past its
/// lease and SIGCONT it (it must step down, exit 75, having committed nothing). After each, the
/// next one takes over; at the end every acknowledged job is there and ended, no attempt ran
/// twice, and every job's spend is its ledger's and within its budget. Prints the failover
/// times (the old leader's last dispatch → the new one's first).
@Suite(.serialized) struct CoordinatorFailoverTests {
    static let lease = 5.0

    final class Fleet: @unchecked Sendable {
        let dir: URL
        let clusterFile: String
        let url: String
        let workerEndpoints: [String]
        let clientEndpoints: [String]
        var coordinators: [Proc?] = [nil, nil, nil]
        var exits: [(index: Int, code: Int32)] = []
        var workers: [Proc] = []
        var restarts = 0

        init(url: String) throws {
            dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-ha-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            self.url = url
            let ports = (0..<6).map { _ in freePort() }
            workerEndpoints = (0..<3).map { "tcp://127.0.0.1:\(ports[$0])" }
            clientEndpoints = (0..<3).map { "tcp://127.0.0.1:\(ports[3 + $0])" }
            clusterFile = dir.appendingPathComponent("cluster.yaml").path
            try """
            coordinator:
              workers: \(workerEndpoints[0])
              clients: \(clientEndpoints[0])
              database: \(url)
              lease: \(Int(CoordinatorFailoverTests.lease))s
              heartbeat: 1s
              liveness: 3
            models:
              - {name: smollm2-135m, price: {input: 0.02, output: 0.05}, context: 8192}
              - {name: gemma3-270m,  price: {input: 0.04, output: 0.10}, context: 8192}
            workers:
              - {name: node1, gpus: [0, 1], model: smollm2-135m, slots: 8, backend: {kind: sim, timeScale: 0.5, seed: 1}}
              - {name: node2, gpus: [2, 3], model: gemma3-270m, slots: 8, backend: {kind: sim, timeScale: 0.5, seed: 2}}
            """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        }

        func startCoordinator(_ i: Int) throws {
            coordinators[i] = try Proc(["coordinator", "--cluster", clusterFile, "--bind-workers", workerEndpoints[i], "--coordinator", clientEndpoints[i]],
                                       log: dir.appendingPathComponent("coordinator\(i)-\(restarts).log").path)
            restarts += 1
        }

        /// Starts again every coordinator that exited (a supervisor's job), noting how.
        func supervise() throws {
            for i in 0..<3 {
                guard let c = coordinators[i], !c.process.isRunning else { continue }
                exits.append((i, c.process.terminationStatus))
                try startCoordinator(i)
            }
        }

        func startWorkers() throws {
            for name in ["node1", "node2"] {
                workers.append(try Proc(["worker", "--name", name, "--cluster", clusterFile, "--coordinator", workerEndpoints.joined(separator: ","), "--verbose"],
                                        log: dir.appendingPathComponent("\(name).log").path))
            }
        }

        func stop() {
            for w in workers { w.terminate() }
            for c in coordinators.compactMap({ $0 }) { c.terminate() }
            for p in workers + coordinators.compactMap({ $0 }) where p.wait(timeout: 10) == nil { p.kill9() }
        }

        var logs: String {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".log") }) ?? []
            return files.sorted().map { f in "== \(f)\n" + String(((try? String(contentsOfFile: dir.appendingPathComponent(f).path, encoding: .utf8)) ?? "").suffix(3000)) }
                .joined(separator: "\n")
        }
    }

    /// The job ids the client got, in order.
    final class Acknowledged: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [String] = []
        func append(_ id: String) { lock.withLock { list.append(id) } }
        var ids: [String] { lock.withLock { list } }
    }

    /// The leading coordinator's pid and epoch, from the lease row (nil: none leads now).
    static func leader(_ db: PostgresConnection) throws -> (pid: Int32, epoch: Int)? {
        // Before the first coordinator migrated the database there is no lease row yet.
        guard let r = try? db.query("SELECT holder, epoch, expires > statement_timestamp() FROM coordinator_lease", timeout: 10).first, r.int(2) == 1,
              let pid = r.string(0).split(separator: " ").last.flatMap({ Int32($0) }) else { return nil }
        return (pid, r.int(1))
    }

    /// Seconds from the last dispatch at or before `t` to the first one after it.
    static func dispatchGap(_ db: PostgresConnection, around t: Double) throws -> Double? {
        let r = try db.query("""
            SELECT (SELECT MAX(dispatched_at) FROM attempts WHERE dispatched_at <= $1::float8),
                   (SELECT MIN(dispatched_at) FROM attempts WHERE dispatched_at > $1::float8)
            """, t, timeout: 10).first
        guard let r, let before = r.optionalDouble(0), let after = r.optionalDouble(1) else { return nil }
        return after - before
    }

    @Test(.timeLimit(.minutes(5))) func killAndFreezeTheLeaderLosesNothing() throws {
        let cluster = try PostgresTestCluster.start(standby: true).get()
        let url = try cluster.database()
        let fleet = try Fleet(url: url)
        defer {
            fleet.stop()
            try? FileManager.default.removeItem(at: fleet.dir)
            _ = try? Process.run(URL(fileURLWithPath: "/bin/bash"), arguments: [Paths.root.appendingPathComponent("tools/pg-test-cluster.sh").path, "stop", cluster.dir])
        }
        for i in 0..<3 { try fleet.startCoordinator(i) }
        let db = try PostgresConnection(url: url, timeout: 10)
        try waitUntil(timeout: 60, "a coordinator to lead") { try Self.leader(db) != nil }
        try fleet.startWorkers()

        // The client: 100 jobs, each logged once the coordinator acknowledged it.
        let workflow = fleet.dir.appendingPathComponent("two.yaml").path
        try """
        name: two
        budget: {tokens: 40000, usd: 0.05}
        deadline: 10m
        subtasks:
          - id: a
            prompt: "Write a Python function f() -> int returning 1."
            estimates: {smollm2-135m: {success: 0.7, tokens: 300, seconds: 4}, gemma3-270m: {success: 0.8, tokens: 300, seconds: 4}}
          - id: b
            needs: [a]
            prompt: "Write a Python function g() -> int returning f() + 1."
            estimates: {smollm2-135m: {success: 0.7, tokens: 300, seconds: 4}, gemma3-270m: {success: 0.8, tokens: 300, seconds: 4}}
        """.write(toFile: workflow, atomically: true, encoding: .utf8)
        let acknowledged = Acknowledged()
        let submitting = Thread {
            for _ in 0..<100 {
                for _ in 0..<20 {
                    // A submission sent to a leader that then died or froze gets no answer: the
                    // client gives up on it (it is not acknowledged) and submits again.
                    let r = try? agentflow(["submit", workflow, "--cluster", fleet.clusterFile, "--coordinator", fleet.clientEndpoints.joined(separator: ",")],
                                           timeout: 30, recordTimeout: false)
                    if let r, r.code == 0 {
                        acknowledged.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
                        break
                    }
                    Thread.sleep(forTimeInterval: 0.5)
                }
            }
        }
        submitting.start()
        var failovers: [(what: String, gap: Double)] = []
        do {
            // 1. kill -9 the leader once jobs are running.
            try waitUntil(timeout: 90, "30 acknowledged jobs") { acknowledged.ids.count >= 30 }
            guard let first = try Self.leader(db) else { throw WaitTimeout(what: "a leader") }
            kill(first.pid, SIGKILL)
            let killedAt = Date().timeIntervalSince1970
            try waitUntil(timeout: 30, "a new leader after kill -9") {
                try fleet.supervise()
                return try Self.leader(db).map { $0.epoch > first.epoch } ?? false
            }
            try waitUntil(timeout: 30, "dispatching again after kill -9") { try Self.dispatchGap(db, around: killedAt) != nil }
            failovers.append(("kill -9", try Self.dispatchGap(db, around: killedAt)!))

            // 2. Freeze the new leader past its lease, then let it wake up.
            try waitUntil(timeout: 90, "60 acknowledged jobs") { acknowledged.ids.count >= 60 }
            guard let second = try Self.leader(db) else { throw WaitTimeout(what: "a leader") }
            kill(second.pid, SIGSTOP)
            let frozenAt = Date().timeIntervalSince1970
            try waitUntil(timeout: 30, "a new leader while the old one is frozen") {
                try fleet.supervise()
                return try Self.leader(db).map { $0.epoch > second.epoch } ?? false
            }
            try waitUntil(timeout: 30, "dispatching again while the old leader is frozen") { try Self.dispatchGap(db, around: frozenAt) != nil }
            failovers.append(("SIGSTOP", try Self.dispatchGap(db, around: frozenAt)!))
            let frozen = fleet.coordinators.firstIndex { $0?.pid == second.pid }!
            Thread.sleep(forTimeInterval: 2)
            kill(second.pid, SIGCONT)
            // It wakes up, finds the lease gone at its next commit, and steps down.
            #expect(fleet.coordinators[frozen]!.wait(timeout: 20) == 75, "the frozen leader steps down with exit 75")
            #expect(fleet.coordinators[frozen]!.output.contains("lease lost"))
            try fleet.supervise()

            // 3. Every acknowledged job ends.
            try waitUntil(timeout: 150, "the client to finish") { submitting.isFinished }
            let ids = acknowledged.ids
            try waitUntil(timeout: 150, "every acknowledged job to end") {
                try fleet.supervise()
                let open = try db.query("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')", timeout: 10).first?.int(0) ?? 1
                return open == 0
            }
            #expect(ids.count == 100, "the client got 100 acknowledgements")
            let stored = Set(try db.query("SELECT id FROM jobs", timeout: 10).map { $0.string(0) })
            for id in ids { #expect(stored.contains(id), "acknowledged job \(id) is stored") }
            // Spend: the ledger's, within the budget.
            let bad = try db.query("""
                SELECT j.id, j.spent_tokens, j.limit_tokens, COALESCE(SUM(l.tokens_in + l.tokens_out), 0), j.spent_usd_nano, j.limit_usd_nano,
                       COALESCE(SUM(l.usd_nano), 0)
                FROM jobs j LEFT JOIN ledger l ON l.job = j.id GROUP BY j.id
                HAVING j.spent_tokens != COALESCE(SUM(l.tokens_in + l.tokens_out), 0) OR j.spent_usd_nano != COALESCE(SUM(l.usd_nano), 0)
                    OR j.spent_tokens > j.limit_tokens OR j.spent_usd_nano > j.limit_usd_nano
                """, timeout: 10)
            #expect(bad.isEmpty, "jobs whose spend is not their ledger's or over budget: \(bad.prefix(5).map { $0.values })")
            let twice = try db.query("SELECT job, subtask, n, role FROM ledger WHERE kind = 'charge' GROUP BY job, subtask, n, role HAVING COUNT(*) > 1",
                                     timeout: 10)
            #expect(twice.isEmpty, "attempts charged twice: \(twice.prefix(5).map { $0.values })")
            // No attempt id started twice, across both worker processes.
            var started: [String: Int] = [:]
            for w in fleet.workers {
                for line in w.output.split(separator: "\n") where line.contains("attempt started") {
                    if let r = line.range(of: "attempt=") {
                        let id = line[r.upperBound...].prefix { !$0.isWhitespace }
                        started[String(id), default: 0] += 1
                    }
                }
            }
            #expect(started.count > 100)
            #expect(started.filter { $0.value > 1 }.isEmpty, "attempts started twice: \(started.filter { $0.value > 1 }.keys.prefix(5))")
            #expect(fleet.exits.contains { $0.code == 75 })
        } catch {
            Issue.record("\(error)\n\(fleet.logs)")
            throw error
        }
        for f in failovers {
            print("failover after \(f.what): \(String(format: "%.1f", f.gap)) s from the old leader's last dispatch to the new one's first (lease \(Self.lease) s)")
            #expect(f.gap <= 15, "failover after \(f.what) took \(f.gap) s")
        }
    }
}
