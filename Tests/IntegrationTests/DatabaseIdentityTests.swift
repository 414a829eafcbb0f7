import AgentFlowCore
import Foundation
import TestSupport
import Testing

/// Issue 15 item 4: one coordinator per database by the file's identity. A second coordinator
/// reaching the same SQLite file by another path — a symlink to the file or its directory, a hard
/// link, `..`, a bind mount — is refused before it touches anything, and the first keeps running
/// its jobs with a ledger that adds up.
@Suite(.serialized) struct DatabaseIdentityTests {
    /// A copy of the cluster file with other ports, so a second coordinator could bind: only the
    /// database lock stands between it and the first one's database.
    func otherPorts(_ cluster: TestCluster) throws -> String {
        let path = cluster.dir.appendingPathComponent("cluster-2.yaml").path
        let yaml = try String(contentsOfFile: cluster.clusterFile, encoding: .utf8)
            .replacingOccurrences(of: ":\(cluster.workersPort)\n", with: ":\(freePort())\n")
            .replacingOccurrences(of: ":\(cluster.clientsPort)\n", with: ":\(freePort())\n")
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Runs `agentflow coordinator` on `database` on other ports; returns its exit status and stderr.
    func secondCoordinator(_ cluster: TestCluster, database: String) throws -> (code: Int32, err: String) {
        let r = try agentflow(["coordinator", "--cluster", try otherPorts(cluster), "--database", database], timeout: 20)
        return (r.code, r.err)
    }

    @Test func aSecondCoordinatorOnTheSameFileByAnotherPathIsRefused() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        let pid = cluster.coordinator!.pid
        let fm = FileManager.default
        let dir = cluster.dir.path
        let running = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1:smollm2-135m"], timeout: 30)
        #expect(running.code == 0, "\(running.err)")
        let id = running.out.trimmingCharacters(in: .whitespacesAndNewlines)

        try fm.createSymbolicLink(atPath: dir + "/link.db", withDestinationPath: cluster.database)
        try fm.createSymbolicLink(atPath: dir + "/dirlink", withDestinationPath: dir)
        try fm.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try fm.linkItem(atPath: cluster.database, toPath: dir + "/hard.db")
        let paths = [dir + "/link.db", dir + "/dirlink/agentflow.db", dir + "/sub/../agentflow.db", dir + "/hard.db", dir + "/./agentflow.db"]
        for path in paths {
            let r = try secondCoordinator(cluster, database: path)
            #expect(r.code == 1 && r.err.contains(path) && r.err.contains("in use"), "\(path): \(r.code) \(r.err)")
            if path != dir + "/hard.db" {
                // The lock file beside the real path names the holder (a hard link has no path back to it).
                #expect(r.err.contains("pid \(pid)"), "\(path): \(r.err)")
            }
        }
        #expect(cluster.coordinator!.process.isRunning)

        // A bind mount of the directory, seen only by the second coordinator (its own mount namespace).
        let mountPoint = dir + "/bound"
        try fm.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        let quoted = [Paths.agentflow, "coordinator", "--cluster", try otherPorts(cluster), "--database", mountPoint + "/agentflow.db"]
            .map { "'\($0)'" }.joined(separator: " ")
        p.arguments = (getuid() == 0 ? ["--mount"] : ["--user", "--map-root-user", "--mount"])
            + ["sh", "-c", "mount --bind '\(dir)' '\(mountPoint)' && test -e '\(mountPoint)/agentflow.db' && exec \(quoted)"]
        let errPipe = Pipe()
        p.standardError = errPipe
        p.standardOutput = FileHandle.nullDevice
        try launch(p)
        let started = Date()
        while p.isRunning && Date().timeIntervalSince(started) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            Issue.record("a coordinator through a bind mount of the database's directory started")
        }
        let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 1 && err.contains("\(mountPoint)/agentflow.db") && err.contains("in use"), "bind mount: \(p.terminationStatus) \(err)")

        // The first coordinator never noticed: the job runs to its end and its ledger adds up.
        try waitUntil(timeout: 90, "the job to end") { ["succeeded", "failed"].contains(try cluster.status(id)?["state"] as? String ?? "") }
        #expect(try cluster.status(id)?["state"] as? String == "succeeded")
        let ledger = try LedgerCheck(database: cluster.database, job: id)
        #expect(ledger.consistent && ledger.doubleSettled == 0 && ledger.lostAttempts == 0, "\(ledger)")
        #expect(cluster.coordinator!.process.isRunning)
    }

    /// When the first coordinator is gone (even by `kill -9`), a coordinator through a symlink opens
    /// the same database and resumes its jobs: the lock is the kernel's, nothing stale is left.
    @Test func theLockGoesWithItsHolder() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        let r = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1:smollm2-135m"], timeout: 30)
        let id = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        cluster.coordinator!.kill9()
        let link = cluster.dir.path + "/link.db"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: cluster.database)
        cluster.coordinator = try Proc(["coordinator", "--cluster", cluster.clusterFile, "--database", link],
                                       log: cluster.dir.appendingPathComponent("coordinator-link.log").path)
        try waitUntil(timeout: 90, "the resumed job to end") { ["succeeded", "failed"].contains(try cluster.status(id)?["state"] as? String ?? "") }
        #expect(try cluster.status(id)?["state"] as? String == "succeeded", "\(cluster.logs)")
    }
}
