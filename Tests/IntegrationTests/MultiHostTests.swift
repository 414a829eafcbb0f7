import Foundation
import Testing

/// Three network namespaces on a bridge — a coordinator and two hosts running `agentflow node
/// --gpus all` with a stand-in nvidia-smi, CURVE on — then 20% packet loss and 100 ms delay on
/// one host (issue 12). The namespaces need root (CI runs as root); the work is in
/// tools/multihost-test.sh, which removes everything it made, on failure too. About 25 s.
@Suite(.serialized) struct MultiHostTests {
    @Test(.enabled(if: getuid() == 0, "network namespaces need root"))
    func threeNamespacesLossAndDelay() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Paths.root.appendingPathComponent("tools/multihost-test.sh").path, Paths.agentflow]
        p.currentDirectoryURL = Paths.root
        let log = NSTemporaryDirectory() + "af-multihost-\(UUID().uuidString).log"
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
            // SIGTERM: the script's trap removes the namespaces.
            p.terminate()
            p.waitUntilExit()
            Issue.record("multihost-test.sh took more than 150 s")
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(p.terminationStatus == 0, "\(output)")
        #expect(output.contains("attempts on hosta and hostb"), "\(output)")
        #expect(output.contains("no worker declared dead"), "\(output)")
    }
}
