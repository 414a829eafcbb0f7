/// Arithmetic that pins to the type's range instead of trapping. Numbers from outside are
/// range-checked where they enter (``Limits``); these make the arithmetic on them safe anyway,
/// so a value that slipped past a check (an old database row, a new code path) costs a wrong
/// number in one job, never the coordinator process.
extension Int {
    /// `self + other`, pinned to `Int.min … Int.max`.
    public func addingSaturated(_ other: Int) -> Int {
        let (r, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : r
    }

    /// `self - other`, pinned to `Int.min … Int.max`.
    public func subtractingSaturated(_ other: Int) -> Int {
        let (r, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : r
    }

    /// A `Double` rounded toward zero and pinned to `Int`'s range; NaN reads as `nan`.
    public init(saturating value: Double, nan: Int = 0) {
        if value.isNaN { self = nan } else if value >= 9.223372036854775e18 { self = .max } else if value <= -9.223372036854775e18 { self = .min } else { self = Int(value) }
    }
}

extension Int64 {
    /// `self + other`, pinned to `Int64.min … Int64.max`.
    public func addingSaturated(_ other: Int64) -> Int64 {
        let (r, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : r
    }

    /// `self - other`, pinned to `Int64.min … Int64.max`.
    public func subtractingSaturated(_ other: Int64) -> Int64 {
        let (r, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : r
    }

    /// A `Double` rounded toward zero and pinned to `Int64`'s range; NaN reads as `nan`.
    public init(saturating value: Double, nan: Int64 = 0) {
        if value.isNaN { self = nan } else if value >= 9.223372036854775e18 { self = .max } else if value <= -9.223372036854775e18 { self = .min } else { self = Int64(value) }
    }
}
