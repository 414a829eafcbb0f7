import AgentFlowCore
import Foundation
import Planner

/// How an attempt's latency grows with the attempts sharing its GPU: a slowdown factor at a
/// few concurrency levels (1, 2, 4, 8 …), linear in between and past the last point. Measured,
/// not guessed: ``llamaCpp`` is what `tools/llama_concurrency.py` measured on the llama.cpp
/// server of `make demo` (docs/benchmarks.md, "Placement across GPUs").
public struct GPUSharing: Sendable, Equatable {
    /// Concurrency levels, ascending from 1, and the mean latency per request at each ÷ alone.
    public let levels: [Int]
    public let factors: [Double]

    public init(levels: [Int], factors: [Double]) throws {
        guard levels.count == factors.count, levels.first == 1, factors.first == 1,
              zip(levels, levels.dropFirst()).allSatisfy({ $0 < $1 }), levels.last! <= 1 << 20,
              factors.allSatisfy({ $0.isFinite && $0 >= 1 && $0 <= 1e6 }), zip(factors, factors.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw PlannerSpecError(description: "GPU sharing must start at 1=1, with concurrency levels rising and factors from 1 to 1e6 never falling")
        }
        self.levels = levels
        self.factors = factors
    }

    /// SmolLM2-135M on llama-cpp-python's server (one sequence at a time), 1/2/4/8 concurrent
    /// requests of 29 completion tokens: mean latency 1.98 / 2.49 / 3.99 / 7.92 s (docs/benchmarks.md,
    /// "Placement across GPUs").
    public static let llamaCpp = try! GPUSharing(levels: [1, 2, 4, 8], factors: [1, 1.26, 2.01, 3.99])

    /// `llama.cpp` (the measured table) or `K=F` pairs, like `1=1,2=1.3,4=2.1,8=4`.
    public static func parse(_ text: String) throws -> GPUSharing {
        if text == "llama.cpp" { return llamaCpp }
        var levels: [Int] = [], factors: [Double] = []
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let k = Int(kv[0].trimmingCharacters(in: .whitespaces)), let f = Double(kv[1].trimmingCharacters(in: .whitespaces)) else {
                throw PlannerSpecError(description: "GPU sharing: expected 'llama.cpp' or K=F pairs like 1=1,2=1.3,4=2.1, got '\(Limits.printable(String(part.prefix(64))))'")
            }
            levels.append(k)
            factors.append(f)
        }
        return try GPUSharing(levels: levels, factors: factors)
    }

    /// The slowdown with `k` attempts on the GPU (k ≥ 1).
    public func factor(_ k: Int) -> Double {
        let k = max(1, k)
        guard levels.count > 1 else { return factors[0] }
        var i = 1
        while i < levels.count - 1 && levels[i] < k { i += 1 }
        let (k0, k1, f0, f1) = (Double(levels[i - 1]), Double(levels[i]), factors[i - 1], factors[i])
        return min(1e6, max(1, f0 + (f1 - f0) * (Double(k) - k0) / (k1 - k0)))
    }

    public var description: String { zip(levels, factors).map { "\($0)=\($1)" }.joined(separator: ",") }
}
