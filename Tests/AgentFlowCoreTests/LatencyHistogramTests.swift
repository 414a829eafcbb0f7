import Observability
import Testing

@Suite struct LatencyHistogramTests {
    @Test func percentilesWithinABucketOfTheTruth() {
        var h = LatencyHistogram()
        for i in 1...10_000 { h.record(Double(i) / 1000) }  // 1 ms … 10 s, uniform
        #expect(h.count == 10_000)
        #expect(abs(h.percentile(0.5) - 5.0) / 5.0 < 0.13)
        #expect(abs(h.percentile(0.99) - 9.9) / 9.9 < 0.13)
        #expect(h.percentile(0) >= 0.001 && h.percentile(1) <= 10)
        #expect(abs(h.mean - 5.0005) < 1e-9)
    }

    @Test func memoryDoesNotGrowAndHostileValuesAreClamped() {
        var h = LatencyHistogram()
        let buckets = h.counts.count
        for _ in 0..<100_000 { h.record(0.002) }
        h.record(.nan)
        h.record(-5)
        h.record(.infinity)
        #expect(h.counts.count == buckets)
        #expect(h.count == 100_003)
        #expect(h.percentile(0.5) > 0.0015 && h.percentile(0.5) < 0.0025)
        #expect(LatencyHistogram().percentile(0.5) == 0)
    }
}
