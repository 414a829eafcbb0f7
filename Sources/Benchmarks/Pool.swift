import Planner
import Foundation

/// One calibration rollout of a (node, model) pair: resampled as a whole row.
public struct CalibrationSample: Sendable, Equatable, Codable {
    public var latency: Double
    public var success: Bool
    /// Output tokens of the rollout.
    public var tokens: Double

    public init(latency: Double, success: Bool, tokens: Double) {
        self.latency = latency
        self.success = success
        self.tokens = tokens
    }
}

/// One subtask of a benchmark DAG.
public struct PoolNode: Sendable, Equatable {
    public var id: Int
    public var parents: [Int]
    /// Per model (in ``PoolDAG/modelIDs`` order): the calibration samples.
    public var samples: [[CalibrationSample]]
}

/// One DAG of the reference benchmark pool (one JSONL line).
public struct PoolDAG: Sendable, Equatable {
    /// 0-based line number in the pool file (`dag_idx`).
    public var index: Int
    public var kind: String
    public var modelIDs: [String]
    public var nodes: [PoolNode]

    /// USD per 1M output tokens of the reference models (the reference's hard-coded table).
    public static let referencePrices: [String: Double] = [
        "30B_ins": 0.80, "30B_think": 2.40, "4B_ins": 0.42, "4B_think": 1.26,
    ]
    /// The model whose statistics define the nominal budget and deadline.
    public static let referenceModel = "30B_ins"

    public func price(ofModel m: Int) -> Double { Self.referencePrices[modelIDs[m]] ?? 1.0 }

    /// Mean statistics of one (node, model) pair, as the pool's `template` defines them.
    public func template(node v: Int, model m: Int) -> (success: Double, latency: Double, tokens: Double) {
        let s = nodes[v].samples[m]
        let n = Double(s.count)
        return (
            s.reduce(0) { $0 + ($1.success ? 1 : 0) } / n,
            s.reduce(0) { $0 + $1.latency } / n,
            s.reduce(0) { $0 + $1.tokens } / n
        )
    }

    var referenceModelIndex: Int { modelIDs.firstIndex(of: Self.referenceModel) ?? 0 }

    /// B_nom = Σ_v r_v κ_v with r_v the samples that reach 95% pass@r, κ_v the mean USD of one
    /// reference-model rollout.
    public var nominalBudgetUSD: Double {
        let m = referenceModelIndex
        var total = 0.0
        for v in nodes.indices {
            let t = template(node: v, model: m)
            let p = min(max(t.success, 1e-9), 1 - 1e-9)
            let r = max(1.0, (log(1 - 0.95) / log(1 - p)).rounded(.up))
            total += r * t.tokens * price(ofModel: m) / 1e6
        }
        return total
    }

    /// D_nom = the longest root→sink path of Σ lat_mean / p (expected time to a first success).
    public var nominalDeadlineSeconds: Double {
        let m = referenceModelIndex
        var longest = [Double](repeating: 0, count: nodes.count)
        for v in topologicalOrder() {
            let t = template(node: v, model: m)
            let own = t.latency / min(max(t.success, 1e-9), 1 - 1e-9)
            longest[v] = own + (nodes[v].parents.map { longest[$0] }.max() ?? 0)
        }
        return longest.max() ?? 0
    }

    func topologicalOrder() -> [Int] {
        var indegree = nodes.map { $0.parents.count }
        var children = [[Int]](repeating: [], count: nodes.count)
        for v in nodes.indices { for p in nodes[v].parents { children[p].append(v) } }
        var queue = nodes.indices.filter { indegree[$0] == 0 }
        var i = 0
        while i < queue.count {
            let v = queue[i]; i += 1
            for c in children[v] { indegree[c] -= 1; if indegree[c] == 0 { queue.append(c) } }
        }
        return queue
    }

    /// The problem the simulator and the planners work on: cost of a rollout = tokens × price.
    public func problem() -> PlanProblem {
        PlanProblem(
            modelNames: modelIDs,
            parents: nodes.map(\.parents),
            samples: nodes.map { node in
                node.samples.enumerated().map { m, rows in
                    rows.map { SimSample(latency: $0.latency, success: $0.success, cost: $0.tokens * price(ofModel: m) / 1e6) }
                }
            }
        )
    }

    /// The single-model view the reference runs its baselines on.
    public func singleModelProblem(model m: Int) -> PlanProblem {
        let full = problem()
        return PlanProblem(modelNames: [modelIDs[m]], parents: full.parents, samples: full.samples.map { [$0[m]] })
    }
}

/// A malformed pool line: says which line and what is wrong.
public struct PoolParseError: Error, CustomStringConvertible, Equatable {
    /// 1-based line number in the pool file.
    public var line: Int
    public var message: String
    public var description: String { "line \(line): \(message)" }
}

/// Parses the reference pool's JSONL format (one DAG per line; blank lines are skipped but counted).
public enum PoolParser {
    private struct RawSample: Decodable {
        var latency: Double
        var success: Double
        var token_cost: Double
    }

    private struct RawNode: Decodable {
        var node_id: Int
        var parents: [Int]
        var empirical_samples_by_model: [String: [RawSample]]?
        var empirical_samples: [RawSample]?
    }

    private struct RawDAG: Decodable {
        var dag_kind: String?
        var model_ids: [String]?
        var nodes: [RawNode]
    }

    public static func parse(_ text: String) throws -> [PoolDAG] {
        var dags: [PoolDAG] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy(\.isWhitespace) { continue }
            dags.append(try parseLine(Substring(line), lineNumber: lineNumber, index: lineNumber - 1))
        }
        return dags
    }

    public static func parseLine(_ line: Substring, lineNumber: Int, index: Int) throws -> PoolDAG {
        func fail(_ message: String) -> PoolParseError { PoolParseError(line: lineNumber, message: message) }
        let raw: RawDAG
        do {
            raw = try JSONDecoder().decode(RawDAG.self, from: Data(line.utf8))
        } catch let DecodingError.keyNotFound(key, context) {
            throw fail("missing field '\(key.stringValue)'\(path(context.codingPath))")
        } catch let DecodingError.typeMismatch(_, context) {
            throw fail("wrong type\(path(context.codingPath)): \(context.debugDescription)")
        } catch let DecodingError.valueNotFound(_, context) {
            throw fail("null value\(path(context.codingPath))")
        } catch {
            throw fail("not a JSON object: \(error)")
        }
        let models = raw.model_ids ?? [PoolDAG.referenceModel]
        guard !models.isEmpty else { throw fail("model_ids is empty") }
        guard !raw.nodes.isEmpty else { throw fail("a DAG needs at least one node") }
        guard raw.nodes.count <= PlanProblem.maxNodes else {
            throw fail("\(raw.nodes.count) nodes; the planner handles at most \(PlanProblem.maxNodes)")
        }
        var nodes: [PoolNode] = []
        for (i, node) in raw.nodes.enumerated() {
            guard node.node_id == i else { throw fail("node ids must be 0..<n in order; found \(node.node_id) at position \(i)") }
            for p in node.parents where p < 0 || p >= raw.nodes.count || p == i {
                throw fail("node \(i): parent \(p) is not another node of this DAG")
            }
            var perModel: [[CalibrationSample]] = []
            for model in models {
                let rows: [RawSample]?
                if let byModel = node.empirical_samples_by_model { rows = byModel[model] } else { rows = node.empirical_samples }
                guard let rows, !rows.isEmpty else { throw fail("node \(i): no samples for model '\(model)'") }
                for r in rows where !(r.latency >= 0 && r.token_cost >= 0 && (r.success == 0 || r.success == 1)) {
                    throw fail("node \(i), model '\(model)': sample needs latency ≥ 0, token_cost ≥ 0, success 0 or 1")
                }
                perModel.append(rows.map { CalibrationSample(latency: $0.latency, success: $0.success == 1, tokens: $0.token_cost) })
            }
            nodes.append(PoolNode(id: i, parents: node.parents, samples: perModel))
        }
        let dag = PoolDAG(index: index, kind: raw.dag_kind ?? "", modelIDs: models, nodes: nodes)
        if dag.topologicalOrder().count != nodes.count { throw fail("the parent edges contain a cycle") }
        return dag
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "" : " at " + keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
