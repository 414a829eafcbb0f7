/// SplitMix64: a small, fast, seedable generator. Every random choice the planner makes flows
/// from one of these, seeded from the caller's seed, so a run is reproducible bit for bit
/// whatever the thread count.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<n (n ≥ 1), by multiply-shift (no division).
    @inline(__always)
    public mutating func below(_ n: Int) -> Int {
        Int(truncatingIfNeeded: ((next() >> 32) &* UInt64(truncatingIfNeeded: n)) >> 32)
    }
}

/// Derives an independent seed from a parent seed and a label (stream splitting).
@inline(__always)
public func deriveSeed(_ seed: UInt64, _ label: UInt64) -> UInt64 {
    var g = SplitMix64(seed: seed ^ (label &* 0xD6E8_FEB8_6659_FD93))
    _ = g.next()
    return g.next()
}
