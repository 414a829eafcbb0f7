import AgentFlowCore
import Foundation
import Store
import Testing

/// A job's tenant is stored with it, so fair share survives a coordinator restart.
@Test func aJobsTenantIsStored() throws {
    let path = NSTemporaryDirectory() + "af-tenant-\(UUID().uuidString).db"
    defer { for s in ["", "-wal", "-shm", ".lock"] { try? FileManager.default.removeItem(atPath: path + s) } }
    var job = JobRecord(id: "j-t", workflowName: "w", yaml: "name: w", file: "w.yaml", state: .queued, reason: "", planner: "mcpp",
                        seed: 1, priority: 0, limitTokens: 100, limitUSD: nil, spentTokens: 0, spentUSD: .zero,
                        submittedAt: 10, deadline: 70, startedAt: nil, endedAt: nil, minSuccess: nil)
    job.tenant = "alice"
    let store = try Store(path: path)
    try store.begin()
    try store.save(job)
    try store.commit()
    #expect(try store.job("j-t")?.tenant == "alice")
    #expect(try store.activeJobs().first?.tenant == "alice")
}
