/// An instant on the wall clock (``TimeSource/now``): seconds since 1970, UTC. It is what is
/// stored and shown to people (a job's creation and end, a worker's last contact) and what a
/// job's deadline is held as, because that deadline must outlive the process; an NTP step moves
/// it. Intervals inside one process (liveness, cooldowns, timers) are measured on the monotonic
/// clock instead (``MonotonicInstant``); the two never mix.
///
/// The reading stays a `Double`: stored rows, reports and the planner's arithmetic carry wall
/// times as seconds, and this type only keeps them apart from monotonic readings.
public struct WallInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSince1970: Double

    public init(secondsSince1970: Double) { self.secondsSince1970 = secondsSince1970 }

    public static func < (a: WallInstant, b: WallInstant) -> Bool { a.secondsSince1970 < b.secondsSince1970 }
    public static func + (a: WallInstant, d: Duration) -> WallInstant { WallInstant(secondsSince1970: a.secondsSince1970 + d.seconds) }

    public var description: String { "wall \(secondsSince1970)s" }
}

extension TimeSource {
    public var wallInstant: WallInstant { WallInstant(secondsSince1970: now) }
}
