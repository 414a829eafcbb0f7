import Foundation
import Testing

/// Worker identity over CURVE (issue 12): a key registers only the names it owns, a live name
/// stays with its key, SIGHUP reloads the bindings without dropping connections, and a peer
/// whose handshake fails is told it is a key problem. Plus the bind/--insecure rule.
@Suite(.serialized) struct IdentityTests {
    @Test func keysOwnNamesAndHandshakeFailuresSayKeyProblem() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-id-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func keys(_ name: String) throws -> String {
            let r = try agentflow(["keys", "--out", file(name)])
            #expect(r.code == 0, "\(r.err)")
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func enroll(_ args: [String]) throws -> String {
            let r = try agentflow(["keys", "enroll"] + args)
            #expect(r.code == 0, "\(r.err)")
            return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let server = try keys("server.key"), client = try keys("client.key"), other = try keys("other-server.key")
        _ = try keys("mallory.key")
        // alice is bound in cluster.yaml, the node prefix hb-* in the enrolment file.
        let aliceLine = try enroll(["alice", "--out", file("alice.key")])
        #expect(aliceLine.hasPrefix("\"alice\": \""), "\(aliceLine)")
        let enrolment = file("enrolled.yaml")
        let hbLine = try enroll(["hb", "--prefix", "--out", file("hb.key"), "--enrolment", enrolment])
        #expect(hbLine.hasPrefix("\"hb-*\": \""))
        #expect(try agentflow(["keys", "enroll", "alice", "--out", file("alice.key")]).code == 2, "a key file is never overwritten")
        let w = freePort(), c = freePort()
        func cluster(_ name: String, serverKey: String, clientKey: String) throws -> String {
            try """
            coordinator:
              workers: tcp://127.0.0.1:\(w)
              clients: tcp://127.0.0.1:\(c)
              database: \(file("db.sqlite"))
              curve:
                serverKey: "\(serverKey)"
                serverKeyFile: \(file("server.key"))
                clientKeyFile: \(file(clientKey))
                authorizedKeys: ["\(client)"]
                enrolment: \(enrolment)
                workerKeys:
                  \(aliceLine)
            models:
              - {name: m}
            """.write(toFile: file(name), atomically: true, encoding: .utf8)
            return file(name)
        }
        let good = try cluster("good.yaml", serverKey: server, clientKey: "client.key")
        let coordinator = try Proc(["coordinator", "--cluster", good], log: file("coordinator.log"))
        var procs = [coordinator]
        defer {
            for p in procs.reversed() { p.terminate() }
            for p in procs.reversed() where p.wait(timeout: 5) == nil { p.kill9() }
        }
        func worker(_ name: String, key: String, log: String) throws -> Proc {
            let p = try Proc(["worker", "--name", name, "--cluster", good, "--model", "m", "--backend", "sim", "--key", file(key)], log: file(log))
            procs.append(p)
            return p
        }
        func workers() -> [String: [String: Any]] {
            let out = (try? agentflow(["workers", "--json", "--cluster", good], timeout: 20))?.out ?? ""
            let list = (try? JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]]) ?? []
            return Dictionary(list.filter { $0["state"] as? String == "alive" }.map { ($0["name"] as! String, $0) }) { a, _ in a }
        }
        let alice = try worker("alice", key: "alice.key", log: "alice.log")
        let node = try Proc(["node", "--cluster", good, "--model", "m", "--backend", "sim", "--gpus", "0,1", "--name-prefix", "hb",
                             "--key", file("hb.key")], log: file("node.log"))
        procs.append(node)
        try waitUntil(timeout: 30, "alice, hb-gpu0 and hb-gpu1 registered") { Set(workers().keys) == ["alice", "hb-gpu0", "hb-gpu1"] }

        // A valid, admitted key registering a name it does not own is refused, and told why.
        let impostor = try worker("alice", key: "hb.key", log: "impostor.log")
        try waitUntil(timeout: 20, "the impostor told it may not register") { impostor.output.contains("may not register as 'alice'") }
        #expect(impostor.output.contains("it owns: hb-*"), "\(impostor.output)")
        // A key the coordinator does not admit at all: the handshake fails, and the worker says
        // it is a key problem (without --verbose).
        let stranger = try worker("mallory", key: "mallory.key", log: "mallory.log")
        try waitUntil(timeout: 20, "the stranger reports a key problem") { stranger.output.contains("key problem") }

        // SIGHUP: a second key for alice and carol's key, from the enrolment file, without a restart.
        _ = try enroll(["alice", "--out", file("alice2.key"), "--enrolment", enrolment])
        _ = try enroll(["carol", "--out", file("carol.key"), "--enrolment", enrolment])
        kill(coordinator.pid, SIGHUP)
        try waitUntil(timeout: 10, "the coordinator reloaded its keys") { coordinator.output.contains("reloaded keys") }
        let carol = try worker("carol", key: "carol.key", log: "carol.log")
        try waitUntil(timeout: 20, "carol registered after the reload") { workers()["carol"] != nil }
        _ = carol
        // alice's name is live under her first key: the second key is refused while she runs.
        let twin = try worker("alice", key: "alice2.key", log: "twin.log")
        try waitUntil(timeout: 20, "the twin refused") { twin.output.contains("in use by a live worker with another key") }
        // Connections made before the reload stay up: alice never had to re-register.
        #expect(workers()["alice"] != nil)
        #expect(!alice.output.contains("silent"), "\(alice.output)")
        #expect(Set(workers().keys) == ["alice", "carol", "hb-gpu0", "hb-gpu1"])

        // A client with the wrong server key, and one whose key is not admitted: exit 3, a key problem.
        let wrongServer = try cluster("wrong.yaml", serverKey: other, clientKey: "client.key")
        let r1 = try agentflow(["jobs", "--cluster", wrongServer], timeout: 30)
        #expect(r1.code == 3 && r1.err.contains("key problem"), "\(r1.err)")
        let unlisted = try cluster("unlisted.yaml", serverKey: server, clientKey: "mallory.key")
        let r2 = try agentflow(["jobs", "--cluster", unlisted], timeout: 30)
        #expect(r2.code == 3 && r2.err.contains("key problem") && r2.err.contains("refused this key"), "\(r2.err)")
        // A worker whose coordinator is not there says so every few seconds, without --verbose.
        let lonely = try Proc(["worker", "--name", "lonely", "--coordinator", "tcp://127.0.0.1:\(freePort())", "--model", "m",
                               "--backend", "sim", "--cluster", "/nonexistent.yaml"], log: file("lonely.log"))
        procs.append(lonely)
        try waitUntil(timeout: 20, "two reports from the lonely worker") {
            lonely.output.components(separatedBy: "cannot reach the coordinator").count >= 3
        }
    }

    @Test func nonLoopbackBindNeedsCurveOrInsecure() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-bind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = freePort(), c = freePort()
        let path = dir.appendingPathComponent("cluster.yaml").path
        try """
        coordinator:
          workers: tcp://127.0.0.1:\(w)
          clients: tcp://127.0.0.1:\(c)
          bind: tcp://0.0.0.0
          database: \(dir.appendingPathComponent("db.sqlite").path)
        models:
          - {name: m}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try agentflow(["coordinator", "--cluster", path], timeout: 30)
        #expect(refused.code == 2 && refused.err.contains("tcp://0.0.0.0:\(w)") && refused.err.contains("--insecure"), "\(refused.err)")
        let coordinator = try Proc(["coordinator", "--cluster", path, "--insecure"], log: dir.appendingPathComponent("c.log").path)
        defer {
            coordinator.terminate()
            if coordinator.wait(timeout: 5) == nil { coordinator.kill9() }
        }
        // Peers connect to the connect address; AGENTFLOW_COORDINATOR points a client elsewhere than its cluster file.
        try waitUntil(timeout: 20, "the coordinator answers through AGENTFLOW_COORDINATOR") {
            try agentflow(["workers"], timeout: 20,
                          environment: ["AGENTFLOW_COORDINATOR": "tcp://127.0.0.1:\(c)"]).code == 0
        }
        #expect(coordinator.output.contains("--insecure"))
    }
}
