/// How often each fault is injected. Rates are per simulated second unless named otherwise.
public struct FaultRates: Sendable, CustomStringConvertible {
    /// Per message: dropped, delivered twice; every message is delayed up to `maxDelay` s.
    public var drop = 0.03
    public var duplicate = 0.03
    public var maxDelay: Duration = .milliseconds(200)
    /// Per coordinator loop iteration: a crash (kill -9) at that event boundary; of those, the
    /// share that happen after the commit and before the sends.
    public var coordinatorCrash = 0.01
    public var crashAfterCommit = 0.5
    /// Per second, per worker: crash (it comes back as a new process), freeze (silent 2–8 s).
    public var workerCrash = 0.01
    public var workerFreeze = 0.01
    /// Per second: a same-named impostor starts; the wall clock steps by up to ±30 s; a hostile
    /// message (forged result, overflowing counts, replay, bad registration or request).
    public var impostor = 0.01
    public var clockJump = 0.02
    public var hostile = 0.2

    public init() {}

    /// No faults at all (a baseline: everything must succeed or end for a budget/deadline reason).
    public static var none: FaultRates {
        var f = FaultRates()
        f.drop = 0; f.duplicate = 0; f.maxDelay = .milliseconds(10); f.coordinatorCrash = 0; f.workerCrash = 0; f.workerFreeze = 0
        f.impostor = 0; f.clockJump = 0; f.hostile = 0
        return f
    }

    /// Everything ten times as often as the default (a longer run for whoever changes the core).
    public static var heavy: FaultRates {
        var f = FaultRates()
        f.drop = 0.15; f.duplicate = 0.1; f.maxDelay = .seconds(1); f.coordinatorCrash = 0.05
        f.workerCrash = 0.05; f.workerFreeze = 0.05; f.impostor = 0.05; f.clockJump = 0.1; f.hostile = 1
        return f
    }

    public static func named(_ name: String) -> FaultRates? {
        switch name {
        case "default": FaultRates()
        case "none": FaultRates.none
        case "heavy": .heavy
        default: nil
        }
    }

    public var description: String {
        "drop \(drop), duplicate \(duplicate), delay ≤ \(maxDelay.seconds)s, coordinator crash \(coordinatorCrash)/iteration "
            + "(\(Int(crashAfterCommit * 100))% between commit and send), worker crash \(workerCrash)/s, freeze \(workerFreeze)/s, "
            + "impostor \(impostor)/s, clock jump \(clockJump)/s, hostile \(hostile)/s"
    }
}
