import Foundation
import Yams

extension Workflow {
    /// Parses and validates a workflow (DESIGN.md §3). `knownModels` (the cluster's) is used to
    /// reject unknown model names; pass `nil` to skip that check.
    ///
    /// ```swift
    /// let wf = try Workflow.parse(yaml: text, file: "workflows/chain.yaml", knownModels: ["smollm2-135m"])
    /// ```
    ///
    /// `params` overrides the workflow's parameter defaults (`-p name=value`). `files` reads
    /// the text files the workflow refers to (a schema file); without it such a reference is an
    /// error. `text` may also be a ``Submission`` (JSON with the workflow, its parameters, packed
    /// inputs and files), as the CLI sends one: its own parameters and files are used then.
    public static func parse(yaml text: String, file: String, knownModels: Set<String>?, params: [String: JSONValue] = [:],
                             files: WorkflowFiles? = nil) throws -> Workflow {
        if let submission = try Submission.read(text, file: file) {
            let wf = try parseDocument(submission.workflow, file: file, knownModels: knownModels, params: submission.params,
                                       packed: submission.inputs, files: WorkflowFiles.given(submission.files))
            try requirePacked(wf, file: file)
            return wf
        }
        let wf = try parseDocument(text, file: file, knownModels: knownModels, params: params, packed: [:], files: files)
        // Without a way to read the submitter's disk (a coordinator, the HTTP API), inputs must
        // have come packed.
        if files == nil { try requirePacked(wf, file: file) }
        return wf
    }

    static func parseDocument(_ text: String, file: String, knownModels: Set<String>?, params: [String: JSONValue],
                              packed: [String: Blob], files: WorkflowFiles?) throws -> Workflow {
        let r = YAMLReader(file: file)
        let root = try r.compose(text)
        let m = try r.mapping(root, "a workflow")
        try r.checkKeys(m, allowed: ["name", "description", "models", "budget", "deadline", "subtasks", "scaffold", "params", "inputs"], in: "the workflow")
        let scope = TemplateScope(params: try parseParams(m["params"], r, overrides: params))
        let inputs = try parseInputs(m["inputs"], r, scope: scope, packed: packed)
        let inputNames = Set(inputs.map(\.name))

        guard let nameNode = m["name"] else { throw r.error(root, "missing 'name'") }
        let name = try r.string(nameNode, "name")
        if name.isEmpty { throw r.error(nameNode, "'name' is empty") }
        let description = try m["description"].map { try r.string($0, "description") } ?? ""

        var models: [String]?
        if let node = m["models"] {
            let list = try r.strings(node, "models")
            if list.isEmpty { throw r.error(node, "'models' is empty: name at least one model or leave it out") }
            if let known = knownModels {
                for (i, model) in list.enumerated() where !known.contains(model) {
                    throw r.error(node.sequence?[i] ?? node, "unknown model '\(model)' (the cluster has: \(known.sorted().joined(separator: ", ")))")
                }
            }
            models = list
        }

        let budget = try m["budget"].map { try parseBudget($0, r) } ?? Budget()
        let deadline = try m["deadline"].map { try r.duration($0, "the deadline", in: Limits.spanRange).seconds }
        let scaffold = try m["scaffold"].map { try parseScaffold($0, r) }

        guard let subtasksNode = m["subtasks"] else { throw r.error(root, "missing 'subtasks': a workflow needs at least one") }
        let seq = try r.sequence(subtasksNode, "subtasks")
        if seq.isEmpty { throw r.error(subtasksNode, "the workflow is empty: 'subtasks' has no entries") }

        var subtasks: [Subtask] = []
        // The YAML node each (expanded) subtask came from, for messages.
        var nodes: [Node] = []
        var seen: [String: Int] = [:]
        // A fanned-out id and its expansions: `needs: [extract]` means all of them.
        var fanOut: [String: [String]] = [:]
        let candidateModels = models.map(Set.init) ?? knownModels
        for node in seq {
            let expanded = try parseSubtasks(node, r, knownModels: candidateModels, scope: scope, inputs: inputNames, files: files,
                                             clusterModels: knownModels)
            if let base = expanded.base {
                if let first = seen[base] { throw r.error(node, "duplicate subtask id '\(base)' (first defined on line \(first))") }
                seen[base] = node.mark?.line ?? 0
                fanOut[base] = expanded.subtasks.map(\.id)
            }
            for s in expanded.subtasks {
                if let first = seen[s.id] {
                    throw r.error(node, "duplicate subtask id '\(s.id)' (first defined on line \(first))")
                }
                seen[s.id] = s.line ?? 0
                subtasks.append(s)
                nodes.append(node)
            }
            if subtasks.count > Limits.maxExpandedSubtasks {
                throw r.error(node, "more than \(Limits.maxExpandedSubtasks) subtasks after foreach expansion")
            }
        }
        if subtasks.isEmpty { throw r.error(subtasksNode, "the workflow is empty: every foreach has an empty list") }

        // needs must name subtasks of this workflow
        for (i, s) in subtasks.enumerated() {
            for need in s.needs where seen[need] == nil {
                let needsNode = nodes[i].mapping?["needs"]
                throw r.error(needsNode ?? nodes[i], "subtask '\(s.id)' needs unknown subtask '\(need)'")
            }
            var listed: Set<String> = []
            for need in s.needs where !listed.insert(need).inserted {
                let needsNode = nodes[i].mapping?["needs"]
                throw r.error(needsNode ?? nodes[i], "subtask '\(s.id)' lists '\(need)' twice in its needs")
            }
            if s.needs.contains(s.id) || (s.expandedFrom.map { s.needs.contains($0) } ?? false) {
                throw r.error(nodes[i], "subtask '\(s.id)' needs itself (cycle: \(s.id) -> \(s.id))")
            }
            subtasks[i].needs = s.needs.flatMap { fanOut[$0] ?? [$0] }
        }
        var wf = Workflow(name: name, description: description, models: models, budget: budget, deadline: deadline, scaffold: scaffold, subtasks: subtasks)
        wf.params = scope.params
        wf.inputs = inputs
        if let cycle = wf.findCycle() {
            let line = subtasks.first { $0.id == cycle[0] }?.line
            throw ConfigError(file: file, line: line, "the subtasks form a cycle: \(cycle.joined(separator: " -> "))")
        }
        return wf
    }

    /// Loads a workflow file from disk; files it refers to are read beside it.
    public static func load(path: String, knownModels: Set<String>?, params: [String: JSONValue] = [:]) throws -> Workflow {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, "cannot read the file (does it exist?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, "the file is not UTF-8 text")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(yaml: text, file: path, knownModels: knownModels, params: params, files: .directory(directory))
    }

    /// A cycle through `needs` as a path that starts and ends at the same subtask, or `nil`.
    public func findCycle() -> [String]? {
        let needs = Dictionary(subtasks.map { ($0.id, $0.needs) }, uniquingKeysWith: { a, _ in a })
        var state: [String: Int] = [:]  // 1 = on the stack, 2 = finished
        var stack: [String] = []
        func visit(_ id: String) -> [String]? {
            state[id] = 1
            stack.append(id)
            for next in needs[id] ?? [] {
                if state[next] == 1 {
                    let start = stack.firstIndex(of: next)!
                    // Edges point from a subtask to what it needs; print in dependency order.
                    return Array((stack[start...] + [next]).reversed())
                }
                if state[next] == nil, let cycle = visit(next) { return cycle }
            }
            stack.removeLast()
            state[id] = 2
            return nil
        }
        for s in subtasks where state[s.id] == nil {
            if let cycle = visit(s.id) { return cycle }
        }
        return nil
    }

    static func parseBudget(_ node: Node, _ r: YAMLReader) throws -> Budget {
        let m = try r.mapping(node, "budget")
        try r.checkKeys(m, allowed: ["tokens", "usd"], in: "budget")
        var b = Budget()
        if let t = m["tokens"] {
            let v = try r.int(t, "budget.tokens")
            if v <= 0 { throw r.error(t, "budget.tokens must be positive, got \(v)") }
            if let problem = Limits.budgetTokens(v) { throw r.error(t, "budget.tokens: \(problem)") }
            b.tokens = v
        }
        if let u = m["usd"] {
            let v = try r.double(u, "budget.usd")
            if v <= 0 { throw r.error(u, "budget.usd must be positive, got \(v)") }
            if let problem = Limits.budgetUSD(v) { throw r.error(u, "budget.usd: \(problem)") }
            b.usd = v
        }
        return b
    }

    static func parseScaffold(_ node: Node, _ r: YAMLReader) throws -> ScaffoldOptions {
        let m = try r.mapping(node, "scaffold")
        try r.checkKeys(m, allowed: ["summarizer", "corrector", "maxTurns"], in: "scaffold")
        var o = ScaffoldOptions()
        if let n = m["summarizer"] { o.summarizer = try r.bool(n, "scaffold.summarizer") }
        if let n = m["corrector"] { o.corrector = try r.bool(n, "scaffold.corrector") }
        if let n = m["maxTurns"] {
            o.maxTurns = try r.int(n, "scaffold.maxTurns")
            if o.maxTurns < 1 { throw r.error(n, "scaffold.maxTurns must be at least 1") }
            if let problem = Limits.count(o.maxTurns, 1...Limits.maxTurns, "scaffold.maxTurns") { throw r.error(n, problem) }
        }
        return o
    }

    /// One subtask entry: one subtask, or with `foreach` one per item (`ID[0]`, `ID[1]`, …,
    /// `base` set to `ID`), each with `{{ item }}` bound.
    static func parseSubtasks(_ node: Node, _ r: YAMLReader, knownModels: Set<String>?, scope: TemplateScope, inputs: Set<String>,
                              files: WorkflowFiles?, clusterModels: Set<String>?) throws -> (base: String?, subtasks: [Subtask]) {
        let m = try r.mapping(node, "a subtask")
        guard let items = try foreachItems(m, id: m["id"]?.scalar?.string ?? "?", r, scope: scope) else {
            return (nil, [try parseSubtask(node, r, knownModels: knownModels, scope: scope, inputs: inputs, files: files, clusterModels: clusterModels)])
        }
        var expanded: [Subtask] = []
        for (i, item) in items.enumerated() {
            var itemScope = scope
            itemScope.item = item
            var s = try parseSubtask(node, r, knownModels: knownModels, scope: itemScope, inputs: inputs, files: files, clusterModels: clusterModels)
            s.expandedFrom = s.id
            s.item = item
            s.id = "\(s.id)[\(i)]"
            expanded.append(s)
        }
        let base = try r.string(m["id"] ?? node, "id")
        return (base, expanded)
    }

    static func parseSubtask(_ node: Node, _ r: YAMLReader, knownModels: Set<String>?, scope: TemplateScope = TemplateScope(params: [:]),
                             inputs: Set<String> = [], files: WorkflowFiles? = nil, clusterModels: Set<String>? = nil) throws -> Subtask {
        let m = try r.mapping(node, "a subtask")
        try r.checkKeys(m, allowed: Set(["id", "prompt", "needs", "verify", "estimates", "maxTokens", "maxAttempts", "sandbox"]).union(agentSubtaskKeys), in: "a subtask")
        guard let idNode = m["id"] else { throw r.error(node, "a subtask is missing 'id'") }
        let id = try r.string(idNode, "id")
        if id.isEmpty || id.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }) {
            throw r.error(idNode, "subtask id '\(id)' must be non-empty and use only letters, digits, '_', '-' and '.'")
        }
        guard let promptNode = m["prompt"] else { throw r.error(node, "subtask '\(id)' is missing 'prompt'") }
        let prompt = try render(try r.string(promptNode, "prompt of '\(id)'"), node: promptNode, r, scope: scope, what: "prompt of '\(id)'")
        let needs = try m["needs"].map { try r.strings($0, "needs of '\(id)'") } ?? []
        var verify: Verifier?
        if let v = m["verify"] {
            let vm = try r.mapping(v, "verify of '\(id)'")
            try r.checkKeys(vm, allowed: ["python", "command"], in: "verify of '\(id)'")
            if let p = vm["python"] { verify = .python(try render(try r.string(p, "verify.python"), node: p, r, scope: scope, what: "verify.python of '\(id)'")) }
            else if let c = vm["command"] { verify = .command(try render(try r.string(c, "verify.command"), node: c, r, scope: scope, what: "verify.command of '\(id)'")) }
            else { throw r.error(v, "verify of '\(id)' needs 'python' or 'command'") }
        }
        var estimates: [String: Estimate] = [:]
        if let e = m["estimates"] {
            for (key, value) in try r.mapping(e, "estimates of '\(id)'") {
                let model = try r.string(key, "a model name")
                if let known = knownModels, !known.contains(model) {
                    throw r.error(key, "unknown model '\(model)' in estimates of '\(id)' (candidates: \(known.sorted().joined(separator: ", ")))")
                }
                let em = try r.mapping(value, "estimates of '\(id)' for '\(model)'")
                try r.checkKeys(em, allowed: ["success", "tokens", "seconds"], in: "estimates of '\(id)' for '\(model)'")
                let success = try em["success"].map { try r.double($0, "success") } ?? 0.5
                if !(0...1).contains(success) { throw r.error(em["success"], "success of '\(id)' on '\(model)' must be in [0, 1], got \(success)") }
                let tokens = try em["tokens"].map { try r.double($0, "tokens") } ?? 500
                if tokens <= 0 { throw r.error(em["tokens"], "tokens of '\(id)' on '\(model)' must be positive") }
                if tokens > Double(Limits.maxAttemptTokens) {
                    throw r.error(em["tokens"], "tokens of '\(id)' on '\(model)' must be at most \(Limits.maxAttemptTokens), got \(tokens)")
                }
                let seconds = try em["seconds"].map { try r.double($0, "seconds") } ?? 5
                if seconds < 0 { throw r.error(em["seconds"], "seconds of '\(id)' on '\(model)' must not be negative") }
                if let problem = Limits.number(seconds, 0...Limits.maxSeconds, "seconds of '\(id)' on '\(model)'") { throw r.error(em["seconds"], problem) }
                estimates[model] = Estimate(success: success, tokens: tokens, seconds: seconds)
            }
        }
        var maxTokens: Int?
        if let n = m["maxTokens"] {
            let v = try r.int(n, "maxTokens of '\(id)'")
            if v <= 0 { throw r.error(n, "maxTokens of '\(id)' must be positive, got \(v)") }
            if let problem = Limits.attemptTokens(v, "maxTokens of '\(id)'") { throw r.error(n, problem) }
            maxTokens = v
        }
        var maxAttempts: Int?
        if let n = m["maxAttempts"] {
            let v = try r.int(n, "maxAttempts of '\(id)'")
            if v <= 0 { throw r.error(n, "maxAttempts of '\(id)' must be positive, got \(v)") }
            if let problem = Limits.count(v, 1...Limits.maxAttempts, "maxAttempts of '\(id)'") { throw r.error(n, problem) }
            maxAttempts = v
        }
        var subtask = Subtask(id: id, prompt: prompt, needs: needs, verify: verify, estimates: estimates,
                              maxTokens: maxTokens, maxAttempts: maxAttempts, line: node.mark?.line)
        // A judge may be any of the cluster's models, not only the workflow's candidates.
        try parseAgentKeys(m, into: &subtask, r, scope: scope, knownModels: clusterModels, inputs: inputs, files: files)
        subtask.sandbox = try m["sandbox"].map { try SandboxSpec.parse($0, r, subtask: true) }
        return subtask
    }
}
