import AgentFlowCore
import Archive
import ArgumentParser
import Foundation
import Wire

/// `agentflow outputs JOB [--dir D]`: the files a job's subtasks kept — listed, or written to
/// `D/<subtask>/<path>`, each checked against its SHA-256 in the manifest.
struct OutputsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outputs", abstract: "List the files a job's subtasks kept, or write them to a directory (one per subtask).")

    @Argument(help: "Job id.") var job: String
    @Option(name: .long, help: "Write the files under this directory, one directory per subtask (created if missing).") var dir: String?
    @Option(name: .long, help: "Only this subtask.") var subtask: String?
    @OptionGroup var cluster: ClusterOptions
    @Option(name: .long, help: "Read this SQLite database (or postgres://USER@HOST/DB) directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?
    @Flag(name: .long, help: "Print JSON (the manifest; with --dir, what was written).") var json = false

    func run() throws {
        guard case .outputs(var kept) = try reply(HistoryReader.ask([.outputs(job: job)], cluster, database: database)[0]) else {
            throw CLIError(code: 1, message: "unexpected reply from the coordinator")
        }
        if let subtask {
            kept = kept.filter { $0.subtask == subtask }
            if kept.isEmpty { throw CLIError.badInput("subtask '\(subtask)' of \(job) kept no files") }
        }
        guard let dir else {
            if json {
                printJSON(Dictionary(uniqueKeysWithValues: kept.map { ($0.subtask, $0.files) }))
            } else if kept.isEmpty {
                print("\(job): no subtask kept files (yet)")
            } else {
                var rows = [["subtask", "path", "bytes", "sha256"]]
                for s in kept { for f in s.files { rows.append([s.subtask, f.path, String(f.size), String(f.sha256.prefix(12))]) } }
                print(table(rows))
            }
            return
        }
        let root = URL(fileURLWithPath: dir).standardizedFileURL
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let target = SafeDirectory(root: root)
        var written: [String: [String]] = [:]
        let wanted = kept.filter { !$0.files.isEmpty }
        let bundles = try HistoryReader.ask(wanted.map { .outputBundle(job: job, subtask: $0.subtask) }, cluster, database: database)
        for (s, answer) in zip(wanted, bundles) {
            guard case .bundle(let blob) = try reply(answer) else {
                throw CLIError(code: 1, message: "unexpected reply from the coordinator")
            }
            let contents: Tar.Contents
            do {
                contents = try TarGz.unpack(blob.data, maxEntries: Limits.maxOutputFiles * 2, maxBytes: Limits.maxOutputBytes)
            } catch {
                throw CLIError(code: 1, message: "the outputs of \(s.subtask) cannot be unpacked: \(error)")
            }
            let expected = Dictionary(s.files.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
            for e in contents.entries where !e.isDirectory {
                // Only what the manifest names, with the content it names.
                guard let sha = expected[e.path], Blob.hash(e.data) == sha else {
                    throw CLIError(code: 1, message: "the outputs of \(s.subtask) do not match their manifest at \(Limits.printable(e.path))")
                }
                let path = "\(Self.directoryName(s.subtask))/\(e.path)"
                do { try target.write(path, e.data) } catch {
                    throw CLIError(code: 1, message: "cannot write \(root.path)/\(path): \(error.message)")
                }
                written[s.subtask, default: []].append(path)
            }
        }
        if json {
            printJSON(written)
        } else {
            let count = written.values.reduce(0) { $0 + $1.count }
            print("\(count) file\(count == 1 ? "" : "s") of \(written.count) subtask\(written.count == 1 ? "" : "s") written under \(root.path)")
            for (_, paths) in written.sorted(by: { $0.key < $1.key }) { for p in paths { print("  \(p)") } }
        }
    }

    /// A subtask id as a directory name (ids are letters, digits, `_-.` and `[i]`).
    static func directoryName(_ subtask: String) -> String {
        subtask == "." || subtask == ".." ? "_" + subtask : subtask.replacingOccurrences(of: "/", with: "_")
    }

    func reply(_ r: ClientReply) throws -> ClientReply {
        if case .error(let code, let message) = r { throw CLIError(code: code == 2 || code == 4 ? 2 : 1, message: message) }
        return r
    }
}
