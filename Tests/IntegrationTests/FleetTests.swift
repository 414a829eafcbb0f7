import Dispatch
import Foundation
import Testing

/// Many jobs on one small fleet: real coordinator and worker processes (sim backend), real
/// ZeroMQ, a real SQLite file.
@Suite(.serialized) struct FleetTests {
    /// A 9-node pipeline, each step likely to pass on either model.
    static func pipeline(deadline: String = "5m") -> String {
        var yaml = "name: pipeline9\nbudget: {tokens: 200000}\ndeadline: \(deadline)\nsubtasks:\n"
        for i in 0..<9 {
            yaml += "  - id: s\(i)\n    prompt: step \(i)\n    verify: {command: \"true\"}\n"
            if i > 0 { yaml += "    needs: [s\(i - 1)]\n" }
            yaml += "    estimates:\n      smollm2-135m: {success: 0.7, tokens: 300, seconds: 2}\n      gemma3-270m: {success: 0.8, tokens: 300, seconds: 3}\n"
        }
        return yaml
    }

    func jobs(_ cluster: TestCluster) throws -> [[String: Any]] {
        let r = try cluster.cli(["jobs", "--json"], timeout: 30)
        guard r.code == 0 else { return [] }
        return (try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]]) ?? []
    }

    /// The issue's reproduction: 30 copies of a 9-node pipeline submitted at once to 3 workers ×
    /// 2 slots used to end some jobs `infeasible` because other jobs held every slot. Now every
    /// job waits its turn (queued, with a reason) and all 30 succeed. About 30 s.
    @Test func thirtyJobsAtOnceOnASmallFleetAllSucceed() throws {
        let cluster = try TestCluster(workers: ClusterTests.threeWorkers, timeScale: 0.1)
        try cluster.startAll()
        defer { cluster.stop() }
        let file = cluster.dir.appendingPathComponent("pipeline.yaml").path
        try Self.pipeline().write(toFile: file, atomically: true, encoding: .utf8)
        let ids = LockedList()
        DispatchQueue.concurrentPerform(iterations: 6) { t in
            for i in stride(from: t, to: 30, by: 6) {
                if let r = try? cluster.cli(["submit", file, "--seed", "\(i + 1)"], timeout: 60), r.code == 0 {
                    ids.append(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
                }
            }
        }
        let submitted = ids.values
        #expect(submitted.count == 30)
        var sawWaiting = false
        var final: [[String: Any]] = []
        try waitUntil(timeout: 240, "30 jobs ended") {
            let list = try jobs(cluster).filter { submitted.contains($0["id"] as? String ?? "") }
            for j in list where (j["reason"] as? String ?? "").contains("waiting for a slot of model") || j["state"] as? String == "queued" {
                sawWaiting = true
            }
            final = list
            return list.count == 30 && list.allSatisfy { !["queued", "running"].contains($0["state"] as? String ?? "") }
        }
        let states = final.map { "\($0["state"] ?? "")" }
        #expect(states.allSatisfy { $0 == "succeeded" }, "\(final.filter { $0["state"] as? String != "succeeded" }.map { "\($0["id"] ?? ""): \($0["state"] ?? "") \($0["reason"] ?? "")" })")
        #expect(sawWaiting, "no job was ever seen queued or waiting for a slot")
        for j in final {
            let check = try LedgerCheck(database: cluster.database, job: j["id"] as! String)
            #expect(check.consistent, "\(check)")
            // Elapsed counts from the job's first slot: never more than the time since submission.
            #expect((j["elapsedSeconds"] as? Double ?? 0) <= 240)
        }
    }
}

/// Thread-safe list of submitted job ids.
final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ id: String) { lock.lock(); list.append(id); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
