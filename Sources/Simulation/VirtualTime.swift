import AgentFlowCore

/// The simulator's clocks. Both move only when the simulator says so; a clock jump moves the
/// wall clock alone (an NTP step), never the monotonic one.
public final class VirtualTime: TimeSource, @unchecked Sendable {
    // Only the simulator's single thread touches it.
    public private(set) var wall: Double
    public private(set) var mono: Double

    public init(wall: Double = 1_800_000_000, mono: Double = 1_000) {
        self.wall = wall
        self.mono = mono
    }

    public var now: Double { wall }
    public var monotonic: Double { mono }

    /// Time passes: both clocks move.
    public func advance(to monotonicTime: Double) {
        guard monotonicTime > mono else { return }
        wall += monotonicTime - mono
        mono = monotonicTime
    }

    /// A step of the wall clock only.
    public func jump(_ seconds: Double) { wall += seconds }

    /// The monotonic clock alone, as a worker process's clock: the wall clock's steps are the
    /// coordinator host's.
    public var monotonicClock: any TimeSource { MonotonicClock(time: self) }

    struct MonotonicClock: TimeSource {
        let time: VirtualTime
        var now: Double { time.mono }
        var monotonic: Double { time.mono }
    }
}
