import AgentFlowCore

extension MonotonicInstant {
    /// `at: .seconds(3)`: an instant given as seconds on the clock the test drives.
    static func seconds(_ s: Double) -> MonotonicInstant { MonotonicInstant(seconds: s) }
}
