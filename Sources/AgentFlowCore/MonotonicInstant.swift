/// An instant on one process's monotonic clock (``TimeSource/monotonic``): a span since that
/// clock's origin, which is arbitrary (the host's boot, a simulator's start) and means nothing
/// outside the process. A wall-clock step (NTP) never moves it, so a deadline held as one is
/// neither shortened nor stretched. Deadlines that must outlive the process (a job's) are kept
/// on the wall clock instead, and become a relative `ttl` on the wire.
///
/// ```swift
/// let deadline = time.instant + .seconds(30)     // from a ttl, once, when the attempt arrives
/// if time.instant >= deadline { stop() }
/// let left = deadline.remaining(at: time.instant) // never negative
/// ```
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// How long after the clock's origin.
    public var sinceOrigin: Duration

    public init(sinceOrigin: Duration) { self.sinceOrigin = sinceOrigin }

    /// The clock's origin: "never yet" for timers that start due.
    public static let origin = MonotonicInstant(sinceOrigin: .zero)

    /// From a ``TimeSource/monotonic`` reading in seconds (a non-finite one reads as the origin).
    public init(seconds: Double) {
        sinceOrigin = seconds.isFinite ? .nanoseconds(Int64((max(min(seconds, 9e9), -9e9) * 1e9).rounded())) : .zero
    }

    /// Seconds since the clock's origin, comparable with ``TimeSource/monotonic`` readings.
    public var seconds: Double { sinceOrigin.seconds }

    /// The span from `now` to this instant, zero once it has passed.
    public func remaining(at now: MonotonicInstant) -> Duration { max(.zero, self - now) }

    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.sinceOrigin < b.sinceOrigin }
    public static func + (a: MonotonicInstant, d: Duration) -> MonotonicInstant { MonotonicInstant(sinceOrigin: a.sinceOrigin + d) }
    public static func - (a: MonotonicInstant, d: Duration) -> MonotonicInstant { MonotonicInstant(sinceOrigin: a.sinceOrigin - d) }
    public static func - (a: MonotonicInstant, b: MonotonicInstant) -> Duration { a.sinceOrigin - b.sinceOrigin }

    public var description: String { "monotonic \(seconds)s" }
}
