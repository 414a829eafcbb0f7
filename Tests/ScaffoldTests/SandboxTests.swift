import Foundation
import Testing

@testable import Scaffold

/// Workspaces for tests live under the package's `.build`, not /tmp (which the sandbox hides).
func testRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/sandbox-tests", isDirectory: true)
}

/// Whether code in `box` is kept from writing outside it and from forking without bound.
func isolated(_ box: Sandbox) -> Bool { box.mode == .bubblewrap && Sandbox.host.bubblewrap != nil }

func makeSandbox(_ limits: SandboxLimits = SandboxLimits(wall: .seconds(10))) throws -> Sandbox {
    try Sandbox(root: testRoot(), name: UUID().uuidString, limits: limits)
}

@Suite struct SandboxTests {
    @Test func theProbeFindsWhatThisHostAllows() {
        let host = Sandbox.host
        print("sandbox on this host: \(host.summary(.bubblewrap))")
        #expect(host.bubblewrap != nil, "bubblewrap (installed by tools/install-deps.sh) runs here: \(host.bubblewrapProblem ?? "")")
        #expect(host.summary(.unsafeNoSandbox).hasPrefix("none (--unsafe-no-sandbox)"))
        #expect(host.summary(.bubblewrap).contains(host.cgroups.isOn ? "cgroups v" : "cgroups: off"))
    }

    @Test func runsPythonInTheWorkspace() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("helper.py", "VALUE = 41\n")
        try box.write("main.py", """
            import os, helper
            print(os.getcwd() == os.environ["HOME"], os.environ["TMPDIR"] == "/tmp", helper.VALUE + 1)
            open("made.txt", "w").write("ok")
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(result.output == "True True 42\n")
        #expect(box.read("made.txt") == "ok")
    }

    @Test func reportsErrorsWithTheTraceback() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("main.py", "x = 1\nprint(y)\n")
        let result = box.runPython(file: "main.py")
        #expect(result.exitCode == 1)
        #expect(result.output.contains("NameError: name 'y' is not defined"))
    }

    @Test func writesOutsideTheWorkspaceDoNotLand() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        let outside = testRoot().appendingPathComponent("escape-\(UUID().uuidString).txt")
        let tmpFile = "/tmp/agentflow-escape-\(UUID().uuidString)"
        try box.write("main.py", """
            import os
            for path in [\(String(reflecting: outside.path)), "../escape.txt", \(String(reflecting: tmpFile))]:
                try:
                    with open(path, "w") as f:
                        f.write("escaped")
                    print("wrote", path)
                except OSError as e:
                    print("refused", path, e.errno)
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.exitCode == 0, "\(result.output)")
        guard isolated(box) else {
            try? FileManager.default.removeItem(at: outside)
            print("sandbox: this host cannot keep writes in the workspace (\(Sandbox.host.summary(box.mode)))")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: outside.path))
        #expect(!FileManager.default.fileExists(atPath: box.workspace.deletingLastPathComponent().appendingPathComponent("escape.txt").path))
        if isolated(box) {
            // /tmp inside is a private tmpfs: the write may succeed there, but never lands here.
            #expect(!FileManager.default.fileExists(atPath: tmpFile))
        }
    }

    @Test func anInfiniteLoopIsKilledAtTheWallTimeLimit() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(1), cpuSeconds: 30))
        defer { box.remove() }
        try box.write("main.py", "while True:\n    pass\n")
        let result = box.runPython(file: "main.py")
        #expect(result.timedOut)
        #expect(!result.succeeded)
        // Killed near 1 s, plus up to 1 s draining the pipe; without the wall limit it would run
        // to the 30 s CPU limit. The margin is for a loaded 2-core CI machine.
        #expect(result.seconds < 10)
    }

    @Test func cpuLimitStopsABusyLoop() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(20), cpuSeconds: 1))
        defer { box.remove() }
        try box.write("main.py", "while True:\n    pass\n")
        let result = box.runPython(file: "main.py")
        #expect(!result.timedOut)
        #expect(result.signal == SIGXCPU || result.signal == SIGKILL || result.exitCode == 128 + SIGXCPU, "\(result)")
        // One CPU-second, not the 20-second wall limit, ended it (wall time stretches on a loaded machine).
        #expect(result.seconds < 15)
    }

    @Test func aForkBombIsContained() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(3), processes: 32))
        defer { box.remove() }
        guard isolated(box) || geteuid() != 0 else {
            // Root without namespaces or a user to drop to: RLIMIT_NPROC does not bind root.
            print("sandbox: fork bomb test skipped (\(Sandbox.host.summary(box.mode)))")
            return
        }
        try box.write("main.py", """
            import os
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """)
        let start = Date()
        let result = box.runPython(file: "main.py")
        #expect(!result.succeeded)
        #expect(Date().timeIntervalSince(start) < 8)
        // Nothing of it survives: no process of the sandbox user is left running that code.
        Thread.sleep(forTimeInterval: 0.2)
        let survivors = try String(contentsOfFile: "/proc/loadavg", encoding: .utf8)
        #expect(!survivors.isEmpty)
        #expect(try countProcesses(runningIn: box.workspace.path) == 0)
    }

    @Test func memoryIsLimited() throws {
        let box = try makeSandbox(SandboxLimits(memoryBytes: 256 << 20))
        defer { box.remove() }
        try box.write("main.py", "x = bytearray(1024 * 1024 * 1024)\nprint('allocated')\n")
        let result = box.runPython(file: "main.py")
        #expect(!result.succeeded)
        #expect(result.memoryLimitHit || result.output.contains("MemoryError"), "\(result)")
    }

    @Test func hugeOutputIsCutAndKilled() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(10), keptOutputBytes: 1000, maxOutputBytes: 1 << 20))
        defer { box.remove() }
        try box.write("main.py", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
        let result = box.runPython(file: "main.py")
        #expect(result.outputLimitExceeded)
        #expect(result.output.utf8.count < 1100)
        #expect(result.output.contains("bytes omitted"))
        #expect(result.seconds < 8, "cut by the output limit, not by the 10 s wall limit")
    }

    @Test func hugeFilesAreRefused() throws {
        let box = try makeSandbox(SandboxLimits(fileBytes: 1 << 20))
        defer { box.remove() }
        try box.write("main.py", "open('big', 'wb').write(b'x' * (4 << 20))\n")
        let result = box.runPython(file: "main.py")
        #expect(!result.succeeded)
        let size = (try? FileManager.default.attributesOfItem(atPath: box.workspace.appendingPathComponent("big").path)[.size] as? Int) ?? 0
        #expect(size <= 1 << 20)
    }

    @Test
    func theNetworkIsUnreachable() throws {
        // A server on this host's loopback that the code would reach without a network namespace.
        let listener = try LoopbackListener()
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("main.py", """
            import socket
            s = socket.socket(); s.settimeout(2)
            try:
                s.connect(("127.0.0.1", \(listener.port))); print("connected")
            except OSError as e:
                print("blocked", e.errno)
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.output.hasPrefix("blocked"), "\(result.output)")
    }

    @Test func worksUnderADirectoryOthersCannotEnter() throws {
        // Like a checkout under /root (mode 700): `nobody` could not reach the workspace.
        let closed = testRoot().appendingPathComponent("closed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: closed, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: closed) }
        chmod(closed.path, 0o700)
        let box = try Sandbox(root: closed.appendingPathComponent("ws"), name: "a", limits: SandboxLimits(wall: .seconds(10)))
        defer { box.remove() }
        try box.write("main.py", "open('out.txt', 'w').write('ok')\nprint('ran')\n")
        let result = box.runPython(file: "main.py")
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(box.read("out.txt") == "ok")
        #expect(!Sandbox.othersCanReach(box.workspace) || geteuid() != 0)
    }

    @Test func shellCommandsRunInTheWorkspace() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("solution.py", "def f():\n    return 3\n")
        let ok = box.runShell("python3 -c 'from solution import f; assert f() == 3' && pwd")
        #expect(ok.exitCode == 0, "\(ok.output)")
        #expect(ok.output.trimmingCharacters(in: .whitespacesAndNewlines) == box.workspace.path)
        #expect(box.runShell("exit 3").exitCode == 3)
    }

    @Test func cancellationStopsTheRun() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(30)))
        defer { box.remove() }
        try box.write("main.py", "import time\ntime.sleep(30)\n")
        let start = Date()
        let result = box.runPython(file: "main.py", cancel: { Date().timeIntervalSince(start) > 0.5 })
        #expect(!result.succeeded)
        #expect(result.seconds < 10, "stopped by the cancel, not by the 30 s sleep")
    }
}

/// Processes whose working directory is `path`.
func countProcesses(runningIn path: String) throws -> Int {
    var count = 0
    for entry in try FileManager.default.contentsOfDirectory(atPath: "/proc") where Int(entry) != nil {
        if let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"), cwd == path {
            count += 1
        }
    }
    return count
}

/// A TCP listener on 127.0.0.1 with a kernel-chosen port; closed on deinit.
final class LoopbackListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 4) == 0 else { throw POSIXError(.EADDRINUSE) }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = UInt16(bigEndian: address.sin_port)
    }

    deinit { close(fd) }
}
