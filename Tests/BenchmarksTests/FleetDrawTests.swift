import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

/// `bench fleet` can draw attempts like the sim worker backend does.
@Suite struct FleetDrawTests {
    /// One node, every row passing in 10 s; `tokens` gives each row's tokens. 100 jobs 40 s apart
    /// on one slot (none waits for another).
    static func run(tokens: [Double], deadline: Double, backendDraws: Bool) throws -> FleetRow {
        let rows = (0..<8).map { CalibrationSample(latency: 10, success: true, tokens: tokens[$0 % tokens.count]) }
        let dag = PoolDAG(index: 0, kind: "test", modelIDs: ["m"], nodes: [PoolNode(id: 0, parents: [], samples: [rows])])
        var settings = FleetBenchSettings()
        settings.planner = "seq:1"
        settings.drawLikeSimBackend = backendDraws
        let specs = (0..<100).map { FleetJobSpec(dag: 0, arrival: Double($0) * 40, budgetUSD: 1, deadline: deadline, seed: UInt64($0 + 1)) }
        return try FleetRun(dags: [dag], variant: FleetVariant(kind: .fifo), settings: settings).run(specs, load: 1)
    }

    /// Rows give every attempt exactly 10 s; the backend's draws spread around 10 s.
    @Test func fleetSimulationCanDrawLikeTheBackend() throws {
        let rows = try Self.run(tokens: [50, 150], deadline: 500, backendDraws: false)
        // Exactly 10 s of work, plus the messages' travel (up to 10 ms each way).
        #expect(rows.goodput == 1 && rows.meanLatency >= 10 && rows.meanLatency < 10.05 && rows.p99Latency < 10.05, "\(rows)")
        let draws = try Self.run(tokens: [50, 150], deadline: 500, backendDraws: true)
        #expect(draws.goodput == 1)
        #expect(draws.meanLatency > 9 && draws.meanLatency < 12, "\(draws.meanLatency)")
        #expect(draws.p99Latency > 12, "\(draws.p99Latency)")
    }

    /// As the worker does, a draw above the node's token cap (its largest row) ends the attempt
    /// failed at the cap: with every row at the cap, about half the first attempts fail, and a
    /// deadline of 15 s leaves no time for a second one.
    @Test func backendDrawsHonourTheTokenCap() throws {
        #expect(try Self.run(tokens: [100], deadline: 15, backendDraws: false).goodput == 1)
        let draws = try Self.run(tokens: [100], deadline: 15, backendDraws: true)
        #expect(draws.goodput > 0.35 && draws.goodput < 0.7, "\(draws.goodput)")
    }
}
