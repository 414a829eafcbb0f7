import AgentFlowCore
import Archive
import Foundation

/// What the `sim` backend produces for agent work: the kind's default output file, so that
/// outputs, dependants' inputs and `agentflow outputs` work on simulated fleets too.
enum SimOutputs {
    /// The legacy text output and the kept files of a simulated success.
    static func make(for spec: AttemptSpec, work: AttemptWork) -> (text: String, bundle: OutputBundle) {
        let id = spec.id.subtask
        let (file, text): (String, String)
        switch work.kind {
        case .code: (file, text) = ("solution.py", "# simulated solution for \(id)\n")
        case .answer: (file, text) = ("answer.md", "Simulated answer for \(id).\n")
        case .json:
            let schema = work.schema.flatMap { try? JSONSchema(try JSONValue.parse($0)) }
            (file, text) = ("answer.json", (schema?.example ?? .object([:])).prettyText)
        case .files: (file, text) = ("simulated-change.txt", "simulated change for \(id)\n")
        }
        let data = Data(text.utf8)
        let bundle = OutputBundle(files: [OutputFile(path: file, size: data.count, sha256: Blob.hash(data))],
                                  blob: Blob(TarGz.pack([TreeEntry(path: file, data: data)])))
        return (work.kind == .files ? file : text, bundle)
    }
}
