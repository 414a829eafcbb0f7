import Foundation

/// Durations in fixed logarithmic buckets (ten per decade, 1 µs to 10⁴ s): constant memory
/// however many samples, percentiles within about 12% of the true value. Replaces the arrays of
/// every sample the coordinator used to keep for benchmarks.
public struct LatencyHistogram: Sendable, Equatable {
    static let perDecade = 10.0
    static let smallest = 1e-6
    static let bucketCount = 100

    /// counts[i] holds samples in [smallest·10^(i/10), smallest·10^((i+1)/10)); the first also
    /// takes everything smaller, the last everything larger.
    public private(set) var counts = [Int](repeating: 0, count: bucketCount)
    public private(set) var count = 0
    public private(set) var sum = 0.0
    public private(set) var min = Double.infinity
    public private(set) var max = 0.0

    public init() {}

    static func bucket(_ seconds: Double) -> Int {
        guard seconds > smallest else { return 0 }
        let i = Int((log10(seconds / smallest) * perDecade).rounded(.down))
        return Swift.min(Swift.max(i, 0), bucketCount - 1)
    }

    /// Records one duration in seconds; NaN and negative values read as zero.
    public mutating func record(_ seconds: Double) {
        let s = seconds.isFinite ? Swift.max(0, seconds) : (seconds.isNaN ? 0 : 1e4)
        counts[Self.bucket(s)] += 1
        count += 1
        sum += s
        min = Swift.min(min, s)
        max = Swift.max(max, s)
    }

    public var mean: Double { count == 0 ? 0 : sum / Double(count) }

    /// Adds `other`'s samples (the same buckets), as if each had been recorded here.
    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        for i in counts.indices { counts[i] += other.counts[i] }
        count += other.count
        sum += other.sum
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
    }

    /// The p-quantile (0…1) in seconds: the geometric middle of the bucket holding it, clamped
    /// to the smallest and largest samples seen. Zero when empty.
    public func percentile(_ p: Double) -> Double {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, Int((Double(count) * Swift.min(Swift.max(p, 0), 1)).rounded(.up)))
        var seen = 0
        for (i, c) in counts.enumerated() {
            seen += c
            if seen >= rank {
                let middle = Self.smallest * pow(10, (Double(i) + 0.5) / Self.perDecade)
                return Swift.min(Swift.max(middle, min), max)
            }
        }
        return max
    }
}
