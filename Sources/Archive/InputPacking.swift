import AgentFlowCore
import Foundation

/// The client's half of inputs: reading the files and directories a workflow names from the
/// submitter's disk and packing them, so that workers never read that disk.
public enum InputPacking {
    /// What packing one input found.
    public struct Packed: Sendable {
        public var blob: Blob
        public var files: Int
        public var bytes: Int
        /// Entries left out (links, devices, a `.git` directory), with why.
        public var skipped: [String]
    }

    /// Packs the file or directory at `path`: a directory's contents, or one file under its own
    /// name. Symbolic links and `.git` directories are left out; the limits are
    /// ``Limits/maxInputFiles``, ``Limits/maxInputTreeBytes`` and, packed, ``Limits/maxInputBytes``.
    public static func pack(path: String, name: String) throws -> Packed {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PackError("input '\(name)': \(path) does not exist")
        }
        var entries: [TreeEntry] = []
        var skipped: [String] = []
        var bytes = 0
        if isDirectory.boolValue {
            let tree = SafeDirectory(root: URL(fileURLWithPath: path))
            var skipUnder: [String] = []
            for entry in tree.walk(limit: Limits.maxInputFiles + 1) {
                if skipUnder.contains(where: { entry.path.hasPrefix($0) }) { continue }
                switch entry.kind {
                case .directory:
                    if entry.path == ".git" || entry.path.hasSuffix("/.git") {
                        skipped.append("\(entry.path)/ (a git directory)")
                        skipUnder.append(entry.path + "/")
                        continue
                    }
                    entries.append(TreeEntry(path: entry.path, isDirectory: true))
                case .file:
                    bytes += entry.size
                    if bytes > Limits.maxInputTreeBytes {
                        throw PackError("input '\(name)' (\(path)) holds more than \(Limits.maxInputTreeBytes) bytes")
                    }
                    guard let data = FileManager.default.contents(atPath: URL(fileURLWithPath: path).appendingPathComponent(entry.path).path) else {
                        throw PackError("input '\(name)': cannot read \(entry.path)")
                    }
                    entries.append(TreeEntry(path: entry.path, data: data, executable: entry.executable))
                case .symlink: skipped.append("\(entry.path) (a symbolic link)")
                case .other: skipped.append("\(entry.path) (not a regular file)")
                }
                if entries.count > Limits.maxInputFiles {
                    throw PackError("input '\(name)' (\(path)) holds more than \(Limits.maxInputFiles) files and directories")
                }
            }
        } else {
            let url = URL(fileURLWithPath: path)
            guard let data = FileManager.default.contents(atPath: path) else { throw PackError("input '\(name)': cannot read \(path)") }
            if data.count > Limits.maxInputTreeBytes { throw PackError("input '\(name)' (\(path)) is more than \(Limits.maxInputTreeBytes) bytes") }
            bytes = data.count
            entries.append(TreeEntry(path: url.lastPathComponent, data: data,
                                     executable: FileManager.default.isExecutableFile(atPath: path)))
        }
        let packed = TarGz.pack(entries)
        if packed.count > Limits.maxInputBytes {
            throw PackError("input '\(name)' (\(path)) is \(packed.count) bytes packed; inputs may be \(Limits.maxInputBytes) bytes packed in all")
        }
        return Packed(blob: Blob(packed), files: entries.filter { !$0.isDirectory }.count, bytes: bytes, skipped: skipped)
    }

    /// The text to submit for a workflow file: the file as it is when it needs nothing from the
    /// disk, else a ``Submission`` with its parameters, its inputs packed and the files it
    /// refers to. `extra` adds or replaces inputs given at submission (NAME → path).
    public static func submission(
        text: String, file: String, workflow: Workflow, params: [String: JSONValue], extra: [String: String], files: WorkflowFiles
    ) throws -> (text: String, notes: [String]) {
        if workflow.inputs.isEmpty && extra.isEmpty && params.isEmpty && files.contents.isEmpty { return (text, []) }
        let base = URL(fileURLWithPath: file).deletingLastPathComponent()
        var blobs: [String: Blob] = [:]
        var notes: [String] = []
        var total = 0
        var sources: [(String, String)] = workflow.inputs.compactMap { input in
            guard extra[input.name] == nil, let p = input.path else { return nil }
            return (input.name, p.hasPrefix("/") ? p : base.appendingPathComponent(p).path)
        }
        sources += extra.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (name, path) in sources {
            let packed: Packed
            do { packed = try pack(path: path, name: name) } catch let e as PackError {
                let line = workflow.inputs.first { $0.name == name }?.line
                throw ConfigError(file: file, line: extra[name] == nil ? line : nil, e.message)
            }
            total += packed.blob.data.count
            if total > Limits.maxInputBytes {
                throw ConfigError(file: file, "the inputs are \(total) bytes packed; the limit is \(Limits.maxInputBytes) for all of them")
            }
            blobs[name] = packed.blob
            for s in packed.skipped.prefix(5) { notes.append("input '\(name)': left out \(s)") }
            if packed.skipped.count > 5 { notes.append("input '\(name)': \(packed.skipped.count - 5) more entries left out") }
        }
        let submission = Submission(workflow: text, params: params, inputs: blobs, files: files.contents)
        let out = submission.text
        if out.utf8.count > Submission.maxBytes {
            throw ConfigError(file: file, "the submission would be \(out.utf8.count) bytes; the limit is \(Submission.maxBytes)")
        }
        return (out, notes)
    }

    struct PackError: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }
}
