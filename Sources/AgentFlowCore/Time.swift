import Foundation

/// The one clock abstraction: wall-clock seconds since 1970 (`now`: what is stored and shown,
/// job deadlines) and a monotonic clock (`monotonic`: intervals — liveness, timeouts, cooldowns,
/// attempt time-to-live), which a clock step does not move. Deadline logic takes a
/// `TimeSource` so tests and the simulator can drive it without sleeping: the worker, the
/// scaffold, the LLM client and the sandbox are given one and read no other clock.
public protocol TimeSource: Sendable {
    var now: Double { get }
    var monotonic: Double { get }
    /// The monotonic reading as an instant (a simulated clock gives its own, exactly).
    var instant: MonotonicInstant { get }
    /// The wall-clock reading as an instant: for stored times, people and job deadlines.
    var wallInstant: WallInstant { get }
    /// Waits `span` on this clock (a retry's backoff). A real clock blocks the calling thread;
    /// a manual one moves itself on, so code under test does not wait.
    func sleep(for span: Duration)
}

extension TimeSource {
    /// Clocks that cannot step use one time for both.
    public var monotonic: Double { now }
    /// The monotonic reading as an instant: what deadlines are held as.
    public var instant: MonotonicInstant { MonotonicInstant(seconds: monotonic) }
    public func sleep(for span: Duration) {
        guard span > .zero else { return }
        Thread.sleep(forTimeInterval: span.seconds)
    }
}

public struct SystemTime: TimeSource {
    public init() {}
    public var now: Double { Date().timeIntervalSince1970 }
    public var monotonic: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A clock that only moves when told to.
public final class ManualTime: TimeSource, @unchecked Sendable {
    // Guarded by `lock`; tests may advance it from another thread.
    private let lock = NSLock()
    private var value: Double

    public init(_ start: Double = 1_000_000) { value = start }
    public var now: Double { lock.withLock { value } }
    public func advance(_ seconds: Double) { lock.withLock { value += seconds } }
    public func advance(_ span: Duration) { advance(span.seconds) }
    /// Moves the clock on instead of waiting.
    public func sleep(for span: Duration) { if span > .zero { advance(span) } }
    public func set(_ t: Double) { lock.withLock { value = t } }
}

/// Deadline arithmetic shared by the coordinator and workers.
public enum Deadlines {
    /// An attempt's deadline: the job's deadline, or the planned end if that is sooner.
    public static func attemptDeadline(job: WallInstant, plannedEnd: WallInstant?) -> WallInstant {
        guard let plannedEnd else { return job }
        return min(job, plannedEnd)
    }

    /// How long after its dispatch an attempt is planned to have ended: ten times what it is
    /// expected to take, and at least two minutes, so that only an attempt far outside its
    /// estimate (a stuck stream, a hung sandbox) is stopped before the job's deadline and
    /// re-planned, while a slow one on a loaded machine is left to finish.
    public static func plannedAllowance(expectedSeconds: Double) -> Double {
        guard expectedSeconds.isFinite, expectedSeconds > 0 else { return minimumAllowance }
        return min(max(minimumAllowance, 10 * expectedSeconds), Limits.maxSeconds)
    }

    public static let minimumAllowance: Double = 120
}
