import Foundation
import Testing

/// Slurm as the engine that places nodes (issue 20 item 4): real munged, slurmctld and two
/// slurmd from Debian in network namespaces, `tools/slurm/agentflow-node.sbatch` submitted per
/// host, a workflow across both, then `scancel` of one node job drains its workers with no
/// attempt lost. Needs root (namespaces, mknod); the work is in tools/slurm-test.sh, which
/// removes everything it made, on failure too. About 20 s.
@Suite(.serialized) struct SlurmTests {
    @Test(.enabled(if: getuid() == 0, "network namespaces and the Slurm daemons need root"))
    func nodeJobsRegisterRunAndDrainOnScancel() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Paths.root.appendingPathComponent("tools/slurm-test.sh").path, Paths.agentflow]
        p.currentDirectoryURL = Paths.root
        let log = NSTemporaryDirectory() + "af-slurm-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let end = Date().addingTimeInterval(150)
        while p.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning {
            // SIGTERM: the script's trap stops the daemons and removes the namespaces.
            p.terminate()
            p.waitUntilExit()
            Issue.record("slurm-test.sh took more than 150 s")
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(output)")
        #expect(output.contains("4 workers registered under the jobs' names"), "\(output)")
        #expect(output.contains("drain: draining draining"), "\(output)")
        #expect(output.contains("none lost"), "\(output)")
    }
}
