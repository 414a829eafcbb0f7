import Foundation
import Yams

/// Reading the agent-work keys of a workflow (DESIGN.md §3, "Agent work beyond one module"):
/// `params`, `inputs`, and per subtask `kind`, `actions`, `schema`, `outputs`, `workspace`,
/// `judge` and `foreach`, with `{{ name }}` substituted where it may appear.
extension Workflow {
    /// Subtask keys added for agent work.
    static let agentSubtaskKeys: Set<String> = ["kind", "actions", "schema", "outputs", "workspace", "judge", "foreach"]

    // MARK: - Parameters

    /// Declared parameters with `overrides` applied. A declared default of `null` (`~`) makes
    /// the parameter required; an override for an undeclared name is an error.
    static func parseParams(_ node: Node?, _ r: YAMLReader, overrides: [String: JSONValue]) throws -> [String: JSONValue] {
        var declared: [String: (value: JSONValue, node: Node)] = [:]
        if let node {
            let m = try r.mapping(node, "params")
            if m.count > Limits.maxParams { throw r.error(node, "\(m.count) parameters; at most \(Limits.maxParams) are accepted") }
            for (key, value) in m {
                let name = try r.string(key, "a parameter name")
                guard Template.isName(name) else {
                    throw r.error(key, "parameter name '\(name)' must be letters, digits and '_', not starting with a digit")
                }
                if name == "item" { throw r.error(key, "'item' is reserved: it names the current entry of a 'foreach'") }
                declared[name] = (try json(value, r, "parameter '\(name)'"), key)
            }
        }
        var values = declared.mapValues(\.value)
        for (name, value) in overrides.sorted(by: { $0.key < $1.key }) {
            guard declared[name] != nil else {
                let known = declared.keys.sorted()
                throw ConfigError(file: r.file, "parameter '\(name)' is not declared in 'params'"
                    + (known.isEmpty ? " (the workflow declares none)" : " (declared: \(known.joined(separator: ", ")))"))
            }
            if value.text.utf8.count > Limits.maxParamBytes {
                throw ConfigError(file: r.file, "parameter '\(name)' is \(value.text.utf8.count) bytes as JSON; at most \(Limits.maxParamBytes)")
            }
            values[name] = value
        }
        for (name, entry) in declared.sorted(by: { $0.key < $1.key }) where values[name] == .null {
            throw r.error(entry.node, "parameter '\(name)' has no default and was not given (pass -p \(name)=VALUE)")
        }
        return values
    }

    /// A YAML value as JSON: scalars by their resolved YAML type (quoted text stays text).
    static func json(_ node: Node, _ r: YAMLReader, _ what: String, depth: Int = 0) throws -> JSONValue {
        if depth > JSONValue.maxDepth { throw r.error(node, "\(what) is nested deeper than \(JSONValue.maxDepth) levels") }
        switch node {
        case .scalar(let s):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return .bool(node.bool ?? false)
            case .int, .float:
                guard let d = node.float, d.isFinite else { throw r.error(node, "\(what): '\(s.string)' is not a finite number") }
                return .number(d)
            default: return .string(s.string)
            }
        case .sequence(let seq):
            return .array(try seq.map { try json($0, r, what, depth: depth + 1) })
        case .mapping(let m):
            var members: [String: JSONValue] = [:]
            for (k, v) in m {
                let key = try r.string(k, "a key in \(what)")
                if members[key] != nil { throw r.error(k, "the key '\(key)' appears twice in \(what)") }
                members[key] = try json(v, r, what, depth: depth + 1)
            }
            return .object(members)
        case .alias:
            throw r.error(node, "\(what): aliases are not supported here")
        }
    }

    // MARK: - Templates

    /// `text` of a scalar `node` with placeholders filled; an error names the placeholder's line.
    static func render(_ text: String, node: Node, _ r: YAMLReader, scope: TemplateScope, what: String) throws -> String {
        do {
            return try Template.render(text, scope: scope)
        } catch {
            throw templateError(error, text: text, node: node, r, what: what)
        }
    }

    static func templateError(_ error: TemplateError, text: String, node: Node?, _ r: YAMLReader, what: String) -> ConfigError {
        var line = node?.mark?.line
        if let start = line {
            // A block scalar (`|`, `>`) starts on the line after its indicator.
            let block = node?.scalar.map { $0.style == .literal || $0.style == .folded } ?? false
            let before = text.prefix(error.offset).filter { $0 == "\n" }.count
            line = start + (block ? 1 : 0) + before
        }
        return ConfigError(file: r.file, line: line, "\(what): \(error.message)")
    }

    /// A JSON value (a schema) with placeholders filled in every string; a string that is
    /// exactly one placeholder takes the parameter's value as it is (a list stays a list).
    static func render(_ value: JSONValue, node: Node, _ r: YAMLReader, scope: TemplateScope, what: String) throws -> JSONValue {
        switch value {
        case .string(let s):
            do {
                if let whole = try Template.wholeValue(s, scope: scope) { return whole }
                return .string(try Template.render(s, scope: scope))
            } catch {
                throw templateError(error, text: "", node: node, r, what: what)
            }
        case .array(let items): return .array(try items.map { try render($0, node: node, r, scope: scope, what: what) })
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (k, v) in members { out[k] = try render(v, node: node, r, scope: scope, what: what) }
            return .object(out)
        default: return value
        }
    }

    // MARK: - Inputs

    /// `inputs:`: NAME → a path (relative to the workflow file, placeholders filled). `packed`
    /// holds trees that arrived with a submission; an input without one keeps its path for the
    /// client to pack (a coordinator refuses it, see ``requirePacked(_:file:)``).
    static func parseInputs(_ node: Node?, _ r: YAMLReader, scope: TemplateScope, packed: [String: Blob]) throws -> [WorkflowInput] {
        var inputs: [WorkflowInput] = []
        if let node {
            for (key, value) in try r.mapping(node, "inputs") {
                let name = try r.string(key, "an input name")
                if let problem = inputNameProblem(name) { throw r.error(key, problem) }
                let raw = try r.string(value, "the path of input '\(name)'")
                let path = try render(raw, node: value, r, scope: scope, what: "the path of input '\(name)'")
                if path.isEmpty { throw r.error(value, "the path of input '\(name)' is empty") }
                inputs.append(WorkflowInput(name: name, path: path, blob: packed[name], line: key.mark?.line))
            }
        }
        // Inputs given at submission (`agentflow submit --input NAME=PATH`, the HTTP envelope)
        // may add names the file does not declare.
        for (name, blob) in packed.sorted(by: { $0.key < $1.key }) where !inputs.contains(where: { $0.name == name }) {
            if let problem = inputNameProblem(name) { throw ConfigError(file: r.file, "input given at submission: \(problem)") }
            inputs.append(WorkflowInput(name: name, path: nil, blob: blob, line: nil))
        }
        return inputs
    }

    /// Input names become directory names under `inputs/`.
    public static func inputNameProblem(_ name: String) -> String? {
        let ok = !name.isEmpty && name.utf8.count <= 64 && name != "." && name != ".."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
        return ok ? nil : "input name '\(name.prefix(80))' must be 1 to 64 characters of letters, digits, '_', '-' and '.'"
    }

    /// Throws unless every input carries its packed tree: a coordinator never reads paths.
    public static func requirePacked(_ workflow: Workflow, file: String) throws {
        for input in workflow.inputs where input.blob == nil {
            throw ConfigError(file: file, line: input.line,
                              "input '\(input.name)' (\(input.path ?? "?")) was not sent with the workflow: submit it with `agentflow submit`, "
                              + "which packs the files, or send it packed in the JSON submission")
        }
    }

    // MARK: - Subtask keys

    /// Reads `kind`, `actions`, `schema`, `outputs`, `workspace` and `judge` into `s`.
    static func parseAgentKeys(_ m: Node.Mapping, into s: inout Subtask, _ r: YAMLReader, scope: TemplateScope, knownModels: Set<String>?,
                               inputs: Set<String>, files: WorkflowFiles?) throws {
        let id = s.id
        if let n = m["kind"] {
            let k = try r.string(n, "kind of '\(id)'")
            guard let kind = SubtaskKind(rawValue: k) else {
                throw r.error(n, "unknown kind '\(k)' for '\(id)' (one of: \(SubtaskKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            s.kind = kind
        }
        if let n = m["actions"] {
            var actions: [AgentAction] = []
            for (i, entry) in try r.sequence(n, "actions of '\(id)'").enumerated() {
                let a = try r.string(entry, "each entry of actions")
                guard let action = AgentAction(rawValue: a) else {
                    throw r.error(n.sequence?[i] ?? n, "unknown action '\(a)' for '\(id)' (one of: python, shell)")
                }
                if !actions.contains(action) { actions.append(action) }
            }
            if s.kind == .code && !actions.contains(.python) {
                throw r.error(n, "a code subtask writes a Python module: its actions must include python")
            }
            s.actions = actions
        }
        if let n = m["schema"] {
            guard s.kind == .json else { throw r.error(n, "'schema' is for subtasks of kind json; '\(id)' is \(s.kind.rawValue)") }
            var source: JSONValue
            if let text = n.scalar?.string, n.tag.rawValue == Tag.Name.str.rawValue {
                let rendered = try render(text, node: n, r, scope: scope, what: "schema of '\(id)'")
                if let inline = try? JSONValue.parse(rendered) {
                    source = inline
                } else {
                    source = try schemaFile(rendered, node: n, r, files: files, id: id)
                }
                source = try render(source, node: n, r, scope: scope, what: "schema of '\(id)'")
            } else {
                source = try render(try json(n, r, "schema of '\(id)'"), node: n, r, scope: scope, what: "schema of '\(id)'")
            }
            do { s.schema = try JSONSchema(source) } catch { throw r.error(n, "schema of '\(id)': \(error)") }
        } else if s.kind == .json {
            s.schema = nil
        }
        if let n = m["outputs"] {
            var globs: [String] = []
            for entry in try r.sequence(n, "outputs of '\(id)'") {
                let g = try render(try r.string(entry, "each entry of outputs"), node: entry, r, scope: scope, what: "outputs of '\(id)'")
                if let problem = OutputGlob.problem(g) { throw r.error(entry, "outputs of '\(id)': \(problem)") }
                globs.append(g)
            }
            if globs.isEmpty { throw r.error(n, "outputs of '\(id)' is empty: leave it out for the kind's default") }
            s.outputs = globs
        }
        if let n = m["workspace"] {
            let wm = try r.mapping(n, "workspace of '\(id)'")
            try r.checkKeys(wm, allowed: ["from"], in: "workspace of '\(id)'")
            guard let from = wm["from"] else { throw r.error(n, "workspace of '\(id)' needs 'from: INPUT'") }
            let name = try r.string(from, "workspace.from of '\(id)'")
            guard inputs.contains(name) else {
                throw r.error(from, "workspace of '\(id)' starts from unknown input '\(name)'"
                    + (inputs.isEmpty ? " (the workflow has no 'inputs')" : " (inputs: \(inputs.sorted().joined(separator: ", ")))"))
            }
            s.workspaceFrom = name
        }
        if let n = m["judge"] {
            let jm = try r.mapping(n, "judge of '\(id)'")
            try r.checkKeys(jm, allowed: ["model", "rubric", "pass"], in: "judge of '\(id)'")
            guard let modelNode = jm["model"] else { throw r.error(n, "judge of '\(id)' needs 'model'") }
            let model = try render(try r.string(modelNode, "judge.model of '\(id)'"), node: modelNode, r, scope: scope, what: "judge.model of '\(id)'")
            if let known = knownModels, !known.contains(model) {
                throw r.error(modelNode, "unknown judge model '\(model)' for '\(id)' (candidates: \(known.sorted().joined(separator: ", ")))")
            }
            guard let rubricNode = jm["rubric"] else { throw r.error(n, "judge of '\(id)' needs a 'rubric': what a good result is") }
            let rubric = try render(try r.string(rubricNode, "judge.rubric"), node: rubricNode, r, scope: scope, what: "judge.rubric of '\(id)'")
            if rubric.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw r.error(rubricNode, "judge.rubric of '\(id)' is empty") }
            var pass = 0.7
            if let p = jm["pass"] {
                pass = try r.double(p, "judge.pass of '\(id)'")
                if let problem = Limits.probability(pass, "judge.pass of '\(id)'") { throw r.error(p, problem) }
            }
            s.judge = JudgeSpec(model: model, rubric: rubric, pass: pass)
        }
    }

    /// A schema kept in a file beside the workflow (JSON or YAML), read through `files`.
    static func schemaFile(_ path: String, node: Node, _ r: YAMLReader, files: WorkflowFiles?, id: String) throws -> JSONValue {
        let lower = path.lowercased()
        guard lower.hasSuffix(".json") || lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") else {
            throw r.error(node, "schema of '\(id)' is neither JSON nor a .json/.yaml file name: '\(path.prefix(80))'")
        }
        guard let files else {
            throw r.error(node, "schema of '\(id)' names the file '\(path)', which was not sent with the workflow: submit it with `agentflow submit`, which sends it")
        }
        guard let text = files.read(path) else {
            throw r.error(node, "schema of '\(id)': cannot read '\(path)' (relative to the workflow file)")
        }
        let fileReader = YAMLReader(file: path)
        return try json(try fileReader.compose(text), fileReader, "the schema")
    }

    // MARK: - Fan-out

    /// The items of a subtask's `foreach`: a list written in place, or a placeholder naming a
    /// list parameter (`"{{ docs }}"`). Nil without `foreach`.
    static func foreachItems(_ m: Node.Mapping, id: String, _ r: YAMLReader, scope: TemplateScope) throws -> [JSONValue]? {
        guard let n = m["foreach"] else { return nil }
        var value: JSONValue
        if let text = n.scalar?.string, n.tag.rawValue == Tag.Name.str.rawValue {
            do {
                guard let whole = try Template.wholeValue(text, scope: scope) else {
                    throw r.error(n, "foreach of '\(id)' must be a list or one placeholder naming a list parameter, like \"{{ docs }}\"")
                }
                value = whole
            } catch let e as TemplateError {
                throw templateError(e, text: text, node: n, r, what: "foreach of '\(id)'")
            }
        } else {
            value = try json(n, r, "foreach of '\(id)'")
        }
        guard case .array(let items) = value else {
            throw r.error(n, "foreach of '\(id)' must give a list, got \(value.typeName) \(Template.excerpt(value))")
        }
        if items.count > Limits.maxForeachItems {
            throw r.error(n, "foreach of '\(id)' gives \(items.count) items; at most \(Limits.maxForeachItems) are accepted")
        }
        return items
    }
}

/// Text files a workflow refers to (a `schema:` kept in a file), by path relative to the
/// workflow file. The CLI reads them from disk and sends them with the submission; a
/// coordinator reads them from the submission only.
public final class WorkflowFiles: @unchecked Sendable {
    private let reader: (String) -> String?
    /// Every file read, by the path the workflow gave (what a submission must carry).
    public private(set) var contents: [String: String] = [:]

    public init(_ reader: @escaping (String) -> String?) { self.reader = reader }

    /// Files under `directory` (the workflow file's), refusing paths that leave it.
    public static func directory(_ directory: String) -> WorkflowFiles {
        WorkflowFiles { path in
            guard let relative = WorkspacePath.normalized(path) else { return nil }
            let url = URL(fileURLWithPath: directory).appendingPathComponent(relative)
            guard let data = FileManager.default.contents(atPath: url.path), data.count <= YAMLReader.maxBytes else { return nil }
            return String(data: data, encoding: .utf8)
        }
    }

    /// Files given in a submission.
    public static func given(_ files: [String: String]) -> WorkflowFiles {
        WorkflowFiles { files[$0] }
    }

    func read(_ path: String) -> String? {
        if let seen = contents[path] { return seen }
        let text = reader(path)
        if let text { contents[path] = text }
        return text
    }
}
