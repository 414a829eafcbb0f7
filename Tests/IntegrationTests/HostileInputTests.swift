import AgentFlowCore
import Foundation
import Testing
import Wire
import ZeroMQ

/// Holes found by reading the coordinator (issue 9), each checked on real processes: a second
/// coordinator on a held database, duplicate `needs`, absurd numbers from flags and from raw
/// requests that skip the CLI's checks.
@Suite(.serialized) struct HostileInputTests {
    /// Sends one request as a raw client and returns the reply (nil: none within the timeout).
    func rawRequest(_ endpoint: String, _ request: ClientRequest) throws -> ClientReply? {
        let context = ZMQContext()
        let s = try ZMQSocket(context, .dealer)
        defer { s.close() }
        try s.connect(endpoint)
        try s.send([try BinaryCodec.encode(request)])
        let end = Date().addingTimeInterval(20)
        while Date() < end {
            var poller = ZMQPoller()
            poller.add(s)
            try poller.poll(timeout: 0.2)
            if let frames = try s.receive(dontWait: true), let payload = frames.last {
                return try BinaryCodec.decode(ClientReply.self, from: payload)
            }
        }
        return nil
    }

    @Test func aSecondCoordinatorOnAHeldDatabaseIsRefused() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 1)], timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        let pid = cluster.coordinator!.pid
        // Same database, other ports: it must not start.
        let second = try agentflow(["coordinator", "--cluster", cluster.clusterFile, "--coordinator", "tcp://127.0.0.1:\(freePort())"], timeout: 30)
        #expect(second.code != 0)
        #expect(second.err.contains(cluster.database) && second.err.contains("pid \(pid)"), "\(second.err)")
        // `run` defaults to the cluster's database too.
        let run = try cluster.cli(["run", "workflows/chain.yaml", "--planner", "seq:1"], timeout: 60)
        #expect(run.code != 0)
        #expect(run.err.contains(cluster.database) && run.err.contains("pid \(pid)"), "\(run.err)")
        #expect(cluster.coordinator!.process.isRunning)
    }

    @Test func duplicateNeedsExitTwoNamingFileLineAndSubtask() throws {
        let path = NSTemporaryDirectory() + "af-dup-needs-\(UUID().uuidString).yaml"
        try "name: dup\nbudget: {tokens: 1000}\ndeadline: 1m\nsubtasks:\n  - {id: a, prompt: x}\n  - {id: b, prompt: x, needs: [a, a]}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        for args in [["validate", path], ["run", path, "--planner", "seq:1"]] {
            let r = try agentflow(args, timeout: 60)
            #expect(r.code == 2, "\(args): \(r.err)")
            #expect(r.err.contains(path) && r.err.contains("6") && r.err.contains("'a' twice"), "\(r.err)")
        }
    }

    @Test func absurdNumbersAreRefusedAndTheCoordinatorKeepsServing() throws {
        let cluster = try TestCluster(workers: [("w0", "smollm2-135m", 1)], timeScale: 0.01)
        try cluster.startAll()
        defer { cluster.stop() }
        for flags in [["--budget-usd", "inf"], ["--budget-usd", "1e10"], ["--budget-tokens", "9223372036854775807"],
                      ["--planner", "seq:100000000", "--budget-tokens", "1000000000"], ["--deadline", "100000d"]] {
            let r = try cluster.cli(["submit", "workflows/chain.yaml"] + flags, timeout: 30)
            #expect(r.code == 2, "\(flags): \(r.out) \(r.err)")
        }
        // The same values straight on the socket, past the CLI's checks.
        let yaml = try String(contentsOfFile: Paths.root.appendingPathComponent("workflows/chain.yaml").path, encoding: .utf8)
        let endpoint = "tcp://127.0.0.1:\(cluster.clientsPort)"
        let hostile: [SubmitRequest] = [
            SubmitRequest(yaml: yaml, file: "chain.yaml", budgetUSD: .infinity),
            SubmitRequest(yaml: yaml, file: "chain.yaml", budgetUSD: 1e10),
            SubmitRequest(yaml: yaml, file: "chain.yaml", budgetUSD: .nan),
            SubmitRequest(yaml: yaml, file: "chain.yaml", deadline: .nan),
            SubmitRequest(yaml: yaml, file: "chain.yaml", deadline: -5),
            SubmitRequest(yaml: yaml, file: "chain.yaml", budgetTokens: Int.max),
            SubmitRequest(yaml: yaml, file: "chain.yaml", budgetTokens: 1_000_000_000, planner: "seq:100000000"),
            SubmitRequest(yaml: yaml, file: "chain.yaml", minSuccess: .nan),
        ]
        for request in hostile {
            let reply = try rawRequest(endpoint, .submit(request))
            guard case .error(let code, let message)? = reply else {
                Issue.record("\(request): expected a refusal, got \(String(describing: reply))")
                continue
            }
            #expect(code == 2, "\(message)")
        }
        // A status request for a huge id is answered without echoing it back.
        let huge = String(repeating: "x", count: 1_000_000)
        if case .error(let code, let message)? = try rawRequest(endpoint, .status(job: huge)) {
            #expect(code == 4)
            #expect(message.utf8.count < 1_000, "\(message.utf8.count) bytes")
        } else {
            Issue.record("no error reply for an unknown huge id")
        }
        #expect(cluster.coordinator!.process.isRunning)
        let ok = try cluster.cli(["submit", "workflows/chain.yaml", "--wait", "--json", "--planner", "seq:1"], timeout: 60)
        #expect(ok.code == 0 || ok.code == 1, "\(ok.err)")
    }
}
