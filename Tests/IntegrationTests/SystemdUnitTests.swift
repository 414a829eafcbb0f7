import Foundation
import TestSupport
import Testing

/// Deployment that works as written (issue 18 item 5): the systemd units verify clean and are
/// hardened (`systemd-analyze`, offline: this machine's PID 1 is not systemd), the node unit's
/// command line with the example node.env starts a real node whose workers register, a key file
/// the service's user cannot read says "permission denied" and names the user, and the
/// firewall files hold on fresh hosts (tools/firewall-test.sh).
@Suite(.serialized) struct SystemdUnitTests {
    static let units = ["agentflow-coordinator.service", "agentflow-node.service"]

    /// A copy of each unit in a temporary directory, the binary path pointed at the built one
    /// (`verify` checks that ExecStart's program exists and is executable).
    static func unitCopies(_ dir: URL, edit: (String) -> String = { $0 }) throws -> [String] {
        try units.map { name in
            let text = try String(contentsOf: Paths.root.appendingPathComponent("tools/systemd/\(name)"), encoding: .utf8)
            let path = dir.appendingPathComponent(name).path
            try edit(text.replacingOccurrences(of: "/usr/local/bin/agentflow", with: Paths.agentflow)).write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    static func run(_ args: [String], environment: [String: String]? = nil) throws -> (code: Int32, out: String) {
        let r = try runTool("/usr/bin/env", args, environment: environment)
        return (r.code, r.output)
    }

    static func tempDir(_ tag: String) throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-\(tag)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `systemd-analyze verify` prints every problem and still exits 0, so silence is the check;
    /// a copy with a misspelt directive shows the check can fail.
    @Test func unitsVerifyWithoutAWord() throws {
        let dir = try Self.tempDir("units")
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Self.run(["systemd-analyze", "verify"] + (try Self.unitCopies(dir)))
        #expect(good.code == 0 && good.out.isEmpty, "\(good.out)")
        let broken = try Self.tempDir("units-broken")
        defer { try? FileManager.default.removeItem(at: broken) }
        let bad = try Self.run(["systemd-analyze", "verify"] + (try Self.unitCopies(broken) { $0.replacingOccurrences(of: "NoNewPrivileges=", with: "NoNewPrivilege=") }))
        #expect(bad.out.contains("Unknown key") && bad.out.contains("NoNewPrivilege"), "\(bad.out)")
    }

    /// `systemd-analyze security` rates each unit at most 4.0 ("OK").
    @Test func unitsAreRatedAtMostFour() throws {
        let dir = try Self.tempDir("security")
        defer { try? FileManager.default.removeItem(at: dir) }
        for path in try Self.unitCopies(dir) {
            let r = try Self.run(["systemd-analyze", "security", "--offline=true", "--no-pager", path])
            let line = r.out.split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
            let score = line.split(separator: ":").last.flatMap { Double($0.split(separator: " ").first ?? "") }
            print("[systemd] \(line)")
            let rated = try #require(score, "no rating in: \(r.out.suffix(500))")
            #expect(rated <= 4.0, "\(path): \(rated)\n\(r.out)")
        }
    }

    /// The node unit's ExecStart, run as systemd would run it — `$$` unescaped, the environment
    /// only what node.env sets (parsed as systemd parses an EnvironmentFile) — with the example
    /// node.env's serve command and arguments pointed at this test's coordinator and a stand-in
    /// model server: the node starts one server per GPU with its whole command line, and both
    /// workers register. About 10 s.
    @Test func theNodeUnitStartsANodeWithTheExampleEnvironment() throws {
        // One worker entry (never started) keeps the cluster file's list non-empty.
        let cluster = try TestCluster(workers: [("cluster-file-worker", "smollm2-135m", 1)], timeScale: 0.01)
        try cluster.startCoordinator()
        defer { cluster.stop() }
        let unit = try String(contentsOf: Paths.root.appendingPathComponent("tools/systemd/agentflow-node.service"), encoding: .utf8)
        let exec = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }.map { String($0.dropFirst("ExecStart=".count)) })
        // ExecStart=/bin/sh -fc '…': systemd splits on blanks outside quotes, then turns $$ into $.
        let words = Self.systemdWords(exec).map { $0.replacingOccurrences(of: "$$", with: "$") }
        #expect(words.count == 3 && words[0] == "/bin/sh", "\(words)")
        var script = words[2]
        script = script.replacingOccurrences(of: "/usr/local/bin/agentflow", with: Paths.agentflow)
            .replacingOccurrences(of: "/etc/agentflow/cluster.yaml", with: cluster.clusterFile)
        var env = try Self.environmentFile(String(contentsOf: Paths.root.appendingPathComponent("tools/systemd/node.env.example"), encoding: .utf8))
        #expect(env["AGENTFLOW_SERVE"]?.contains(" --port {port}") == true && env["AGENTFLOW_NODE_ARGS"]?.contains("--gpus all") == true, "\(env)")
        // The example's shape — a many-word server command, arguments split on blanks — with this
        // machine's stand-ins: a scripted OpenAI server instead of vLLM, two given GPUs.
        let port = freePort()
        env["AGENTFLOW_SERVE"] = "python3 \(Paths.root.path)/tools/fake_openai_server.py --port {port} --model smollm2-135m"
        env["AGENTFLOW_NODE_ARGS"] = "--model smollm2-135m --backend http://127.0.0.1:{port}/v1 --gpus 0,1 --slots 2 --serve-port \(port) --name-prefix unit-test --coordinator tcp://127.0.0.1:\(cluster.workersPort)"
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env["HOME"] = cluster.dir.path
        let node = Process()
        node.executableURL = URL(fileURLWithPath: "/bin/sh")
        node.arguments = [words[1], script]
        node.environment = env
        node.currentDirectoryURL = cluster.dir
        let log = cluster.dir.appendingPathComponent("node.log").path
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        node.standardOutput = handle
        node.standardError = handle
        try launch(node)
        try? handle.close()  // the child writes through its own copy
        defer {
            kill(node.processIdentifier, SIGTERM)
            let end = Date().addingTimeInterval(10)
            while node.isRunning && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
            if node.isRunning { kill(node.processIdentifier, SIGKILL) }
        }
        try waitUntil(timeout: 40, "both workers of the node registered") {
            Set(try cluster.aliveWorkers().compactMap { $0["name"] as? String }) == ["unit-test-gpu0", "unit-test-gpu1"]
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(node.isRunning, "\(text)")
        // exec: the node replaced the shell, so SIGTERM from systemd reaches it.
        let comm = (try? String(contentsOfFile: "/proc/\(node.processIdentifier)/comm", encoding: .utf8)) ?? ""
        #expect(comm.hasPrefix("agentflow"), "\(comm)")
    }

    /// Words of a systemd command line: blanks split, single and double quotes group.
    static func systemdWords(_ line: String) -> [String] {
        var words: [String] = [], word = "", quote: Character?
        var inWord = false
        for ch in line {
            if let q = quote {
                if ch == q { quote = nil } else { word.append(ch) }
            } else if ch == "'" || ch == "\"" {
                quote = ch
                inWord = true
            } else if ch == " " || ch == "\t" {
                if inWord { words.append(word) }
                word = ""
                inWord = false
            } else {
                word.append(ch)
                inWord = true
            }
        }
        if inWord { words.append(word) }
        return words
    }

    /// An EnvironmentFile as systemd reads it: NAME=value lines, `#` comments, blank lines; a
    /// value wholly in quotes loses them.
    static func environmentFile(_ text: String) throws -> [String: String] {
        var env: [String: String] = [:]
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw EnvFileError(line: line) }
            var value = String(line[line.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f { value = String(value.dropFirst().dropLast()) }
            env[String(line[..<eq])] = value
        }
        return env
    }

    struct EnvFileError: Error { var line: String }

    /// A key file the service's user cannot read: the coordinator and the CLI say "permission
    /// denied", name that user, and the file's owner and mode — not "missing". Runs them as
    /// `nobody` (setpriv), so it needs root.
    @Test(.enabled(if: getuid() == 0, "running a command as another user needs root"))
    func anUnreadableKeyFileSaysPermissionDeniedAndNamesTheUser() throws {
        let dir = try Self.tempDir("keyperm")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        let server = try keyPair(dir, "server.key")   // root's, mode 0600
        let cluster = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(freePort())
          clients: tcp://127.0.0.1:\(freePort())
          database: \(dir.appendingPathComponent("db.sqlite").path)
          curve:
            serverKey: "\(server)"
            serverKeyFile: \(dir.appendingPathComponent("server.key").path)
        models:
          - {name: m}
        """.write(toFile: cluster, atomically: true, encoding: .utf8)
        let asNobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", Paths.agentflow]
        for args in [["coordinator", "--cluster", cluster], ["status", "--cluster", cluster, "--key", dir.appendingPathComponent("server.key").path]] {
            let r = try Self.run(asNobody + args, environment: ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent"])
            #expect(r.code == 2, "\(args[0]): exit \(r.code): \(r.out)")
            #expect(r.out.contains("permission denied") && r.out.contains("user nobody") && r.out.contains("root:root with mode 0600"), "\(args[0]): \(r.out)")
        }
        let missing = try Self.run([Paths.agentflow, "status", "--cluster", cluster, "--key", dir.appendingPathComponent("nope.key").path])
        #expect(missing.code == 2 && missing.out.contains("no such file") && missing.out.contains("agentflow keys --out"), "\(missing.out)")

        // The coordinator's other secrets, its own key readable this time: an enrolment file
        // root keeps to itself, one behind a closed directory (which must not read as "no names
        // bound": any key could then register any name) and an HTTP token file.
        let open = dir.appendingPathComponent("server-open.key").path
        try FileManager.default.copyItem(atPath: dir.appendingPathComponent("server.key").path, toPath: open)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: open)
        let closed = dir.appendingPathComponent("closed")
        try FileManager.default.createDirectory(at: closed, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for file in ["enrolled.yaml", "closed/enrolled.yaml", "tokens"] {
            try "admin 0123456789abcdef0123\n".write(toFile: dir.appendingPathComponent(file).path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: dir.appendingPathComponent(file).path)
        }
        for (extra, what) in [("    enrolment: \(dir.path)/enrolled.yaml\n", "enrolment file"),
                              ("    enrolment: \(closed.path)/enrolled.yaml\n", "enrolment file"),
                              ("  http: 127.0.0.1:\(freePort())\n  httpTokens: \(dir.path)/tokens\n", "HTTP token file")] {
            let file = dir.appendingPathComponent("cluster-\(UUID().uuidString).yaml").path
            let curve = "  curve:\n    serverKey: \"\(server)\"\n    serverKeyFile: \(open)\n"
            try """
            coordinator:
              workers: tcp://127.0.0.1:\(freePort())
              clients: ipc://\(dir.path)/clients-\(UUID().uuidString.prefix(8)).sock
              database: /nonexistent/db.sqlite

            """.appending(extra.hasPrefix("    ") ? curve + extra : extra + curve).appending("models:\n  - {name: m}\n").write(toFile: file, atomically: true, encoding: .utf8)
            let r = try Self.run(asNobody + ["coordinator", "--cluster", file], environment: ["PATH": "/usr/bin:/bin", "HOME": "/nonexistent"])
            #expect(r.code == 2, "\(extra): exit \(r.code): \(r.out)")
            #expect(r.out.contains("permission denied") && r.out.contains("user nobody") && r.out.contains(what), "\(extra): \(r.out)")
        }
    }

    /// tools/firewall-test.sh: the nftables files on fresh hosts (network namespaces). About 25 s.
    @Test(.enabled(if: getuid() == 0, "network namespaces need root"))
    func theFirewallFilesHoldOnFreshHosts() throws {
        let r = try Self.run([Paths.root.appendingPathComponent("tools/firewall-test.sh").path])
        #expect(r.code == 0, "\(r.out)")
        #expect(r.out.contains("all checks passed"), "\(r.out)")
    }

    /// The node unit's file-system and privilege settings, re-created in a mount namespace (no
    /// systemd here: a read-only root, private /tmp, /proc with hidepid=invisible, no
    /// capabilities, no new privileges, an unprivileged user), leave the sandbox of model-written
    /// code working — `agentflow bench sandbox` runs its actions under bubblewrap — while each
    /// setting the unit leaves out for it (ProtectKernelTunables, ProtectKernelLogs, ProcSubset)
    /// breaks it, as the unit's comments say. About 5 s.
    @Test(.enabled(if: getuid() == 0, "mount namespaces and running as another user need root"))
    func theNodeUnitsRestrictionsLeaveTheSandboxWorking() throws {
        let script = """
            set -e
            mount --make-rprivate /
            mount -t tmpfs -o mode=1777 tmpfs /tmp
            mount -t proc -o hidepid=invisible proc /proc
            mount -o remount,bind,ro / 2>/dev/null || true
            case "$1" in
              ProtectKernelTunables) mount --bind /proc/sys /proc/sys; mount -o remount,bind,ro /proc/sys ;;
              ProtectKernelLogs) mount --bind /dev/null /proc/kmsg ;;
              ProcSubset) mount -t proc -o subset=pid proc /proc ;;
            esac
            cd /tmp
            exec setpriv --reuid=nobody --regid=nogroup --clear-groups --bounding-set=-all --no-new-privs -- \(Paths.agentflow) bench sandbox --rounds 1 --root /tmp/ws
            """
        let unit = try String(contentsOf: Paths.root.appendingPathComponent("tools/systemd/agentflow-node.service"), encoding: .utf8)
        for setting in ["ProtectProc=invisible", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n"] {
            #expect(unit.contains(setting), "the node unit no longer has \(setting): re-create it here")
        }
        let works = try Self.run(["unshare", "-m", "sh", "-c", script, "sh", "none"])
        #expect(works.code == 0 && works.out.contains("bubblewrap"), "\(works.out)")
        for left in ["ProtectKernelTunables", "ProtectKernelLogs", "ProcSubset"] {
            #expect(!unit.contains(left + "="), "the node unit sets \(left), which breaks the sandbox")
            let broken = try Self.run(["unshare", "-m", "sh", "-c", script, "sh", left])
            #expect(broken.code != 0 && broken.out.contains("bwrap"), "\(left): \(broken.out)")
        }
    }
}
