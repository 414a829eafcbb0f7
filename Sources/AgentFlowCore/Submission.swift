import Foundation

/// A workflow as it is submitted with what it needs from the submitter's disk: its YAML text,
/// parameter values, its inputs packed (gzip-compressed tar, base64) and the text files it
/// refers to (a schema file). One JSON object:
///
/// ```json
/// {"workflow": "name: ...\nsubtasks: ...", "params": {"docs": ["a.txt"]},
///  "inputs": {"repo": "H4sIAAAA..."}, "files": {"schemas/record.json": "{...}"}}
/// ```
///
/// `workflow` may also be the workflow as a JSON object. The CLI sends this in place of the
/// bare YAML when a workflow has inputs, parameters or schema files; the HTTP API accepts it
/// as the body; the coordinator stores it as the job's workflow, so a restart re-reads the same
/// job. ``Workflow/parse(yaml:file:knownModels:params:files:)`` recognises it.
public struct Submission: Sendable, Equatable {
    public var workflow: String
    public var params: [String: JSONValue]
    public var inputs: [String: Blob]
    public var files: [String: String]

    public init(workflow: String, params: [String: JSONValue] = [:], inputs: [String: Blob] = [:], files: [String: String] = [:]) {
        self.workflow = workflow
        self.params = params
        self.inputs = inputs
        self.files = files
    }

    /// Largest submission accepted: it travels in one message (ZeroMQ frames are capped at 16 MiB).
    public static let maxBytes = 15 << 20

    /// The JSON text.
    public var text: String {
        var members: [String: JSONValue] = ["workflow": .string(workflow)]
        if !params.isEmpty { members["params"] = .object(params) }
        if !inputs.isEmpty { members["inputs"] = .object(inputs.mapValues { .string($0.data.base64EncodedString()) }) }
        if !files.isEmpty { members["files"] = .object(files.mapValues { .string($0) }) }
        return JSONValue.object(members).text
    }

    /// The submission in `text`, or nil when `text` is a plain workflow (YAML, or a workflow
    /// written as a JSON object). Throws when it is a submission but a malformed one.
    public static func read(_ text: String, file: String) throws -> Submission? {
        guard text.utf8.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) == UInt8(ascii: "{") else { return nil }
        if text.utf8.count > maxBytes {
            throw ConfigError(file: file, "the submission is \(text.utf8.count) bytes; the limit is \(maxBytes) (inputs are limited to \(Limits.maxInputBytes) bytes packed)")
        }
        guard case .object(let m) = try? JSONValue.parse(text), let workflowValue = m["workflow"] else { return nil }
        for key in m.keys.sorted() where !["workflow", "params", "inputs", "files"].contains(key) {
            throw ConfigError(file: file, "unknown key '\(key)' in the submission (expected: workflow, params, inputs, files)")
        }
        var s = Submission(workflow: "")
        switch workflowValue {
        case .string(let yaml): s.workflow = yaml
        // Indented, so that validation messages still have useful line numbers.
        case .object: s.workflow = workflowValue.prettyText
        default: throw ConfigError(file: file, "the submission's 'workflow' must be YAML text or an object")
        }
        if let p = m["params"], p != .null {
            guard case .object(let params) = p else { throw ConfigError(file: file, "the submission's 'params' must be an object") }
            s.params = params
        }
        if let i = m["inputs"], i != .null {
            guard case .object(let inputs) = i else { throw ConfigError(file: file, "the submission's 'inputs' must be an object of base64 text") }
            var total = 0
            for (name, value) in inputs.sorted(by: { $0.key < $1.key }) {
                guard case .string(let b64) = value, let data = Data(base64Encoded: b64) else {
                    throw ConfigError(file: file, "input '\(name.prefix(64))' of the submission is not base64 text")
                }
                total += data.count
                if total > Limits.maxInputBytes {
                    throw ConfigError(file: file, "the inputs are more than \(Limits.maxInputBytes) bytes packed")
                }
                s.inputs[name] = Blob(data)
            }
        }
        if let f = m["files"], f != .null {
            guard case .object(let files) = f else { throw ConfigError(file: file, "the submission's 'files' must be an object of text") }
            for (path, value) in files {
                guard case .string(let content) = value else { throw ConfigError(file: file, "file '\(path.prefix(80))' of the submission is not text") }
                s.files[path] = content
            }
        }
        return s
    }
}
