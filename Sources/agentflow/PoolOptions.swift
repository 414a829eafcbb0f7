import ArgumentParser
import Foundation
import Planner
import Benchmarks

/// `--pool FILE [--dags ROWS]`: a DAG pool in the MCPP format and which of its rows a benchmark
/// runs. Shared by `bench planner` and `bench fleet`; `bench planner-scale` reads the file the
/// same way (`PoolOptions.read`).
struct PoolOptions: ParsableArguments {
    @Option(help: "The pool JSONL file (one DAG per line).")
    var pool: String

    @Option(help: "DAG rows: 'reference' (the 50 reference rows), 'all', or a list like 5,6,9 or 0-9.")
    var dags = "reference"

    /// The DAGs `--dags` selects, in its order. Errors name the file, the flag and the row.
    func selected() throws -> [PoolDAG] {
        let all = try Self.read(pool)
        let byIndex = Dictionary(uniqueKeysWithValues: all.map { ($0.index, $0) })
        let rows = try Self.rows(dags, count: (all.map(\.index).max() ?? -1) + 1)
        let chosen = try rows.map { row -> PoolDAG in
            guard let dag = byIndex[row] else { throw ValidationError("--dags: row \(row) is blank in \(pool)") }
            return dag
        }
        guard !chosen.isEmpty else { throw ValidationError("--dags selects no DAG") }
        return chosen
    }

    /// Every DAG of a pool file.
    static func read(_ pool: String) throws -> [PoolDAG] {
        let text: String
        do { text = try String(contentsOfFile: pool, encoding: .utf8) } catch {
            throw ValidationError("cannot read --pool \(pool): \(error.localizedDescription)")
        }
        do { return try PoolParser.parse(text) } catch let error as PoolParseError {
            throw ValidationError("\(pool): \(error)")
        }
    }

    /// `reference`, `all`, or a list of rows and ranges like `5,6,9` or `0-9`.
    static func rows(_ dags: String, count: Int) throws -> [Int] {
        if dags == "reference" { return PlannerBenchmark.referenceIndices.filter { $0 < count } }
        if dags == "all" { return Array(0..<count) }
        var rows: [Int] = []
        for part in dags.split(separator: ",") {
            let bounds = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard bounds.count <= 2, let lo = bounds.first ?? nil, let hi = bounds.last ?? nil, lo <= hi, hi < count, lo >= 0 else {
                throw ValidationError("--dags: '\(part)' is not a row or range of rows 0..<\(count)")
            }
            rows.append(contentsOf: lo...hi)
        }
        return rows
    }
}
