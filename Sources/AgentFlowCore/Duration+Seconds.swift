/// Conversions between `Duration` and the seconds that files, flags and the wire carry.
extension Duration {
    /// The span in seconds (attosecond precision folded into a `Double`).
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }

    /// `seconds` as a span from outside (the wire, a file, arithmetic on readings), made safe:
    /// NaN, negatives and -inf read as zero; +inf and anything beyond ``Limits/maxSeconds`` read
    /// as that maximum, so no conversion traps and no span outlives 30 days.
    public static func clampedSeconds(_ seconds: Double) -> Duration {
        guard seconds > 0 else { return .zero }
        return .nanoseconds(Int64((min(seconds, Limits.maxSeconds) * 1e9).rounded()))
    }
}
