import Foundation
import Testing

/// `agentflow bench fleet-live`: the fleet benchmark's arrivals through a real coordinator and
/// real `sim` worker processes (real ZeroMQ, a real SQLite file), beside the virtual-time
/// simulation of the same arrivals.
@Suite(.serialized) struct FleetLiveTests {
    /// One pool line (MCPP format) on two models: every row passes, 30B_ins in 10 ± 0.5 s and
    /// 1000 ± 20 tokens, 4B_ins in 8 ± 0.5 s and 600 ± 20 tokens.
    static func poolLine(parents: [[Int]]) -> String {
        func rows(_ latency: Double, _ tokens: Double) -> String {
            (0..<8).map { i in
                let sign = i % 2 == 0 ? -1.0 : 1.0
                return "{\"latency\":\(latency + 0.5 * sign),\"success\":1,\"token_cost\":\(tokens + 20 * sign),\"cost\":\(tokens + 20 * sign)}"
            }.joined(separator: ",")
        }
        let nodes = parents.enumerated().map { i, p in
            "{\"node_id\":\(i),\"parents\":\(p),\"empirical_samples_by_model\":{\"30B_ins\":[\(rows(10, 1000))],\"4B_ins\":[\(rows(8, 600))]}}"
        }
        return "{\"dag_kind\":\"test\",\"model_ids\":[\"30B_ins\",\"4B_ins\"],\"nodes\":[\(nodes.joined(separator: ","))]}"
    }

    /// 8 jobs (a 3-chain and a diamond, both 30 pool seconds long on the reference model) at load
    /// 0.7 on 2 × 2 slots, time scale 0.05, planner seq:1. The budget is twice the nominal one and
    /// the deadline half or twice the nominal one, so a job's fate is nearly certain from its draw
    /// (half: no model can finish 3 steps in 15 s; twice: 60 s for about 24 s of work plus queueing),
    /// and live and simulated runs must agree: goodput within one job, the same outcome for at
    /// least 7 of 8 jobs, mean latency within 25%. About 15 s.
    @Test func liveRunAgreesWithTheSimulationOfTheSameArrivals() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-fleetlive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pool = dir.appendingPathComponent("pool.jsonl").path
        try (Self.poolLine(parents: [[], [0], [1]]) + "\n" + Self.poolLine(parents: [[], [0], [0], [1, 2]]) + "\n")
            .write(toFile: pool, atomically: true, encoding: .utf8)
        let keep = dir.appendingPathComponent("run").path
        let started = Date()
        let r = try agentflow(["bench", "fleet-live", "--pool", pool, "--dags", "all", "--load", "0.7", "--policies", "fleet",
                               "--jobs", "8", "--slots", "2", "--time-scale", "0.05", "--planner", "seq:1",
                               "--budget-ratios", "2", "--deadline-ratios", "0.5,2", "--seed", "1", "--keep", keep, "--json"],
                              timeout: 120)
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: keep)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
            .map { "== \($0)\n" + ((try? String(contentsOfFile: keep + "/" + $0, encoding: .utf8)) ?? "").suffix(3000) }.joined(separator: "\n")
        #expect(r.code == 0, "\(r.err)\n\(logs)")
        guard r.code == 0, let rows = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [[String: Any]] else {
            Issue.record("no JSON: \(r.out)\n\(r.err)")
            return
        }
        #expect(Date().timeIntervalSince(started) < 90)
        let live = try #require(rows.first { $0["mode"] as? String == "live" })
        let sim = try #require(rows.first { $0["mode"] as? String == "sim" })
        // The simulation again with the sim backend's own draws (same outcome model as the workers).
        let draws = try #require(rows.first { $0["mode"] as? String == "sim-draws" })
        #expect(draws["jobs"] as? Int == 8)
        func number(_ row: [String: Any], _ key: String) -> Double { (row[key] as? NSNumber)?.doubleValue ?? .nan }

        // The live run itself: every job submitted and ended, nothing over budget, one tenant.
        #expect(live["policy"] as? String == "fleet" && live["jobs"] as? Int == 8)
        let states = live["states"] as? [String: Int] ?? [:]
        #expect(states.values.reduce(0, +) == 8)
        #expect(Set(states.keys).isSubset(of: ["succeeded", "deadline_exceeded"]), "\(states)")
        #expect(number(live, "attempts") >= 8)
        #expect(number(live, "max_overspend") <= 0)
        #expect(number(live, "spent_fraction") > 0 && number(live, "spent_fraction") <= 1)
        #expect(number(live, "jain") == 1)

        // The arrivals mix both deadline draws, so agreement is not trivial.
        let simGoodput = number(sim, "goodput")
        #expect(simGoodput > 0 && simGoodput < 1, "\(sim)")
        // Agreement within the stated tolerance.
        #expect(abs(number(live, "goodput") - simGoodput) <= 0.125 + 1e-9, "live \(live)\nsim \(sim)")
        #expect(number(live, "same_outcome") >= 0.875 - 1e-9, "live \(live)\nsim \(sim)")
        let (liveLatency, simLatency) = (number(live, "mean_latency"), number(sim, "mean_latency"))
        #expect(simLatency > 20 && abs(liveLatency - simLatency) <= 0.25 * simLatency, "live \(liveLatency) s, sim \(simLatency) s")
        // No job succeeded after its deadline (60 pool seconds).
        #expect(number(live, "p99_latency") <= 60)
    }

    /// Bad input is refused before anything starts: exit 2 with the reason.
    @Test func refusesAbsurdSettings() throws {
        for (args, message) in [(["--time-scale", "nan"], "--time-scale"), (["--jobs", "0"], "--jobs"),
                                (["--policies", "lifo"], "lifo"), (["--deadline-ratios", "inf"], "--deadline-ratios")] {
            let r = try agentflow(["bench", "fleet-live", "--pool", "/nonexistent.jsonl"] + args, timeout: 30)
            #expect(r.code == 2, "\(args): \(r.err)")
            #expect(r.err.contains(message), "\(args): \(r.err)")
        }
    }
}
