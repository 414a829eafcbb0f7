import AgentFlowCore
import Archive
import ArgumentParser
import Foundation

/// `-p name=value` and `--input NAME=PATH`, for `run`, `submit`, `plan` and `validate`.
struct WorkflowParameters: ParsableArguments {
    @Option(name: [.customShort("p"), .customLong("param")],
            help: "Set a workflow parameter: -p name=value (repeatable; lists and objects as JSON, e.g. -p 'docs=[\"a.txt\",\"b.txt\"]').")
    var params: [String] = []

    @Option(name: .customLong("input"),
            help: "Add or replace an input: --input NAME=PATH (a file or directory, relative to the current directory; repeatable).")
    var inputs: [String] = []

    func validate() throws {
        _ = try parsedParams()
        _ = try parsedInputs()
    }

    /// The `-p` values: JSON where the text is JSON (`3`, `true`, `["a"]`, `"x"`), else the text.
    func parsedParams() throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for entry in params {
            guard let eq = entry.firstIndex(of: "=") else { throw ValidationError("-p \(entry): expected name=value") }
            let name = String(entry[..<eq]), text = String(entry[entry.index(after: eq)...])
            guard Template.isName(name) else { throw ValidationError("-p \(entry): '\(name)' is not a parameter name (letters, digits, '_')") }
            if text.utf8.count > Limits.maxParamBytes { throw ValidationError("-p \(name): the value is more than \(Limits.maxParamBytes) bytes") }
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("[") || trimmed.hasPrefix("{") {
                do { out[name] = try JSONValue.parse(trimmed) } catch {
                    throw ValidationError("-p \(name): the value starts like JSON but is not JSON (\(error))")
                }
            } else {
                out[name] = (try? JSONValue.parse(trimmed)) ?? .string(text)
            }
        }
        if out.count > Limits.maxParams { throw ValidationError("more than \(Limits.maxParams) parameters") }
        return out
    }

    /// The `--input` entries: name → absolute path.
    func parsedInputs() throws -> [String: String] {
        var out: [String: String] = [:]
        let cwd = FileManager.default.currentDirectoryPath
        for entry in inputs {
            guard let eq = entry.firstIndex(of: "=") else { throw ValidationError("--input \(entry): expected NAME=PATH") }
            let name = String(entry[..<eq]), path = String(entry[entry.index(after: eq)...])
            if let problem = Workflow.inputNameProblem(name) { throw ValidationError("--input \(entry): \(problem)") }
            if path.isEmpty { throw ValidationError("--input \(name): the path is empty") }
            out[name] = path.hasPrefix("/") ? path : URL(fileURLWithPath: cwd).appendingPathComponent(path).standardizedFileURL.path
        }
        return out
    }
}

/// A workflow file read for submission: validated with its parameters, and the text to send —
/// the file itself, or a ``Submission`` carrying parameters, packed inputs and schema files.
struct LoadedWorkflow {
    var workflow: Workflow
    var text: String
    /// What packing left out (links, `.git`), for the user.
    var notes: [String]
}

/// Reads and validates a workflow against the cluster, applies `-p`, and packs what it needs
/// from this disk (`pack: false` checks without packing).
func loadWorkflow(_ path: String, cluster: Cluster?, parameters: WorkflowParameters, pack: Bool = true) throws -> LoadedWorkflow {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigError(file: path, "cannot read the workflow file (does it exist?)")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: path, "the file is not UTF-8 text") }
    let params = try parameters.parsedParams()
    let extra = try parameters.parsedInputs()
    let files = WorkflowFiles.directory(URL(fileURLWithPath: path).deletingLastPathComponent().path)
    var workflow = try Workflow.parse(yaml: text, file: path, knownModels: cluster?.modelNames, params: params, files: files)
    for name in extra.keys.sorted() where !workflow.inputs.contains(where: { $0.name == name }) {
        workflow.inputs.append(WorkflowInput(name: name, path: extra[name]))
    }
    guard pack else { return LoadedWorkflow(workflow: workflow, text: text, notes: []) }
    let packed = try InputPacking.submission(text: text, file: path, workflow: workflow, params: params, extra: extra, files: files)
    return LoadedWorkflow(workflow: workflow, text: packed.text, notes: packed.notes)
}
