import AgentFlowCore
import Foundation

/// The files subtasks kept (DESIGN.md §3): per subtask, the bundle (gzip-compressed tar,
/// content-addressed in `blobs`, as base64 text) and its manifest, one row per file.
extension Store {
    func save(outputs bundle: OutputBundle, job: String, subtask: String, n: Int) throws {
        try connection.run("INSERT INTO blobs (sha256, base64) VALUES (?, ?) ON CONFLICT DO NOTHING", bundle.blob.sha256, bundle.blob.data.base64EncodedString())
        try connection.run("""
            INSERT INTO output_bundles (job, subtask, n, bundle) VALUES (?, ?, ?, ?)
            ON CONFLICT(job, subtask) DO UPDATE SET n = excluded.n, bundle = excluded.bundle
            """, job, subtask, n, bundle.blob.sha256)
        try connection.run("DELETE FROM output_files WHERE job = ? AND subtask = ?", job, subtask)
        for f in bundle.files {
            try connection.run("""
                INSERT INTO output_files (job, subtask, path, size, sha256) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(job, subtask, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256
                """,
                               job, subtask, f.path, f.size, f.sha256)
        }
    }

    /// What each subtask of `job` kept, in subtask order.
    public func outputs(of job: String) throws -> [SubtaskOutputs] {
        var byBundle: [String: SubtaskOutputs] = [:]
        for r in try connection.query("SELECT subtask, n, bundle FROM output_bundles WHERE job = ? ORDER BY subtask", job) {
            byBundle[r.string(0)] = SubtaskOutputs(subtask: r.string(0), n: r.int(1), bundle: r.string(2), files: [])
        }
        for r in try connection.query("SELECT subtask, path, size, sha256 FROM output_files WHERE job = ? ORDER BY subtask, path", job) {
            byBundle[r.string(0)]?.files.append(OutputFile(path: r.string(1), size: r.int(2), sha256: r.string(3)))
        }
        return byBundle.values.sorted { $0.subtask < $1.subtask }
    }

    /// The bundles of `job`'s subtasks, by subtask (a restarted coordinator hands them to dependants).
    public func outputBundles(of job: String) throws -> [String: Blob] {
        var out: [String: Blob] = [:]
        for r in try connection.query("SELECT o.subtask, b.base64 FROM output_bundles o JOIN blobs b ON b.sha256 = o.bundle WHERE o.job = ?", job) {
            if let data = Data(base64Encoded: r.string(1)) { out[r.string(0)] = Blob(data) }
        }
        return out
    }

    /// The bytes named `sha256`, or nil.
    public func blob(_ sha256: String) throws -> Blob? {
        guard let row = try connection.query("SELECT base64 FROM blobs WHERE sha256 = ?", sha256).first,
              let data = Data(base64Encoded: row.string(0)) else { return nil }
        return Blob(data)
    }
}
