import AgentFlowCore
import Foundation
import Testing

@testable import Scaffold

/// What the bubblewrap sandbox leaves the code (issue 18 item 1), checked directly on
/// ``Sandbox``; `EscapeTests` (IntegrationTests) checks the same through a real worker.
@Suite(.enabled(if: Sandbox.host.bubblewrap != nil, "bubblewrap is not installed (tools/install-deps.sh installs it)"))
struct SandboxIsolationTests {
    @Test func theWorkersEnvironmentIsNowhereInside() throws {
        setenv("AGENTFLOW_TEST_SECRET", "s3cr3t-\(getpid())", 1)
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("main.py", """
            import os
            seen = [str(dict(os.environ))]
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
                    except OSError as e:
                        seen.append(f"refused {pid}")
            print("\\n".join(seen))
            print(sorted(os.environ))
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.exitCode == 0, "\(result.output)")
        #expect(!result.output.contains("s3cr3t"))
        #expect(result.output.contains("['HOME', 'LANG', 'PATH', 'PWD', 'PYTHONDONTWRITEBYTECODE', 'PYTHONIOENCODING', 'PYTHONPATH', 'PYTHONUNBUFFERED', 'TMPDIR']"), "\(result.output)")
    }

    @Test func theRootHoldsTheRuntimeAndTheWorkspaceOnly() throws {
        let box = try makeSandbox()
        let other = try makeSandbox()
        defer {
            box.remove()
            other.remove()
        }
        try other.write("secret.txt", "other attempt")
        let result = box.runShell("""
            ls /; echo ---; ls /etc; echo ---; ls \(box.workspace.deletingLastPathComponent().path); echo ---
            for p in gcc cc curl wget apt su sudo mount unshare nsenter ssh perl; do command -v $p; done; echo ---
            cat \(other.workspace.path)/secret.txt; cat /etc/shadow; ls /root /home /var /opt; echo ---
            ls /dev; echo ---; python3 -c 'import json, sqlite3, ssl, unittest; print("python ok")'
            """)
        let sections = result.output.components(separatedBy: "---\n")
        #expect(sections.count == 7, "\(result.output)")
        guard sections.count == 7 else { return }
        #expect(Set(sections[0].split(separator: "\n").map(String.init)) == ["bin", "dev", "etc", "lib", "lib64", "proc", "run", "tmp", "usr", box.workspace.pathComponents[1]])
        #expect(Set(sections[1].split(separator: "\n").map(String.init)).isSubset(of: ["group", "ld.so.cache", "passwd"]))
        #expect(sections[2] == box.workspace.lastPathComponent + "\n", "no other workspace is visible")
        #expect(sections[3].isEmpty, "programs outside the runtime: \(sections[3])")
        #expect(!sections[4].contains("other attempt") && sections[4].contains("No such file"))
        #expect(Set(sections[5].split(separator: "\n").map(String.init)).isSubset(of: ["console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"]), "\(sections[5])")
        #expect(result.output.hasSuffix("python ok\n"), "\(result.output)")
    }

    @Test func devicesAreThereOnlyWhenAsked() throws {
        let device = "/dev/kvm"
        guard FileManager.default.fileExists(atPath: device) else { return }
        let plain = try makeSandbox()
        let asked = try makeSandbox(SandboxLimits(wall: .seconds(10), devices: [device]))
        defer {
            plain.remove()
            asked.remove()
        }
        #expect(plain.runShell("test -e \(device)").exitCode == 1)
        #expect(asked.runShell("test -e \(device)").exitCode == 0)
    }

    @Test func noNamespaceOrMountInside() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("main.py", """
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            for name, flag in [("user", 0x10000000), ("mount", 0x00020000), ("net", 0x40000000)]:
                print(name, libc.unshare(flag), ctypes.get_errno() != 0)
            print("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
            print("uid", os.getuid())
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.output == "user -1 True\nmount -1 True\nnet -1 True\nmount -1\nuid 65534\n", "\(result.output)")
    }

    @Test func aDaemonDoesNotOutliveItsRun() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("main.py", """
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(1.5)
                    open("daemon-was-here", "w").write("still running")
                    os._exit(0)
                os._exit(0)
            print("parent done")
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.exitCode == 0, "\(result.output)")
        Thread.sleep(forTimeInterval: 2.5)
        #expect(box.read("daemon-was-here") == nil)
        #expect(box.cgroup?.pids.isEmpty ?? true)
    }

    @Test(.enabled(if: Sandbox.host.cgroups.isOn, "no cgroups here"))
    func memoryIsLimitedPerAttemptNotPerProcess() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(30), memoryBytes: 1 << 30))
        defer { box.remove() }
        try box.write("main.py", """
            import os, time
            children = []
            for _ in range(4):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(400 << 20)
                    for i in range(0, len(block), 4096):
                        block[i] = 1
                    time.sleep(5)
                    os._exit(0)
                children.append(pid)
            codes = [os.waitpid(pid, 0)[1] for pid in children]
            print(codes)
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.memoryLimitHit, "\(result)")
        #expect(result.seconds < 25)
    }

    @Test(.enabled(if: Sandbox.host.tmpfsWorkspaces, "the worker may not mount a tmpfs here"))
    func theWorkspaceIsSizeLimited() throws {
        let box = try makeSandbox(SandboxLimits(wall: .seconds(20), fileBytes: 1 << 30, workspaceBytes: 32 << 20))
        defer { box.remove() }
        try box.write("main.py", """
            import os
            try:
                with open("fill", "wb") as f:
                    while True:
                        f.write(b"x" * (1 << 20))
            except OSError as e:
                print("stopped", e.errno, os.path.getsize("fill") >> 20)
            """)
        let result = box.runPython(file: "main.py")
        #expect(result.output.hasPrefix("stopped 28 "), "\(result.output)")  // ENOSPC
    }

    @Test func theUnsafeModeRunsWithoutNamespaces() throws {
        let box = try Sandbox(root: testRoot(), name: UUID().uuidString, limits: SandboxLimits(wall: .seconds(10)), mode: .unsafeNoSandbox)
        defer { box.remove() }
        let result = box.runShell("test -d \(testRoot().path) && echo host-visible; echo $HOME; pwd")
        #expect(result.output == "host-visible\n\(box.workspace.path)\n\(box.workspace.path)\n", "\(result.output)")
        try box.write("solution.py", "import os\nos._exit(0)\n")
        let faked = box.runVerifier(.python("import solution\n"))
        #expect(!faked.succeeded && faked.output.contains("ended before its program did"), "the guard works without bubblewrap too: \(faked.output)")
        try box.write("solution.py", "x = 1\n")
        let honest = box.runVerifier(.python("import solution\nassert solution.x == 1\n"))
        #expect(honest.succeeded, "\(honest.output)")
    }
}

/// A subtask's `sandbox:` narrows its worker's limits, never widens them.
struct SandboxLimitsNarrowingTests {
    @Test func aSubtaskMayAskForLessNeverMore() {
        var worker = SandboxLimits(wall: .seconds(10), memoryBytes: 512 << 20, processes: 64, cpus: 1)
        worker.gpuDevices = SandboxLimits.nvidiaDevices([3])
        var asks = SandboxSpec()
        asks.memoryBytes = 8 << 30
        asks.processes = 16
        asks.wallSeconds = 600
        asks.cpus = 8
        let limits = worker.narrowed(by: asks)
        #expect(limits.memoryBytes == 512 << 20 && limits.processes == 16 && limits.wall == .seconds(10) && limits.cpus == 1)
        #expect(limits.devices.isEmpty)
        asks.gpu = true
        #expect(worker.narrowed(by: asks).devices.contains("/dev/nvidia3"))
    }
}
