import Foundation
import TestSupport
import Testing

/// A non-loopback IPv4 address of this host (eth0's), for a peer that is not on loopback.
func nonLoopbackAddress() -> String? {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return nil }
    defer { freeifaddrs(list) }
    var p = list
    while let a = p {
        defer { p = a.pointee.ifa_next }
        guard let sa = a.pointee.ifa_addr, sa.pointee.sa_family == UInt16(AF_INET) else { continue }
        var host = [CChar](repeating: 0, count: 64)
        getnameinfo(sa, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
        let text = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if !text.hasPrefix("127.") && !text.isEmpty { return text }
    }
    return nil
}

/// Issue 15 item 6: no unauthenticated side door. With HTTP tokens on, the ZeroMQ client socket
/// needs a CURVE key with a role, or is a Unix socket only the service's group can open; on
/// loopback without tokens, a web page in a local browser can neither rebind a name to the API
/// nor post to it; and without CURVE, only this host's processes may register workers.
@Suite(.serialized) struct SideDoorTests {
    /// What browsers send for a page on another site, and what DNS rebinding sends, refused;
    /// what the CLI, curl and the Python client send (no Origin), and the API's own pages, let through.
    @Test func crossSiteWritesAndForeignHostsAreRefused() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        let base = try cluster.startWithHTTP()
        let port = String(base.split(separator: ":").last!)
        let yaml = "name: tiny\nbudget: {tokens: 10000}\ndeadline: 2m\nsubtasks:\n  - {id: a, prompt: x, estimates: {smollm2-135m: {success: 0, tokens: 100, seconds: 30}}}\n"
        func jobCount() throws -> Int { (try http("GET", base + "/api/v1/jobs").json?["jobs"] as? [Any])?.count ?? -1 }

        // DNS rebinding: a page at attacker.example whose name now points at 127.0.0.1.
        for host in ["attacker.example", "attacker.example:\(port)", "127.0.0.1.attacker.example", "[::2]:\(port)"] {
            let r = try http("GET", base + "/api/v1/jobs", headers: ["Host: \(host)"])
            #expect(r.status == 403 && r.body.contains("DNS rebinding"), "Host \(host): \(r.status) \(r.body)")
        }
        #expect(try http("GET", base + "/", headers: ["Host: attacker.example"]).status == 403)
        for host in ["127.0.0.1:\(port)", "localhost:\(port)", "LOCALHOST", "127.0.0.1"] {
            #expect(try http("GET", base + "/api/v1/jobs", headers: ["Host: \(host)"]).status == 200, "Host \(host)")
        }

        // Cross-site writes: nothing is created or cancelled.
        let before = try jobCount()
        let refused: [(headers: [String], status: Int)] = [
            (["Origin: http://attacker.example"], 403),
            (["Origin: http://127.0.0.1:\(Int(port)! + 1)"], 403),
            (["Origin: null"], 403),
            (["Sec-Fetch-Site: cross-site"], 403),
            (["Sec-Fetch-Site: same-site"], 403),
        ]
        for (headers, status) in refused {
            let r = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: yaml, headers: headers)
            #expect(r.status == status, "\(headers): \(r.status) \(r.body)")
        }
        // A form or a no-cors fetch can only send these types: refused whatever the Origin.
        for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain;charset=UTF-8", ""] {
            let r = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: yaml, contentType: type)
            #expect(r.status == 415, "Content-Type '\(type)': \(r.status) \(r.body)")
        }
        #expect(try jobCount() == before, "a refused request created a job")

        // The CLI's, curl's and the Python client's way: no Origin. And the API's own page's.
        let plain = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: yaml)
        #expect(plain.status == 201, "\(plain.body)")
        let own = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: yaml, headers: ["Origin: http://127.0.0.1:\(port)", "Sec-Fetch-Site: same-origin"])
        #expect(own.status == 201, "\(own.body)")
        let id = try #require(plain.json?["id"] as? String)
        for origin in ["http://attacker.example", "null"] {
            let r = try http("POST", base + "/api/v1/jobs/\(id)/cancel", headers: ["Origin: \(origin)"])
            #expect(r.status == 403, "cancel from \(origin): \(r.status)")
        }
        #expect(try http("GET", base + "/api/v1/jobs/\(id)").json?["state"] as? String != "cancelled")
        #expect(try http("POST", base + "/api/v1/jobs/\(id)/cancel").status == 200)
        #expect(try http("GET", base + "/api/v1/jobs/\(id)").json?["state"] as? String == "cancelled")
    }

    /// HTTP tokens on, CURVE with client keys: `agentflow cancel` without a listed key, or with a
    /// `read` key, is refused (exit 4) and the job runs on; an `admin` key cancels it. The HTTP
    /// API, which reaches the coordinator in-process, works with its bearer tokens.
    @Test func withTokensOnTheClientSocketNeedsAKeyWithARole() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-side-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try keyPair(dir, "server.key"), admin = try keyPair(dir, "admin.key"), reader = try keyPair(dir, "read.key")
        _ = try keyPair(dir, "stranger.key")
        let tokens = dir.appendingPathComponent("tokens").path
        try "admin \(HTTPAPITests.adminToken)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let (w, c, h) = (freePort(), freePort(), freePort())
        let clusterFile = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(w)
          clients: tcp://127.0.0.1:\(c)
          database: \(dir.appendingPathComponent("db.sqlite").path)
          http: 127.0.0.1:\(h)
          httpTokens: \(tokens)
          curve:
            serverKey: "\(server)"
            serverKeyFile: \(dir.appendingPathComponent("server.key").path)
            clientKeys: {"\(admin)": admin, "\(reader)": read}
        models:
          - {name: smollm2-135m}
        workers:
          - {name: w0, model: smollm2-135m, slots: 2, backend: {kind: sim, timeScale: 0.01}}
        """.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let coordinator = try Proc(["coordinator", "--cluster", clusterFile], log: dir.appendingPathComponent("c.log").path)
        let worker = try Proc(["worker", "--name", "w0", "--cluster", clusterFile], log: dir.appendingPathComponent("w0.log").path)
        defer {
            for p in [worker, coordinator] { p.terminate() }
            for p in [worker, coordinator] where p.wait(timeout: 5) == nil { p.kill9() }
        }
        let base = "http://127.0.0.1:\(h)"
        try waitUntil(timeout: 20, "the worker registered (seen over HTTP)") {
            let r = try? http("GET", base + "/api/v1/workers", token: HTTPAPITests.adminToken)
            return (r?.json?["workers"] as? [[String: Any]])?.contains { $0["state"] as? String == "alive" } == true
        }
        let yaml = "name: slow\nbudget: {tokens: 10000}\ndeadline: 2m\nsubtasks:\n  - {id: a, prompt: x, estimates: {smollm2-135m: {success: 0, tokens: 100, seconds: 30}}}\n"
        let posted = try http("POST", base + "/api/v1/jobs?planner=seq:1", body: yaml, token: HTTPAPITests.adminToken)
        #expect(posted.status == 201, "\(posted.body)\n\(coordinator.output)")
        let id = try #require(posted.json?["id"] as? String)
        func key(_ name: String) -> [String] { ["--key", dir.appendingPathComponent(name).path] }

        for (who, args) in [("no key (a fresh one)", [String]()), ("an unlisted key", key("stranger.key")), ("a read key", key("read.key"))] {
            let r = try agentflow(["cancel", id, "--cluster", clusterFile] + args, timeout: 30)
            #expect(r.code == 4 && r.err.contains("refused"), "cancel with \(who): \(r.code) \(r.err)")
        }
        let status = try agentflow(["status", id, "--json", "--cluster", clusterFile] + key("read.key"), timeout: 30)
        #expect(status.code == 0 && status.out.contains("\"running\""), "a read key reads: \(status.err)")
        let stranger = try agentflow(["jobs", "--cluster", clusterFile] + key("stranger.key"), timeout: 30)
        #expect(stranger.code == 4, "an unlisted key may not even read: \(stranger.err)")
        #expect(try http("GET", base + "/api/v1/jobs/\(id)", token: HTTPAPITests.adminToken).json?["state"] as? String == "running")
        let cancelled = try agentflow(["cancel", id, "--cluster", clusterFile] + key("admin.key"), timeout: 30)
        #expect(cancelled.code == 0 || cancelled.code == 1, "\(cancelled.err)")
        #expect(try http("GET", base + "/api/v1/jobs/\(id)", token: HTTPAPITests.adminToken).json?["state"] as? String == "cancelled")
        #expect(coordinator.process.isRunning)
    }

    /// HTTP tokens on without client keys: a TCP client socket is refused at start (exit 2), saying
    /// what to do; an `ipc://` one is made with mode 0660, so a user outside the group cannot
    /// cancel (exit 4) while the service's user can.
    @Test func withTokensAndNoClientKeysTheClientSocketIsAUnixSocket() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        let tokens = cluster.dir.appendingPathComponent("tokens").path
        try "admin \(HTTPAPITests.adminToken)\n".write(toFile: tokens, atomically: true, encoding: .utf8)
        let tcp = cluster.dir.appendingPathComponent("tcp.yaml").path
        try String(contentsOfFile: cluster.clusterFile, encoding: .utf8)
            .replacingOccurrences(of: "  liveness: 3\n", with: "  liveness: 3\n  httpTokens: \(tokens)\n")
            .write(toFile: tcp, atomically: true, encoding: .utf8)
        let refused = try agentflow(["coordinator", "--cluster", tcp, "--http", "127.0.0.1:\(freePort())"], timeout: 30)
        #expect(refused.code == 2 && refused.err.contains("clientKeys") && refused.err.contains("ipc://"), "\(refused.code) \(refused.err)")

        try cluster.enableHTTPTokens()
        let base = try cluster.startWithHTTP(tokens: true)
        let socket = String(cluster.clientsSocket.dropFirst("ipc://".count))
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o660, "the client socket's mode is \(String(mode ?? 0, radix: 8))")
        let posted = try http("POST", base + "/api/v1/jobs?planner=seq:1",
                              body: "name: slow\nbudget: {tokens: 10000}\ndeadline: 2m\nsubtasks:\n  - {id: a, prompt: x, estimates: {smollm2-135m: {success: 0, tokens: 100, seconds: 30}}}\n",
                              token: HTTPAPITests.adminToken)
        let id = try #require(posted.json?["id"] as? String, "\(posted.body)")
        if getuid() == 0 {
            // Another user (nobody, outside the coordinator's group) is refused at the socket.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", Paths.agentflow, "cancel", id, "--cluster", cluster.clusterFile]
            let err = Pipe()
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try launch(p)
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 4 && text.contains("not allowed"), "another user: \(p.terminationStatus) \(text)")
            #expect(try http("GET", base + "/api/v1/jobs/\(id)", token: HTTPAPITests.adminToken).json?["state"] as? String == "running")
        }
        let mine = try cluster.cli(["cancel", id])
        #expect(mine.code == 0 || mine.code == 1, "\(mine.err)")
        #expect(try http("GET", base + "/api/v1/jobs/\(id)", token: HTTPAPITests.adminToken).json?["state"] as? String == "cancelled")
    }

    /// Without CURVE, a worker registering from an address that is not this host's loopback —
    /// here a worker connecting to the loopback-bound coordinator from eth0's address, as through
    /// a port forward — is refused and told why; a loopback worker registers as ever.
    @Test func withoutCurveANonLoopbackWorkerIsRefused() throws {
        let address = try #require(nonLoopbackAddress(), "this test needs a non-loopback IPv4 address on the host")
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 2)], timeScale: 0.01)
        defer { cluster.stop() }
        try cluster.startAll()
        let remote = try Proc(["worker", "--name", "remote", "--model", "smollm2-135m", "--backend", "sim", "--slots", "64", "--time-scale", "0.01",
                               "--coordinator", "tcp://\(address):0;127.0.0.1:\(cluster.workersPort)"],
                              log: cluster.dir.appendingPathComponent("remote.log").path)
        defer {
            remote.terminate()
            if remote.wait(timeout: 5) == nil { remote.kill9() }
        }
        try waitUntil(timeout: 20, "the remote worker to be refused") { remote.output.contains("needs CURVE") }
        #expect(remote.output.contains(address), "\(remote.output)")
        let names = try cluster.aliveWorkers().compactMap { $0["name"] as? String }
        #expect(names == ["w0"], "\(names)")
        let ok = try cluster.cli(["submit", "workflows/chain.yaml", "--planner", "seq:1:smollm2-135m", "--wait", "--json"], timeout: 60)
        #expect(ok.code == 0, "\(ok.err)")
    }
}
