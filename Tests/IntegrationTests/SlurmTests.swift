import Foundation
import Testing

/// Slurm as the engine that places nodes (issue 20 item 4): real munged, slurmctld and two
/// slurmd from Debian in network namespaces, `tools/slurm/agentflow-node.sbatch` submitted per
/// host, a workflow across both, then `scancel` of one node job drains its workers with no
/// attempt lost. Needs root (namespaces, mknod); the work is in tools/slurm-test.sh, which
/// removes everything it made, on failure too. About 40 s.
@Suite(.serialized) struct SlurmTests {
    @Test(.enabled(if: getuid() == 0, "network namespaces and the Slurm daemons need root"))
    func nodeJobsRegisterRunAndDrainOnScancel() throws {
        let (code, output) = try runScript("tools/slurm-test.sh", [Paths.agentflow], timeout: 150, stop: SIGTERM)
        #expect(code == 0, "\(output)")
        #expect(output.contains("4 workers registered under the jobs' names"), "\(output)")
        #expect(output.contains("drain: draining draining"), "\(output)")
        #expect(output.contains("none lost"), "\(output)")
    }
}
