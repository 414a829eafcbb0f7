import AgentFlowCore
import Archive
import Foundation

/// An attempt's workspace as agent work sees it (``AttemptWork``): inputs unpacked under
/// `inputs/NAME/` (or as the workspace itself for `workspace: {from:}`), the needs' outputs
/// laid out, a snapshot to tell which files the agent changed, and the outputs kept at the end.
///
/// Files go in through the sandbox's own writes (``Sandbox/seed(_:_:)-(String,Data)`` for inputs
/// and needs, restored in every verifier's copy; ``Sandbox/write(_:_:)-(String,Data)`` for the
/// agent's); walking and removing go through ``SafeDirectory``: links the model's code plants
/// never lead a write or a read out of the workspace.
final class AttemptWorkspace {
    let sandbox: Sandbox
    let files: SafeDirectory
    let work: AttemptWork
    /// `inputs/` after set-up (path → stamp), to notice changes.
    private var pristine: [String: String] = [:]
    /// The workspace after set-up (path → stamp): `files` outputs are what differs from it.
    private var baseline: [String: String] = [:]
    /// Internal files (the action scripts) live here, outside what the agent's outputs are.
    static let privateDirectory = ".agentflow"
    /// Inputs and the needs' outputs: read-only to the agent.
    static let inputsDirectory = "inputs"

    init(sandbox: Sandbox, work: AttemptWork) {
        self.sandbox = sandbox
        self.files = SafeDirectory(root: sandbox.workspace)
        self.work = work
    }

    /// Unpacks the inputs and lays out the needs' text outputs. Returns notes for the agent
    /// (entries left out of an archive).
    func setUp(needOutputs: [String: String]) throws -> [String] {
        var notes: [String] = []
        let bodies = Dictionary(work.blobs.map { ($0.sha256, $0) }, uniquingKeysWith: { a, _ in a })
        // The workspace tree first, so that inputs/ is laid over it and not the reverse.
        for input in work.inputs.sorted(by: { $0.at.isEmpty && !$1.at.isEmpty }) {
            guard let blob = bodies[input.sha256] else { throw SetUpError("input '\(input.name)' did not arrive") }
            let contents: Tar.Contents
            do { contents = try TarGz.unpack(blob.data) } catch { throw SetUpError("input '\(input.name)': \(error)") }
            for e in contents.entries {
                let path = input.at.isEmpty ? e.path : input.at + "/" + e.path
                if e.isDirectory {
                    try files.makeDirectory(path)
                } else if input.at.isEmpty {
                    // The workspace's own tree is the agent's to change.
                    try sandbox.write(path, e.data)
                } else {
                    try sandbox.seed(path, e.data)
                }
                if e.executable { files.setMode(path, 0o755) }
            }
            if !input.at.isEmpty && contents.entries.isEmpty { try files.makeDirectory(input.at) }
            notes += contents.skipped.prefix(5).map { "input '\(input.name)': \($0)" }
        }
        for need in work.needs {
            let dir = "\(Self.inputsDirectory)/\(need.id)"
            // A need whose outputs arrived as a tree (an input placed at inputs/ID) has its
            // files already; otherwise its text output is laid out as its kind's file.
            let arrived = work.inputs.contains { $0.at == dir }
            let text = needOutputs[need.id] ?? ""
            switch need.kind {
            case .code:
                if !arrived { try sandbox.seed("\(dir)/solution.py", Data(text.utf8)) }
                if let module = need.module {
                    let source = arrived ? sandbox.readData("\(dir)/solution.py", limit: Limits.maxOutputBytes) ?? Data(text.utf8) : Data(text.utf8)
                    try sandbox.seed(module, source)
                }
            case .answer, .json:
                if !arrived { try sandbox.seed("\(dir)/\(need.kind.answerFile!)", Data(text.utf8)) }
            case .files:
                if !arrived { try files.makeDirectory(dir) }
            }
        }
        files.makeReadOnly(Self.inputsDirectory)
        pristine = stamps(Self.inputsDirectory)
        baseline = stamps(nil)
        return notes
    }

    struct SetUpError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    private func stamps(_ path: String?) -> [String: String] {
        var out: [String: String] = [:]
        for e in files.walk(path) where e.kind != .directory { out[e.path] = "\(e.kind):\(e.stamp)" }
        return out
    }

    /// Whether a path is the agent's to write (not under `inputs/`, not internal).
    func isWritable(_ path: String) -> Bool {
        guard let normal = WorkspacePath.normalized(path) else { return false }
        for reserved in [Self.privateDirectory, Self.inputsDirectory] where normal == reserved || normal.hasPrefix(reserved + "/") {
            return false
        }
        return true
    }

    /// Re-creates `inputs/` when the agent changed it; true when it had to.
    func restoreInputs(needOutputs: [String: String]) throws -> Bool {
        guard stamps(Self.inputsDirectory) != pristine else { return false }
        try files.remove(Self.inputsDirectory)
        let again = AttemptWorkspace(sandbox: sandbox, work: AttemptWork(
            kind: work.kind, actions: work.actions, inputs: work.inputs.filter { !$0.at.isEmpty }, blobs: work.blobs, needs: work.needs))
        _ = try again.setUp(needOutputs: needOutputs)
        pristine = stamps(Self.inputsDirectory)
        return true
    }

    /// Removes what set-up made read-only, so the workspace can be deleted.
    func cleanUp() {
        try? files.remove(Self.inputsDirectory)
    }

    /// A fingerprint of the files the agent may change, to tell whether a turn changed any.
    func fingerprint() -> [String: String] {
        stamps(nil).filter { isWritable($0.key) }
    }

    /// Files created or changed since set-up, outside inputs and internal files.
    func changedFiles() -> [String] {
        stamps(nil).filter { isWritable($0.key) && baseline[$0.key] != $0.value }.keys.sorted()
    }

    /// A listing of the workspace for the agent's prompt: at most `limit` entries.
    func listing(limit: Int = 40) -> String {
        let entries = files.walk(nil, limit: limit + 1).filter { !$0.path.hasPrefix(Self.privateDirectory) }
        var lines = entries.prefix(limit).map { e in
            e.kind == .directory ? e.path + "/" : e.kind == .symlink ? e.path + " (link)" : "\(e.path) (\(e.size) bytes)"
        }
        if entries.count > limit { lines.append("…") }
        return lines.isEmpty ? "(empty)" : lines.joined(separator: "\n")
    }

    /// What the outputs are when the attempt passes: the files matching `outputs` (or the
    /// kind's default), packed. Fails, naming the files, past ``Limits/maxOutputBytes`` or
    /// ``Limits/maxOutputFiles``; links and hard-linked files are left out and named.
    func collectOutputs(defaultGlobs: [String]?) -> Result<(bundle: OutputBundle, skipped: [String]), OutputProblem> {
        var paths: [String]
        var skipped: [String] = []
        let all = files.walk(nil)
        if let globs = work.outputs ?? defaultGlobs {
            let explicitInputs = globs.contains { $0.hasPrefix("inputs/") }
            paths = []
            for e in all where e.kind != .directory {
                guard globs.contains(where: { OutputGlob.matches($0, e.path) }) else { continue }
                if e.path.hasPrefix(Self.privateDirectory + "/") { continue }
                if !explicitInputs && !isWritable(e.path) { continue }
                if e.kind != .file {
                    skipped.append("\(e.path) (\(e.kind == .symlink ? "a symbolic link" : "not a regular file"))")
                    continue
                }
                paths.append(e.path)
            }
        } else {
            paths = changedFiles().filter { path in
                guard let e = all.first(where: { $0.path == path }) else { return false }
                if e.kind != .file {
                    skipped.append("\(path) (\(e.kind == .symlink ? "a symbolic link" : "not a regular file"))")
                    return false
                }
                return true
            }
        }
        if paths.count > Limits.maxOutputFiles {
            return .failure(OutputProblem(message: "\(paths.count) files to keep; at most \(Limits.maxOutputFiles) are kept"))
        }
        let sizes = Dictionary(all.map { ($0.path, $0.size) }, uniquingKeysWith: { a, _ in a })
        let total = paths.reduce(0) { $0 + (sizes[$1] ?? 0) }
        if total > Limits.maxOutputBytes {
            let largest = paths.sorted { (sizes[$0] ?? 0) > (sizes[$1] ?? 0) }.prefix(3).map { "\($0) (\(sizes[$0] ?? 0) bytes)" }
            return .failure(OutputProblem(message: "the files to keep are \(total) bytes; at most \(Limits.maxOutputBytes) are kept (largest: \(largest.joined(separator: ", ")))"))
        }
        var entries: [TreeEntry] = []
        var manifest: [OutputFile] = []
        let links = Dictionary(all.map { ($0.path, $0.links) }, uniquingKeysWith: { a, _ in a })
        for path in paths {
            // A hard-linked file may be a link to a file outside the workspace: never kept.
            guard links[path] ?? 1 <= 1, let data = sandbox.readData(path, limit: Limits.maxOutputBytes) else {
                skipped.append("\(path) (a hard link, or not readable)")
                continue
            }
            entries.append(TreeEntry(path: path, data: data))
            manifest.append(OutputFile(path: path, size: data.count, sha256: Blob.hash(data)))
        }
        return .success((OutputBundle(files: manifest, blob: Blob(TarGz.pack(entries))), skipped))
    }

    struct OutputProblem: Error {
        var message: String
    }
}
