import AgentFlowCore

/// The simulator's clocks. Both move only when the simulator says so; a clock jump moves the
/// wall clock alone (an NTP step), never the monotonic one. The monotonic clock is the
/// simulated one every process reads instants from (whole nanoseconds, so a timer set for an
/// instant fires at exactly that instant).
public final class VirtualTime: TimeSource, @unchecked Sendable {
    // Only the simulator's single thread touches it.
    public private(set) var wall: WallInstant
    public private(set) var mono: MonotonicInstant

    public init(wall: WallInstant = WallInstant(secondsSince1970: 1_800_000_000), mono: MonotonicInstant = MonotonicInstant(sinceOrigin: .seconds(1_000))) {
        self.wall = wall
        self.mono = mono
    }

    public var now: Double { wall.secondsSince1970 }
    public var monotonic: Double { mono.seconds }
    public var instant: MonotonicInstant { mono }
    public var wallInstant: WallInstant { wall }

    /// Time passes: both clocks move.
    public func advance(to monotonicTime: MonotonicInstant) {
        guard monotonicTime > mono else { return }
        wall = wall + (monotonicTime - mono)
        mono = monotonicTime
    }

    /// A step of the wall clock only (either way).
    public func jump(_ span: Duration) { wall = WallInstant(secondsSince1970: wall.secondsSince1970 + span.seconds) }

    /// The monotonic clock alone, as a worker process's clock: the wall clock's steps are the
    /// coordinator host's.
    public var monotonicClock: any TimeSource { MonotonicClock(time: self) }

    struct MonotonicClock: TimeSource {
        let time: VirtualTime
        var now: Double { time.mono.seconds }
        var monotonic: Double { time.mono.seconds }
        var instant: MonotonicInstant { time.mono }
    }
}
