import AgentFlowCore
import Archive
import Foundation
import Store

/// Reading what subtasks kept, for `agentflow outputs`, the HTTP API and `status --json`. A
/// succeeded `code` subtask without a stored bundle (a plain dispatch, which reports its module
/// as text) keeps its module as `solution.py`.
enum OutputQueries {
    static func outputs(of job: String, reader: Store) throws -> [SubtaskOutputs] {
        var kept = try reader.outputs(of: job)
        let stored = Set(kept.map(\.subtask))
        for s in try reader.subtasks(of: job) where s.state == .succeeded && !stored.contains(s.id) {
            guard let text = s.output else { continue }
            let data = Data(text.utf8)
            kept.append(SubtaskOutputs(subtask: s.id, n: 0, bundle: "", files: [OutputFile(path: "solution.py", size: data.count, sha256: Blob.hash(data))]))
        }
        return kept.sorted { $0.subtask < $1.subtask }
    }

    static func bundle(of job: String, subtask: String, reader: Store) throws -> Blob? {
        guard let entry = try outputs(of: job, reader: reader).first(where: { $0.subtask == subtask }) else { return nil }
        if !entry.bundle.isEmpty { return try reader.blob(entry.bundle) }
        guard let text = try reader.subtasks(of: job).first(where: { $0.id == subtask })?.output else { return nil }
        return Blob(TarGz.pack([TreeEntry(path: "solution.py", data: Data(text.utf8))]))
    }
}
