import Foundation
import Planner

/// The public benchmark files, when the checkout sits beside ../shared (skipped otherwise).
public enum SharedBench {
    public static let directory: URL = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/bench")

    public static func text(_ name: String) -> String? {
        try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
    }
}

/// A problem from per-node, per-model rows.
public func problem(_ rows: [[[SimSample]]], parents: [[Int]]? = nil, models: [String]? = nil) -> PlanProblem {
    PlanProblem(modelNames: models ?? rows[0].indices.map { "m\($0)" },
                parents: parents ?? rows.map { _ in [] }, samples: rows)
}

public func row(_ latency: Double, _ success: Bool, _ cost: Double) -> SimSample {
    SimSample(latency: latency, success: success, cost: cost)
}

