import Foundation
import Testing

/// `agentflow keys --out DIR/NAME`: a key pair in a file; returns its public key.
func keyPair(_ dir: URL, _ name: String) throws -> String {
    let r = try agentflow(["keys", "--out", dir.appendingPathComponent(name).path])
    #expect(r.code == 0, "\(r.err)")
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// CURVE on both sockets: peers with the server key (and an allowed key pair) get in; a plain
/// client and a worker with an unlisted key do not.
@Suite(.serialized) struct CurveTests {
    @Test func onlyPeersWithTheKeysGetIn() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-curve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func keys(_ name: String) throws -> String { try keyPair(dir, name) }
        let server = try keys("server.key"), good = try keys("good.key")
        let rogueKey = try keys("rogue.key")
        _ = try keys("stranger.key")
        let w = freePort(), c = freePort()
        func clusterFile(_ name: String, clientKey: String?) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try """
            coordinator:
              workers: tcp://127.0.0.1:\(w)
              clients: tcp://127.0.0.1:\(c)
              database: \(dir.appendingPathComponent("db.sqlite").path)
              curve:
                serverKey: "\(server)"
                serverKeyFile: \(dir.appendingPathComponent("server.key").path)
                authorizedKeys: ["\(good)"]
            \(clientKey.map { "    clientKeyFile: \(dir.appendingPathComponent($0).path)" } ?? "")
            models:
              - {name: smollm2-135m}
            workers:
              - {name: w0, model: smollm2-135m, backend: {kind: sim, timeScale: 0.01}}
              - {name: rogue, model: smollm2-135m, backend: {kind: sim, timeScale: 0.01}}
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let goodCluster = try clusterFile("good.yaml", clientKey: "good.key")
        let rogueCluster = try clusterFile("rogue.yaml", clientKey: "rogue.key")
        let strangerCluster = try clusterFile("stranger.yaml", clientKey: "stranger.key")
        let coordinator = try Proc(["coordinator", "--cluster", goodCluster], log: dir.appendingPathComponent("c.log").path)
        let worker = try Proc(["worker", "--name", "w0", "--cluster", goodCluster], log: dir.appendingPathComponent("w0.log").path)
        let rogue = try Proc(["worker", "--name", "rogue", "--cluster", rogueCluster], log: dir.appendingPathComponent("rogue.log").path)
        defer {
            for p in [worker, rogue, coordinator] { p.terminate() }
            for p in [worker, rogue, coordinator] where p.wait(timeout: 5) == nil { p.kill9() }
        }
        var names: [String] = []
        try waitUntil(timeout: 15, "the allowed worker to register") {
            let r = try agentflow(["workers", "--json", "--cluster", goodCluster], timeout: 10)
            let list = (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
            names = list.compactMap { $0["name"] as? String }
            return names.contains("w0")
        }
        Thread.sleep(forTimeInterval: 1.5)
        let wf = dir.appendingPathComponent("wf.yaml").path
        try "name: tiny\nbudget: {tokens: 10000}\ndeadline: 1m\nsubtasks:\n  - {id: a, prompt: x, estimates: {smollm2-135m: {success: 1, tokens: 100, seconds: 1}}}\n"
            .write(toFile: wf, atomically: true, encoding: .utf8)
        let r = try agentflow(["submit", wf, "--cluster", goodCluster, "--wait", "--json", "--planner", "seq:1"])
        #expect(r.code == 0, "\(r.err)\n\(coordinator.output)")
        let after = try agentflow(["workers", "--json", "--cluster", goodCluster])
        #expect(!after.out.contains("rogue"), "a worker with an unlisted key registered")
        #expect(rogue.process.isRunning, "the rogue worker must be up and trying for its absence to mean anything")
        // A plain client (no CURVE) and a client with an unlisted key cannot reach it.
        let plain = try agentflow(["jobs", "--coordinator", "tcp://127.0.0.1:\(c)"], timeout: 30)  // ./cluster.yaml: no CURVE
        #expect(plain.code == 3)
        let unlisted = try agentflow(["jobs", "--cluster", strangerCluster], timeout: 30)
        #expect(unlisted.code == 3)
        // The rogue was absent because CURVE refused it, not because it never tried: the
        // coordinator counts the handshakes its allowlist refused and prints them on stop.
        coordinator.terminate()
        #expect(coordinator.wait(timeout: 15) == 0)
        let denied = coordinator.output.split(separator: "\n").first { $0.contains("connections refused by CURVE") }.map(String.init) ?? ""
        #expect(denied.contains(rogueKey), "the rogue worker's key is not among those CURVE refused: \(coordinator.output)")
    }
}
