import Foundation
import TestSupport
import Testing

/// The CLI's small promises (README "Exit codes", issue 20 item 7): unknown job = 2, a
/// `--version`, `watch` plain into a file, `submit --wait` shows progress, and messages that
/// name the real problem (an unreadable cluster file, a port that is not the coordinator's).
@Suite struct CLIConventionTests {
    @Test func versionIsBakedInFromGit() throws {
        let r = try agentflow(["--version"], timeout: 30)
        #expect(r.code == 0)
        let version = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!version.isEmpty && version != "unknown", "\(r.out) \(r.err)")
        // The checkout is a git tree: the version is its describe (dirtiness may differ between
        // the build and now).
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", Paths.root.path, "describe", "--tags", "--always"]
        let pipe = Pipe()
        git.standardOutput = pipe
        git.standardError = FileHandle.nullDevice
        try launch(git)
        git.waitUntilExit()
        let described = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if git.terminationStatus == 0 {
            #expect(version.replacingOccurrences(of: "-dirty", with: "") == described, "\(version) vs git describe \(described)")
        }
    }

    @Test func unknownJobsAndWorkersExitTwo() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 0.01)
        try c.startAll()
        defer { c.stop() }
        for args in [["status", "j-nosuch"], ["cancel", "j-nosuch"], ["watch", "j-nosuch"], ["attempts", "j-nosuch"],
                     ["ledger", "j-nosuch"], ["report", "j-nosuch"], ["status", "j-nosuch", "--json"], ["drain", "nosuch"]] {
            let r = try c.cli(args, timeout: 30)
            #expect(r.code == 2, "\(args): exit \(r.code), \(r.err)")
            #expect(r.err.contains("nosuch"), "\(args): the message names it: \(r.err)")
            if args.contains("--json") { #expect(r.out.isEmpty, "--json prints nothing on stdout for an error") }
        }
    }

    @Test func unreadableClusterFileIsSaid() throws {
        for command in [["jobs"], ["status", "j-x"], ["workers"], ["submit", "workflows/chain.yaml"], ["attempts", "j-x"]] {
            let r = try agentflow(command + ["--cluster", "/nonexistent/nope.yaml"], timeout: 30)
            #expect(r.code == 2, "\(command): \(r.code) \(r.err)")
            #expect(r.err.contains("cannot read the cluster file") && r.err.contains("/nonexistent/nope.yaml"), "\(command): \(r.err)")
            #expect(!r.err.contains("cannot reach the coordinator"), "\(r.err)")
        }
    }

    /// Without CURVE, a port that is not a ZeroMQ peer, or a coordinator's workers port, is
    /// diagnosed as a wrong port, never as a key problem; and nothing listening is said in a
    /// second or two, not after the full timeout.
    @Test func wrongPortsAreNotKeyProblems() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 1)], timeScale: 0.01)
        // A plain TCP server that never speaks ZeroMQ.
        let port = freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-c", """
            import socket, time
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", \(port))); s.listen(8)
            conns = []
            end = time.time() + 30
            s.settimeout(0.5)
            while time.time() < end:
                try:
                    c, _ = s.accept(); c.sendall(b"HTTP/1.0 400 Bad Request\\r\\n\\r\\n"); conns.append(c)
                except socket.timeout:
                    pass
            """]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try launch(server)
        defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
        try waitUntil(timeout: 10, "the stand-in server listens") {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
        }
        let notZMQ = try c.cli(["workers", "--coordinator", "tcp://127.0.0.1:\(port)"], timeout: 30)
        #expect(notZMQ.code == 3, "\(notZMQ.err)")
        #expect(!notZMQ.err.contains("key problem") && notZMQ.err.contains("clients port"), "\(notZMQ.err)")

        // Nobody listening: said at once (the read commands do not wait out the timeout).
        let start = Date()
        let nobody = try c.cli(["status", "--coordinator", "tcp://127.0.0.1:\(freePort())"], timeout: 30)
        #expect(nobody.code == 3 && nobody.err.contains("no TCP connection"), "\(nobody.err)")
        #expect(!nobody.err.contains("key problem"))
        #expect(Date().timeIntervalSince(start) < 4.5, "took \(Date().timeIntervalSince(start)) s")

        // A coordinator's workers port: a ZeroMQ peer that never answers a client.
        try c.startAll()
        defer { c.stop() }
        let workersPort = try c.cli(["workers", "--coordinator", "tcp://127.0.0.1:\(c.workersPort)"], timeout: 30)
        #expect(workersPort.code == 3 && workersPort.err.contains("clients endpoint") && !workersPort.err.contains("key problem"), "\(workersPort.err)")
    }

    @Test func watchIntoAFileIsPlainAndSubmitWaitShowsProgress() throws {
        let c = try TestCluster(workers: [("gpu0", "smollm2-135m", 2), ("gpu1", "gemma3-270m", 2)], timeScale: 0.05)
        try c.startAll()
        defer { c.stop() }
        let waited = try c.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1", "--wait"], timeout: 90)
        #expect(waited.code == 0, "\(waited.err)")
        #expect(waited.err.contains("submitted j-"), "\(waited.err)")
        #expect(waited.err.split(separator: "\n").count >= 3, "progress lines while waiting: \(waited.err)")
        #expect(waited.out.contains("succeeded"))

        let submitted = try c.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1"], timeout: 30)
        let id = submitted.out.trimmingCharacters(in: .whitespacesAndNewlines)
        // The harness sends stdout to a file: no terminal.
        let watched = try c.cli(["watch", id, "--interval", "0.1"], timeout: 90)
        #expect(watched.code == 0, "\(watched.err)")
        #expect(!watched.out.contains("\u{1B}"), "no escape codes in a file")
        #expect(watched.out.contains("job \(id)") && watched.out.contains("succeeded"))
        let hostile = try c.cli(["watch", id, "--interval", "nan"], timeout: 30)
        #expect(hostile.code == 2, "\(hostile.err)")

        // `run --quiet` prints no progress; without it, progress lines come.
        let quiet = try c.cli(["run", "workflows/chain.yaml", "--planner", "seq:1", "--quiet", "--database", c.dir.appendingPathComponent("q.db").path], timeout: 90)
        #expect(quiet.code == 0 && !quiet.err.contains("subtasks passed"), "\(quiet.err)")
        let loud = try c.cli(["run", "workflows/chain.yaml", "--planner", "seq:1", "--database", c.dir.appendingPathComponent("l.db").path], timeout: 90)
        #expect(loud.code == 0 && loud.err.contains("submitted"), "\(loud.err)")
    }
}
