import Foundation
import Testing
@testable import Benchmarks
@testable import Planner
import TestSupport

func sampleLine(successes: [Int] = [1, 0, 1, 1, 0, 1, 1, 1], parents: [Int] = []) -> String {
    let rows = successes.enumerated().map { i, s in
        "{\"latency\":\(1.0 + Double(i) * 0.1),\"success\":\(s),\"token_cost\":\(100 + i * 10),\"cost\":\(100 + i * 10)}"
    }.joined(separator: ",")
    return """
    {"dag_kind":"test","model_ids":["30B_ins","4B_ins"],"nodes":[\
    {"node_id":0,"parents":[],"empirical_samples_by_model":{"30B_ins":[\(rows)],"4B_ins":[\(rows)]}},\
    {"node_id":1,"parents":\(parents.isEmpty ? "[0]" : "\(parents)"),"empirical_samples_by_model":{"30B_ins":[\(rows)],"4B_ins":[\(rows)]}}]}
    """
}

@Test func parsesAWellFormedLine() throws {
    let dags = try PoolParser.parse(sampleLine() + "\n\n" + sampleLine() + "\n")
    #expect(dags.count == 2)
    #expect(dags[1].index == 2)  // blank lines count: index = 0-based line number
    #expect(dags[0].modelIDs == ["30B_ins", "4B_ins"])
    #expect(dags[0].nodes[1].parents == [0])
    #expect(dags[0].nodes[0].samples[1].count == 8)
    #expect(dags[0].template(node: 0, model: 0).success == 0.75)
}

@Test func malformedInputNamesTheLine() {
    let cases: [(String, String)] = [
        ("{not json", "not a JSON object"),
        ("{\"model_ids\":[\"a\"]}", "missing field 'nodes'"),
        ("{\"model_ids\":[\"a\"],\"nodes\":[{\"node_id\":1,\"parents\":[]}]}", "node ids must be 0..<n"),
        (sampleLine(parents: [5]), "parent 5 is not another node"),
        ("{\"model_ids\":[\"a\"],\"nodes\":[{\"node_id\":0,\"parents\":[],\"empirical_samples_by_model\":{\"a\":[]}}]}", "no samples for model 'a'"),
        ("{\"model_ids\":[\"a\"],\"nodes\":[{\"node_id\":0,\"parents\":[1],\"empirical_samples\":[{\"latency\":1,\"success\":1,\"token_cost\":1}]},"
            + "{\"node_id\":1,\"parents\":[0],\"empirical_samples\":[{\"latency\":1,\"success\":1,\"token_cost\":1}]}]}", "cycle"),
        ("{\"model_ids\":[\"a\"],\"nodes\":[{\"node_id\":0,\"parents\":[],\"empirical_samples\":[{\"latency\":1,\"success\":2,\"token_cost\":1}]}]}", "success 0 or 1"),
    ]
    for (line, message) in cases {
        do {
            _ = try PoolParser.parse(sampleLine() + "\n" + line + "\n")
            Issue.record("accepted malformed line: \(line)")
        } catch let error as PoolParseError {
            #expect(error.line == 2)
            #expect(error.description.hasPrefix("line 2: "))
            #expect(error.message.contains(message), "\(error.message)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}

@Test func nominalBudgetAndDeadlineFollowTheReferenceFormulas() throws {
    let dag = try PoolParser.parse(sampleLine())[0]
    // p = 0.75 → r = ceil(ln 0.05 / ln 0.25) = 3; κ = 135 tokens × $0.80/1M.
    #expect(abs(dag.nominalBudgetUSD - 2 * 3 * 135 * 0.8 / 1e6) < 1e-12)
    // Mean latency 1.35 s / 0.75 per node, on the 2-node chain.
    #expect(abs(dag.nominalDeadlineSeconds - 2 * 1.35 / 0.75) < 1e-9)
}

@Test func nominalsMatchThePublicPool() throws {
    guard let pool = SharedBench.text("pool-public.jsonl"), let csv = SharedBench.text("nominals-public.csv") else { return }
    let dags = try PoolParser.parse(pool)
    #expect(dags.count == 150)
    for line in csv.split(separator: "\n").dropFirst() {
        let f = line.split(separator: ",").map(String.init)
        let dag = dags[Int(f[0])!]
        #expect(dag.nodes.count == Int(f[2])!)
        #expect(abs(dag.nominalBudgetUSD - Double(f[6])!) <= 1e-6 * Double(f[6])!, "dag \(f[0])")
        #expect(abs(dag.nominalDeadlineSeconds - Double(f[7])!) <= 1e-6 * Double(f[7])!, "dag \(f[0])")
    }
}
