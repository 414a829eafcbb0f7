import Foundation

/// How the `sim` worker backend draws one attempt from a (success, tokens, seconds) estimate:
/// pass with probability `success`; tokens and seconds log-normal around the estimate
/// (σ = 0.25, mean preserved), independent of each other and of the outcome. Shared by the
/// backend (`Sources/Worker/SimBackend.swift`) and by the fleet benchmark's `estimates`
/// draws, so the simulation can be run with exactly the worker's outcome model.
public struct SimulatedDraw: Sendable, Equatable {
    public var passed: Bool
    public var tokens: Int
    public var seconds: Double

    /// Log-normal spread of tokens and seconds.
    public static let sigma = 0.25

    public static func draw(success: Double, tokens: Double, seconds: Double, rng: inout SplitMix64) -> SimulatedDraw {
        let passed = rng.unit() < success
        let shift = -sigma * sigma / 2
        let t = max(1, Int((tokens * exp(sigma * standardNormal(&rng) + shift)).rounded()))
        let s = max(0, seconds * exp(sigma * standardNormal(&rng) + shift))
        return SimulatedDraw(passed: passed, tokens: t, seconds: s)
    }

    /// A standard normal draw (Box–Muller, one of the pair).
    static func standardNormal(_ rng: inout SplitMix64) -> Double {
        let u = max(rng.unit(), 1e-12), v = rng.unit()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}
