import Foundation
import TestSupport
import Testing

/// Model-written code that tries to leave the sandbox (issue 18 item 2), each attack run as an
/// action through a real worker: a real coordinator and worker process, with the worker's model
/// a scripted stand-in (tools/fake_openai_server.py, kind `code`) that replies with the attack.
/// Every attack must be contained, and its attempt must still end and report. An attack prints
/// `CONTAINED …` and exits 1 when it got nowhere, or `ESCAPED …` and exits 0, which the
/// subtask's verifier (`true`) would then pass; so a contained attack ends `failed` with its
/// last line in the attempt's detail, and the test also looks at the host from outside.
@Suite(.serialized, .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap"), "bubblewrap is not installed (tools/install-deps.sh installs it)"))
struct EscapeTests {
    /// One attack: a subtask whose prompt carries the code the stand-in model sends back.
    struct Attack {
        var id: String
        var code: String
    }

    /// The attacks of one job, with what they need to know about the host filled in.
    static func attacks(_ h: EscapeHost) -> [Attack] {
        [
            Attack(id: "environ", code: """
                import os
                found = [str(dict(os.environ))]
                for pid in ["1", str(os.getppid()), "self", "{WORKER_PID}"] + [p for p in os.listdir("/proc") if p.isdigit()]:
                    try:
                        found.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
                    except OSError:
                        pass
                leaked = any("{SECRET}" in text for text in found)
                print("ESCAPED environ" if leaked else "CONTAINED environ")
                raise SystemExit(0 if leaked else 1)
                """),
            Attack(id: "files", code: """
                leaked = []
                for path in ["{KEYFILE}", "{CLUSTER}", "{DATABASE}", "{OTHER}/secret.txt", "../{OTHER_NAME}/secret.txt", "/etc/shadow", "/root/.ssh/id_rsa"]:
                    try:
                        text = open(path, "rb").read()
                        if b"{SECRET}" in text or b"SQLite" in text or b"coordinator" in text:
                            leaked.append(path)
                    except OSError:
                        pass
                import os
                try:
                    siblings = os.listdir("..")
                except OSError:
                    siblings = []
                if "{OTHER_NAME}" in siblings:
                    leaked.append("listed another attempt's workspace")
                print(f"ESCAPED {leaked}" if leaked else f"CONTAINED files (siblings: {len(siblings)})")
                raise SystemExit(0 if leaked else 1)
                """),
            Attack(id: "write_outside", code: """
                import os
                wrote = []
                for path in ["{HOSTDIR}/escaped.txt", "../escaped.txt", "/tmp/{MARKER}-tmp", "/usr/bin/escaped", "/etc/escaped"]:
                    try:
                        with open(path, "w") as f:
                            f.write("escaped")
                        wrote.append(path)
                    except OSError:
                        pass
                # /tmp is the sandbox's own: a write there is fine as long as the host's /tmp never sees it.
                print(f"CONTAINED write_outside (wrote inside: {wrote})")
                raise SystemExit(1)
                """),
            Attack(id: "devices", code: """
                opened = []
                for path in ["/dev/nvidia0", "/dev/nvidiactl", "/dev/kvm", "/dev/vda", "/dev/mem"]:
                    try:
                        open(path, "rb").close()
                        opened.append(path)
                    except OSError:
                        pass
                print(f"ESCAPED {opened}" if opened else "CONTAINED devices")
                raise SystemExit(0 if opened else 1)
                """),
            Attack(id: "network", code: """
                import socket
                reached = []
                for host, port in [("127.0.0.1", {WORKERS_PORT}), ("127.0.0.1", {CLIENTS_PORT}), ("127.0.0.1", {HTTP_PORT}),
                                   ("127.0.0.1", {MODEL_PORT}), ("1.1.1.1", 53), ("{HOST_ADDRESS}", {MODEL_PORT})]:
                    s = socket.socket()
                    s.settimeout(3)
                    try:
                        s.connect((host, port))
                        reached.append(f"{host}:{port}")
                    except OSError:
                        pass
                    finally:
                        s.close()
                print(f"ESCAPED {reached}" if reached else "CONTAINED network")
                raise SystemExit(0 if reached else 1)
                """),
            Attack(id: "signals", code: """
                import ctypes, os, signal
                libc = ctypes.CDLL(None, use_errno=True)
                done = []
                try:
                    os.kill({WORKER_PID}, signal.SIGKILL)
                    done.append("killed the worker")
                except OSError:
                    pass
                if libc.ptrace(16, {WORKER_PID}, None, None) == 0:  # PTRACE_ATTACH
                    done.append("traced the worker")
                try:
                    os.kill(-1, signal.SIGKILL)  # every process it may signal: its own sandbox's
                except OSError:
                    pass
                print(f"ESCAPED {done}" if done else "CONTAINED signals")
                raise SystemExit(0 if done else 1)
                """),
            Attack(id: "namespaces", code: """
                import ctypes, os, subprocess
                libc = ctypes.CDLL(None, use_errno=True)
                done = []
                if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER
                    done.append("unshare -U")
                if libc.unshare(0x00020000) == 0:  # CLONE_NEWNS
                    done.append("unshare -m")
                if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0:
                    done.append("mount")
                for argv in (["unshare", "-U", "true"], ["mount", "-t", "tmpfs", "none", "/tmp"]):
                    try:
                        if subprocess.run(argv, capture_output=True).returncode == 0:
                            done.append(" ".join(argv))
                    except OSError:
                        pass
                print(f"ESCAPED {done}" if done else "CONTAINED namespaces")
                raise SystemExit(0 if done else 1)
                """),
            Attack(id: "memory", code: """
                import os, time
                children = []
                for _ in range(4):
                    pid = os.fork()
                    if pid == 0:
                        block = bytearray(400 << 20)
                        for i in range(0, len(block), 4096):
                            block[i] = 1
                        time.sleep(2)
                        os._exit(0)
                    children.append(pid)
                statuses = [os.waitpid(pid, 0)[1] for pid in children]
                killed = sum(1 for s in statuses if os.WIFSIGNALED(s))
                print(f"CONTAINED memory ({killed} of 4 killed)" if killed else "ESCAPED memory: 1.6 GB held")
                raise SystemExit(1 if killed else 0)
                """),
            Attack(id: "fill_workspace", code: """
                # Files of 8 MiB each (one file is capped lower by RLIMIT_FSIZE): the workspace's size must stop it.
                written = 0
                try:
                    while written < (1 << 30):
                        with open(f"fill{written >> 23}.bin", "wb") as f:
                            f.write(b"x" * (8 << 20))
                        written += 8 << 20
                except OSError as e:
                    print(f"CONTAINED fill_workspace at {written >> 20} MiB ({e.strerror})")
                    raise SystemExit(1)
                print("ESCAPED fill_workspace: 1 GiB written")
                """),
            Attack(id: "daemon", code: """
                import os, subprocess, sys
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "{MARKER}"])
                    os._exit(0)
                print("CONTAINED daemon started (the test looks for it after the attempt)")
                raise SystemExit(1)
                """),
            Attack(id: "output", code: """
                import sys
                chunk = "y" * 1023 + "\\n"
                for _ in range(10 * 1024):
                    sys.stdout.write(chunk)
                print("ESCAPED output: 10 MB written")
                """),
        ].map { Attack(id: $0.id, code: h.fill($0.code)) }
    }

    @Test func everyAttackIsContainedAndItsAttemptEnds() throws {
        let h = try EscapeHost()
        defer { h.stop() }
        let attacks = Self.attacks(h)
        // One job per attack: a job ends when one of its subtasks has failed all its attempts.
        let jobs = try attacks.map { try h.submit(name: "escape-\($0.id.replacingOccurrences(of: "_", with: "-"))", subtasks: [($0.id, $0.code)], deadline: "90s") }
        var attempts: [EscapeHost.AttemptRow] = []
        for job in jobs {
            let final = try h.waitForEnd(job, timeout: 120)
            #expect(final == "failed", "the job ends and reports: \(final)")
            attempts += try h.attempts(job)
        }
        #expect(attempts.map(\.subtask).sorted() == attacks.map(\.id).sorted(), "every attack ran once: \(attempts)\n\(h.logs)")
        for attempt in attempts {
            #expect(attempt.state == "failed", "\(attempt.subtask) ended \(attempt.state): \(attempt.detail)")
            #expect(!attempt.detail.contains("ESCAPED"), "\(attempt.subtask): \(attempt.detail)")
            if !["memory", "output", "fill_workspace"].contains(attempt.subtask) {
                #expect(attempt.detail.contains("CONTAINED \(attempt.subtask)") || attempt.detail.contains("CONTAINED"), "\(attempt.subtask) ran to its report: \(attempt.detail)")
            }
        }
        if let memory = attempts.first(where: { $0.subtask == "memory" }) {
            #expect(memory.detail.contains("CONTAINED memory") || memory.detail.contains("memory limit"), "\(memory.detail)")
        }
        if let fill = attempts.first(where: { $0.subtask == "fill_workspace" }) {
            #expect(fill.detail.contains("CONTAINED fill_workspace") && fill.detail.contains("No space left"), "\(fill.detail)")
        }
        // From outside: nothing written, the worker alive, no process of the attempts left.
        #expect(!FileManager.default.fileExists(atPath: h.dir.appendingPathComponent("escaped.txt").path))
        #expect(!FileManager.default.fileExists(atPath: h.workspaceRoot.appendingPathComponent("escaped.txt").path))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/\(h.marker)-tmp"))
        #expect(!FileManager.default.fileExists(atPath: "/usr/bin/escaped"))
        #expect(h.worker.process.isRunning, "the worker survived: \(h.logs)")
        #expect(h.processes(containing: h.marker).isEmpty, "the setsid double-forked daemon is gone")
        let workers = try h.cli(["workers"])
        #expect(workers.out.contains("bubblewrap"), "\(workers.out)")
    }

    @Test func aForkBombLeavesRoomForAnotherAttempt() throws {
        let h = try EscapeHost()
        defer { h.stop() }
        let bomb = """
            import os
            print("CONTAINED fork bomb starting", flush=True)
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
            """
        let bystander = """
            import time
            time.sleep(1)
            print("bystander done")
            """
        let job = try h.submit(name: "forkbomb", subtasks: [("bomb", bomb), ("bystander", bystander)], deadline: "60s")
        _ = try h.waitForEnd(job, timeout: 90)
        let attempts = try h.attempts(job)
        let bombAttempt = try #require(attempts.first { $0.subtask == "bomb" }, "\(attempts)\n\(h.logs)")
        let other = try #require(attempts.first { $0.subtask == "bystander" }, "\(attempts)")
        #expect(other.state == "succeeded", "the other attempt still ran: \(other.detail)")
        #expect(bombAttempt.state == "failed", "\(bombAttempt.detail)")
        #expect(other.endedAt < bombAttempt.endedAt, "it finished while the bomb was still running: \(other) \(bombAttempt)")
        #expect(h.worker.process.isRunning)
    }

    @Test func theClusterFilesLimitsReachTheAttempt() throws {
        let h = try EscapeHost(clusterExtra: "sandbox: {memory: 128MiB, processes: 16}")
        defer { h.stop() }
        let probe = """
            import os, time
            pid = os.fork()
            if pid == 0:
                block = bytearray(256 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                os._exit(0)
            killed = os.WIFSIGNALED(os.waitpid(pid, 0)[1])
            forks = 0
            for _ in range(40):
                try:
                    if os.fork() == 0:
                        time.sleep(3)
                        os._exit(0)
                    forks += 1
                except OSError:
                    break
            print(f"CONTAINED limits: killed={killed} forks={forks}")
            raise SystemExit(1)
            """
        let job = try h.submit(name: "limits", subtasks: [("limits", probe)], deadline: "60s")
        _ = try h.waitForEnd(job, timeout: 60)
        let attempt = try #require(try h.attempts(job).first, "\(h.logs)")
        // 256 MiB in a child would fit the default 512 MiB; 40 processes the default 64.
        #expect(attempt.detail.contains("killed=True"), "\(attempt.detail)")
        let forks = attempt.detail.split(separator: "forks=").last.flatMap { Int($0.prefix { $0.isNumber }) } ?? -1
        #expect((0..<16).contains(forks), "\(attempt.detail)")
    }

    @Test func aSubtaskGetsItsWorkersGPUOnlyWhenItAsks() throws {
        let h = try EscapeHost()
        defer { h.stop() }
        guard FileManager.default.fileExists(atPath: "/dev/nvidia0") else { return }  // neither a GPU nor root to make a stand-in
        let open = """
            try:
                open("/dev/nvidia0", "rb").close()
                print("opened /dev/nvidia0")
            except OSError as e:
                print(f"no /dev/nvidia0 ({e.strerror})")
                raise SystemExit(1)
            """
        let asking = try h.submit(name: "gpu-asks", subtasks: [("asks", open)], deadline: "60s", sandbox: ["asks": "{gpu: true, memory: 256MiB}"])
        let plain = try h.submit(name: "gpu-plain", subtasks: [("plain", open)], deadline: "60s")
        let asked = try h.waitForEnd(asking, timeout: 60)
        let askedAttempts = try h.attempts(asking)
        #expect(asked == "succeeded", "\(askedAttempts)")
        #expect(try h.waitForEnd(plain, timeout: 60) == "failed")
        let detail = try h.attempts(plain).first?.detail ?? ""
        #expect(detail.contains("no /dev/nvidia0"), "\(detail)")
    }

    @Test func anAttemptPastItsDeadlineIsStoppedWithEverythingItStarted() throws {
        let h = try EscapeHost()
        defer { h.stop() }
        let sleeper = h.fill("""
            import os, subprocess, sys, time
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{MARKER}"])
            time.sleep(600)
            """)
        let start = Date()
        let job = try h.submit(name: "deadline", subtasks: [("sleeper", sleeper)], deadline: "6s")
        let final = try h.waitForEnd(job, timeout: 60)
        #expect(final == "deadline_exceeded", "\(final)")
        #expect(Date().timeIntervalSince(start) < 40)
        let attempts = try h.attempts(job)
        #expect(attempts.allSatisfy { $0.state != "running" && $0.state != "dispatched" }, "\(attempts)")
        try waitUntil(timeout: 10, "the attempt's processes are gone") { h.processes(containing: h.marker).isEmpty }
    }
}

/// A coordinator (with its HTTP API), one worker whose model is the scripted stand-in, the
/// stand-in server, and the host-side things the attacks go after.
final class EscapeHost: @unchecked Sendable {
    let dir: URL
    let workspaceRoot: URL
    let clusterFile: String
    let database: String
    let secret = "ENVSECRET\(UInt64.random(in: 0...UInt64.max))"
    let marker = "agentflow-escape-\(UUID().uuidString.prefix(8))"
    let workersPort = freePort(), clientsPort = freePort(), httpPort = freePort()
    let model: Process
    let modelPort: Int
    var coordinator: Proc!
    var worker: Proc!
    /// A stand-in GPU device node this test created (removed at the end), nil if the host has one.
    var standInDevice: String?

    /// `clusterExtra`: more of the cluster file (a `sandbox:` block).
    init(clusterExtra: String = "") throws {
        dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-escape-\(UUID().uuidString)")
        workspaceRoot = dir.appendingPathComponent(".agentflow/workspaces", isDirectory: true)
        try FileManager.default.createDirectory(at: workspaceRoot.appendingPathComponent("other-attempt"), withIntermediateDirectories: true)
        chmod(dir.path, 0o755)
        try "\(secret) another attempt's output".write(to: workspaceRoot.appendingPathComponent("other-attempt/secret.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("keys"), withIntermediateDirectories: true)
        try "\(secret) worker key".write(to: dir.appendingPathComponent("keys/worker.key"), atomically: true, encoding: .utf8)
        // A GPU's device node for the attack to open: a stand-in (the null device's numbers)
        // when this host has none.
        if !FileManager.default.fileExists(atPath: "/dev/nvidia0"), geteuid() == 0, mknod("/dev/nvidia0", S_IFCHR | 0o666, dev_t(1 << 8 | 3)) == 0 {
            standInDevice = "/dev/nvidia0"
        }
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", Paths.root.appendingPathComponent("tools/fake_openai_server.py").path]
        let stdin = Pipe(), stdout = Pipe()
        server.standardInput = stdin
        server.standardOutput = stdout
        try launch(server)
        let line = String(decoding: stdout.fileHandleForReading.availableData, as: UTF8.self)
        guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "PORT ", with: "")) else {
            throw WaitTimeout(what: "the stand-in model server's port (it said '\(line)')")
        }
        model = server
        modelPort = port
        stdinKeeper = stdin
        clusterFile = dir.appendingPathComponent("cluster.yaml").path
        database = dir.appendingPathComponent("agentflow.db").path
        try """
            coordinator:
              workers: tcp://127.0.0.1:\(workersPort)
              clients: tcp://127.0.0.1:\(clientsPort)
              database: \(database)
            models:
              - {name: code, price: {input: 0, output: 0}, context: 8192}
            workers:
              - {name: sandboxed, gpus: [0], model: code, slots: 4, backend: {kind: openai, url: "http://127.0.0.1:\(modelPort)/v1"}}
            \(clusterExtra)
            """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        coordinator = try Proc(["coordinator", "--cluster", clusterFile, "--http", "127.0.0.1:\(httpPort)"], log: dir.appendingPathComponent("coordinator.log").path)
        worker = try Proc(["worker", "--name", "sandboxed", "--cluster", clusterFile], log: dir.appendingPathComponent("worker.log").path, cwd: dir,
                          environment: ["AGENTFLOW_ESCAPE_SECRET": secret, "OPENAI_API_KEY": secret])
        try waitUntil(timeout: 30, "the worker registered: \(logs)") {
            let r = try cli(["workers", "--json"])
            return r.out.contains("\"alive\"")
        }
    }

    private let stdinKeeper: Pipe

    /// `code` with the host's particulars in place of `{NAME}`.
    func fill(_ code: String) -> String {
        let values: [String: String] = [
            "SECRET": secret, "WORKER_PID": String(worker.pid), "KEYFILE": dir.appendingPathComponent("keys/worker.key").path,
            "CLUSTER": clusterFile, "DATABASE": database, "OTHER": workspaceRoot.appendingPathComponent("other-attempt").path,
            "OTHER_NAME": "other-attempt", "HOSTDIR": dir.path, "MARKER": marker, "WORKERS_PORT": String(workersPort),
            "CLIENTS_PORT": String(clientsPort), "HTTP_PORT": String(httpPort), "MODEL_PORT": String(modelPort),
            "HOST_ADDRESS": Self.nonLoopbackAddress() ?? "192.0.2.1",
        ]
        var text = code
        for (key, value) in values { text = text.replacingOccurrences(of: "{\(key)}", with: value) }
        return text
    }

    /// Submits a job of `subtasks` (id, code): one attempt each, one turn, verifier `true`;
    /// `sandbox`: a subtask's `sandbox:` block, by id.
    func submit(name: String, subtasks: [(String, String)], deadline: String, sandbox: [String: String] = [:]) throws -> String {
        var yaml = """
            name: \(name)
            budget: {tokens: 2000000}
            deadline: \(deadline)
            scaffold: {summarizer: off, corrector: off, maxTurns: 1}
            subtasks:

            """
        for (id, code) in subtasks {
            let prompt = ("Reply with this code.\n<<<CODE\n" + code + "\nCODE>>>\n").split(separator: "\n", omittingEmptySubsequences: false)
                .map { "      " + $0 }.joined(separator: "\n")
            yaml += "  - id: \(id)\n    maxAttempts: 1\n    maxTokens: 20000\n    verify: {command: \"true\"}\n"
            if let block = sandbox[id] { yaml += "    sandbox: \(block)\n" }
            yaml += "    prompt: |\n\(prompt)\n"
        }
        let file = dir.appendingPathComponent("\(name).yaml").path
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try cli(["submit", file, "--planner", "seq:1"])
        guard r.code == 0 else { throw WaitTimeout(what: "submit: \(r)") }
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits for the job to end; its final state.
    func waitForEnd(_ job: String, timeout: Double) throws -> String {
        var state = ""
        try waitUntil(timeout: timeout, "job \(job) ends (last state \(state))\n\(logs)") {
            let r = try cli(["status", job, "--json"])
            let object = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [String: Any]
            state = object?["state"] as? String ?? ""
            return ["succeeded", "failed", "deadline_exceeded", "cancelled", "infeasible"].contains(state)
        }
        return state
    }

    struct AttemptRow: CustomStringConvertible {
        var subtask: String
        var state: String
        var detail: String
        var endedAt: String
        var description: String { "\(subtask) \(state) ended \(endedAt): \(detail)" }
    }

    func attempts(_ job: String) throws -> [AttemptRow] {
        let r = try cli(["attempts", job, "--json"])
        let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8))) as? [[String: Any]] ?? []
        return list.map {
            AttemptRow(subtask: $0["subtask"] as? String ?? "", state: $0["state"] as? String ?? "", detail: $0["detail"] as? String ?? "",
                       endedAt: $0["endedAt"] as? String ?? "")
        }
    }

    func cli(_ args: [String]) throws -> (code: Int32, out: String, err: String) {
        try agentflow(args + ["--cluster", clusterFile], timeout: 30)
    }

    /// Host processes whose command line contains `text`.
    func processes(containing text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data, as: UTF8.self).contains(text) && pid != getpid()
        }
    }

    /// One of this host's addresses that is not loopback (its model server would answer there).
    static func nonLoopbackAddress() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            inet_ntop(AF_INET, &ip, &text, socklen_t(INET_ADDRSTRLEN))
            let string = String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !string.hasPrefix("127.") { return string }
        }
        return nil
    }

    var logs: String {
        ["coordinator.log", "worker.log"].map { name in
            "== \(name)\n" + ((try? String(contentsOfFile: dir.appendingPathComponent(name).path, encoding: .utf8)) ?? "")
        }.joined(separator: "\n")
    }

    func stop() {
        worker?.terminate()
        coordinator?.terminate()
        if let worker, worker.wait(timeout: 10) == nil { worker.kill9() }
        if let coordinator, coordinator.wait(timeout: 5) == nil { coordinator.kill9() }
        try? stdinKeeper.fileHandleForWriting.close()
        model.terminate()
        if let standInDevice { unlink(standInDevice) }
        for pid in processes(containing: marker) { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(at: dir)
    }
}
