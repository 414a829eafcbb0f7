import Foundation
import Testing
@testable import Planner

/// The sim worker backend's draw, which `bench fleet` can also simulate with.
@Suite struct SimulatedDrawTests {
    @Test func drawsKeepTheEstimatesMeans() {
        var rng = SplitMix64(seed: 7)
        let n = 20_000
        var passes = 0, tokens = 0.0, seconds = 0.0, logSeconds: [Double] = []
        for _ in 0..<n {
            let d = SimulatedDraw.draw(success: 0.3, tokens: 1000, seconds: 8, rng: &rng)
            if d.passed { passes += 1 }
            tokens += Double(d.tokens)
            seconds += d.seconds
            logSeconds.append(log(d.seconds))
        }
        #expect(abs(Double(passes) / Double(n) - 0.3) < 0.015)
        #expect(abs(tokens / Double(n) - 1000) < 10)
        #expect(abs(seconds / Double(n) - 8) < 0.08)
        let mean = logSeconds.reduce(0, +) / Double(n)
        let sd = (logSeconds.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)).squareRoot()
        #expect(abs(sd - SimulatedDraw.sigma) < 0.01)
    }
}
