/// An instant on the wall clock (``TimeSource/now``): seconds since 1970, UTC. It is what is
/// stored and shown to people (a job's creation and end, a worker's last contact) and what a
/// job's deadline is held as, because that deadline must outlive the process; an NTP step moves
/// it. Intervals inside one process (liveness, cooldowns, timers) are measured on the monotonic
/// clock instead (``MonotonicInstant``); the two never mix.
///
/// The reading stays a `Double`: stored rows, reports and the planner's arithmetic carry wall
/// times as seconds, and this type only keeps them apart from monotonic readings.
///
/// A number literal is seconds since 1970 (fixed instants in tests and stored-row fixtures);
/// a `Double` variable never converts implicitly.
public struct WallInstant: Comparable, Hashable, Sendable, CustomStringConvertible, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSince1970: Double

    public init(secondsSince1970: Double) { self.secondsSince1970 = secondsSince1970 }
    public init(floatLiteral value: Double) { secondsSince1970 = value }
    public init(integerLiteral value: Int) { secondsSince1970 = Double(value) }

    /// The far future: a deadline that never comes (a stored row may hold one).
    public static let infinity = WallInstant(secondsSince1970: .infinity)

    public static func < (a: WallInstant, b: WallInstant) -> Bool { a.secondsSince1970 < b.secondsSince1970 }
    public static func + (a: WallInstant, d: Duration) -> WallInstant { WallInstant(secondsSince1970: a.secondsSince1970 + d.seconds) }

    /// `self - earlier` in seconds, as the planner's and the reports' arithmetic takes it
    /// (exactly the difference of the two readings: no rounding through `Duration`).
    public func seconds(since earlier: WallInstant) -> Double { secondsSince1970 - earlier.secondsSince1970 }

    /// The instant `seconds` later (a span from the planner's arithmetic or a stored row), exact.
    public func adding(seconds: Double) -> WallInstant { WallInstant(secondsSince1970: secondsSince1970 + seconds) }

    /// Whether the reading is a number (a stored row may hold anything).
    public var isFinite: Bool { secondsSince1970.isFinite }

    public var description: String { "wall \(secondsSince1970)s" }
}

extension TimeSource {
    public var wallInstant: WallInstant { WallInstant(secondsSince1970: now) }
}
