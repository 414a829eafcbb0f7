import Foundation
import Testing

/// Duration flags and cluster-file durations from the command line: a hostile value exits 2
/// naming the flag (or the file, line and key) and the value, before anything starts.
@Suite struct DurationFlagTests {
    @Test func hostileHeartbeatAndDeadlineFlagsExitTwo() throws {
        for value in ["1e300", "nan", "inf", "-1s", "0.001s", "2h", "soon"] {
            let r = try agentflow(["worker", "--name", "w", "--model", "m", "--backend", "sim", "--heartbeat=\(value)"], timeout: 30)
            #expect(r.code == 2 && r.err.contains("--heartbeat") && r.err.contains(value), "\(value): \(r.err)")
        }
        for value in ["1e300", "31d", "-5m", "nan"] {
            let r = try agentflow(["submit", "workflows/chain.yaml", "--deadline=\(value)"], timeout: 30)
            #expect(r.code == 2 && r.err.contains("--deadline") && r.err.contains(value), "\(value): \(r.err)")
        }
    }

    @Test func anAbsurdDurationInTheClusterFileExitsTwoNamingFileLineAndKey() throws {
        let path = NSTemporaryDirectory() + "af-durations-\(UUID().uuidString).yaml"
        try "models:\n  - {name: m}\nscheduling:\n  aging: 1e300\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try agentflow(["coordinator", "--cluster", path, "--database", ":memory:"], timeout: 30)
        #expect(r.code == 2, "\(r.out) \(r.err)")
        #expect(r.err.contains(path) && r.err.contains("4") && r.err.contains("scheduling.aging") && r.err.contains("1e300"), "\(r.err)")
    }
}
