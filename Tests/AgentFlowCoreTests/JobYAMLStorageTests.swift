import AgentFlowCore
import Foundation
import Store
import Testing

/// The workflow text lives in `job_yaml`, not in the jobs row that every finished attempt
/// updates (schema migration 2; docs/benchmarks.md, Dispatch).
struct JobYAMLStorageTests {
    @Test func workflowTextIsKeptOutOfTheJobsRow() throws {
        let path = NSTemporaryDirectory() + "af-yaml-\(UUID().uuidString).db"
        defer { for s in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let yaml = "name: big\nsubtasks:\n" + String(repeating: "  - {id: x, prompt: p}\n", count: 5000)
        var job = JobRecord(id: "j-big", workflowName: "big", yaml: yaml, file: "big.yaml", state: .running, reason: "", planner: "seq:1",
                            seed: 1, priority: 0, limitTokens: 100, limitUSD: nil, spentTokens: 0, spentUSD: .zero,
                            submittedAt: 1, deadline: 100, startedAt: 1, endedAt: nil, minSuccess: nil)
        do {
            let store = try Store(path: path)
            try store.begin()
            try store.save(job)
            job.spentTokens = 42
            try store.update(job)
            try store.save(job)  // the upsert path keeps the text too
            try store.commit()
            #expect(try store.job("j-big")?.yaml == yaml)
            #expect(try store.job("j-big")?.spentTokens == 42)
        }
        let raw = try SQLiteConnection(path: path)
        #expect(try raw.query("SELECT length(yaml) FROM jobs WHERE id = 'j-big'")[0].int(0) == 0)
        #expect(try raw.query("SELECT length(yaml) FROM job_yaml WHERE job = 'j-big'")[0].int(0) == yaml.utf8.count)
    }
}
