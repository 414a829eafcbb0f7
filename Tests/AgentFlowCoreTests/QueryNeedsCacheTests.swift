import AgentFlowCore
@testable import Coordinator
import Foundation
import Store
import Testing

/// The query service keeps each workflow's edges once for all its jobs (by text and file name),
/// so a report of a new job costs no parse; jobs of other workflows never get those edges.
@Suite struct QueryNeedsCacheTests {
    func workflow(_ name: String, _ edges: [(String, [String])], prompt: String = "Do it.") -> String {
        var y = "name: \(name)\nbudget: {tokens: 60000}\ndeadline: 3m\nsubtasks:\n"
        for (id, needs) in edges {
            y += "  - {id: \(id), prompt: \"\(prompt)\", verify: {python: \"assert True\"}, needs: [\(needs.joined(separator: ", "))]}\n"
        }
        return y
    }

    func record(_ id: String, _ yaml: String, file: String = "wf.yaml") -> JobRecord {
        JobRecord(id: id, workflowName: "wf", yaml: yaml, file: file, state: .queued, reason: "", planner: "seq:1", seed: 1,
                  priority: 0, limitTokens: 1000, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: 0, deadline: 1e9,
                  startedAt: nil, endedAt: nil, minSuccess: nil)
    }

    func service() throws -> QueryService {
        QueryService(reader: try Store(path: ":memory:"), board: LiveBoard(), telemetry: Telemetry(metrics: .shared), wallClock: { WallInstant(secondsSince1970: 0) })
    }

    @Test func jobsOfOneWorkflowShareItsEdgesAndOthersKeepTheirOwn() throws {
        let q = try service()
        let a = workflow("a", [("a", []), ("b", ["a"])])
        let b = workflow("b", [("x", []), ("y", ["x"]), ("z", ["x", "y"])])
        #expect(q.needs(of: record("j-1", a)) == ["a": [], "b": ["a"]])
        #expect(q.needs(of: record("j-2", a)) == ["a": [], "b": ["a"]])
        // Same file name, another text: its own edges.
        #expect(q.needs(of: record("j-3", b)) == ["x": [], "y": ["x"], "z": ["x", "y"]])
        #expect(q.needs(of: record("j-4", a)) == ["a": [], "b": ["a"]])
        // A text too large to be a key is kept under its job: still its own edges.
        let long = String(repeating: "word ", count: 5_000)
        let big1 = workflow("big", [("p", []), ("q", ["p"])], prompt: long)
        let big2 = workflow("big", [("p", []), ("q", [])], prompt: long)
        #expect(big1.utf8.count > QueryService.sharedTextLimit)
        #expect(q.needs(of: record("j-5", big1)) == ["p": [], "q": ["p"]])
        #expect(q.needs(of: record("j-6", big2)) == ["p": [], "q": []])
        // Past the cache's bound, an evicted workflow is parsed again, correctly.
        for i in 0..<(QueryService.needsCacheSize + 10) {
            #expect(q.needs(of: record("j-w\(i)", workflow("w\(i)", [("s\(i)", [])]))) == ["s\(i)": []])
        }
        #expect(q.needs(of: record("j-7", a)) == ["a": [], "b": ["a"]])
        // A text that does not parse has no edges (the report shows none), every time.
        #expect(q.needs(of: record("j-8", "name: [")) == [:])
    }
}
