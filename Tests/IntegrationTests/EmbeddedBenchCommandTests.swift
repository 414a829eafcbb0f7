import Foundation
import Testing

/// `bench dispatch`, `bench intake` and `bench memory` share their options (`--database`,
/// `--json`) and their way of running: each, run small, prints one JSON object with its
/// numbers and nothing else on stdout, keeps a database the user named (and removes its own),
/// and refuses bad values with exit 2.
@Suite(.serialized) struct EmbeddedBenchCommandTests {
    static let runs: [(name: String, args: [String], count: String, expected: Int)] = [
        ("dispatch", ["--workers", "2", "--slots", "2", "--jobs", "2", "--subtasks", "40"], "attempts", 80),
        ("intake", ["--clients", "3", "--depths", "0,25", "--jobs", "25"], "clients", 3),
        ("memory", ["--jobs", "30", "--warmup", "5", "--clients", "3", "--settle", "0"], "jobs", 30),
    ]

    @Test(arguments: 0..<3) func eachRunsSmallAndPrintsJSON(_ index: Int) throws {
        let (name, args, count, expected) = Self.runs[index]
        let db = NSTemporaryDirectory() + "af-bench-\(name)-\(UUID().uuidString).db"
        defer { for s in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: db + s) } }
        let r = try agentflow(["bench", name] + args + ["--database", db, "--json"], timeout: 120)
        #expect(r.code == 0, "\(r.out)\(r.err)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], "\(r.out)")
        #expect(result[count] as? Int == expected, "\(result)")
        // --json: no progress lines on stderr either.
        #expect(!r.err.contains("queue depth") && !r.err.contains("warm-up") && !r.err.contains("RSS before"), "\(r.err)")
        #expect(FileManager.default.fileExists(atPath: db), "the named database is kept")
    }

    @Test func badValuesAreRefusedWithExitTwo() throws {
        for args in [["dispatch", "--slots", "0"], ["dispatch", "--commit-linger-us", "-5"], ["intake", "--depths", "10,x"], ["memory", "--settle", "nan"], ["memory", "--clients", "-1"]] {
            let r = try agentflow(["bench"] + args, timeout: 30)
            #expect(r.code == 2, "\(args): \(r.err)")
            #expect(r.err.contains("--" + (args[1].dropFirst(2))), "\(args): the error names the option: \(r.err)")
        }
    }
}
