import Foundation
import Yams

extension Workflow {
    /// Parses and validates a workflow (DESIGN.md §3). `knownModels` (the cluster's) is used to
    /// reject unknown model names; pass `nil` to skip that check.
    ///
    /// ```swift
    /// let wf = try Workflow.parse(yaml: text, file: "workflows/chain.yaml", knownModels: ["smollm2-135m"])
    /// ```
    public static func parse(yaml text: String, file: String, knownModels: Set<String>?) throws -> Workflow {
        let r = YAMLReader(file: file)
        let root = try r.compose(text)
        let m = try r.mapping(root, "a workflow")
        try r.checkKeys(m, allowed: ["name", "description", "models", "budget", "deadline", "subtasks", "scaffold"], in: "the workflow")

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
        let deadline = try m["deadline"].map { try r.duration($0, "deadline") }
        if let d = deadline, let problem = Limits.seconds(d, "the deadline") { throw r.error(m["deadline"], problem) }
        let scaffold = try m["scaffold"].map { try parseScaffold($0, r) }

        guard let subtasksNode = m["subtasks"] else { throw r.error(root, "missing 'subtasks': a workflow needs at least one") }
        let seq = try r.sequence(subtasksNode, "subtasks")
        if seq.isEmpty { throw r.error(subtasksNode, "the workflow is empty: 'subtasks' has no entries") }

        var subtasks: [Subtask] = []
        var seen: [String: Int] = [:]
        let candidateModels = models.map(Set.init) ?? knownModels
        for node in seq {
            let s = try parseSubtask(node, r, knownModels: candidateModels)
            if let first = seen[s.id] {
                throw r.error(node, "duplicate subtask id '\(s.id)' (first defined on line \(first))")
            }
            seen[s.id] = s.line ?? 0
            subtasks.append(s)
        }

        // needs must name subtasks of this workflow
        for (i, s) in subtasks.enumerated() {
            for need in s.needs where seen[need] == nil {
                let needsNode = seq[i].mapping?["needs"]
                throw r.error(needsNode ?? seq[i], "subtask '\(s.id)' needs unknown subtask '\(need)'")
            }
            var listed: Set<String> = []
            for need in s.needs where !listed.insert(need).inserted {
                let needsNode = seq[i].mapping?["needs"]
                throw r.error(needsNode ?? seq[i], "subtask '\(s.id)' lists '\(need)' twice in its needs")
            }
            if s.needs.contains(s.id) {
                throw r.error(seq[i], "subtask '\(s.id)' needs itself (cycle: \(s.id) -> \(s.id))")
            }
        }
        let wf = Workflow(name: name, description: description, models: models, budget: budget, deadline: deadline, scaffold: scaffold, subtasks: subtasks)
        if let cycle = wf.findCycle() {
            let line = subtasks.first { $0.id == cycle[0] }?.line
            throw ConfigError(file: file, line: line, "the subtasks form a cycle: \(cycle.joined(separator: " -> "))")
        }
        return wf
    }

    /// Loads a workflow file from disk.
    public static func load(path: String, knownModels: Set<String>?) throws -> Workflow {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, "cannot read the file (does it exist?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, "the file is not UTF-8 text")
        }
        return try parse(yaml: text, file: path, knownModels: knownModels)
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

    static func parseSubtask(_ node: Node, _ r: YAMLReader, knownModels: Set<String>?) throws -> Subtask {
        let m = try r.mapping(node, "a subtask")
        try r.checkKeys(m, allowed: ["id", "prompt", "needs", "verify", "estimates", "maxTokens", "maxAttempts"], in: "a subtask")
        guard let idNode = m["id"] else { throw r.error(node, "a subtask is missing 'id'") }
        let id = try r.string(idNode, "id")
        if id.isEmpty || id.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }) {
            throw r.error(idNode, "subtask id '\(id)' must be non-empty and use only letters, digits, '_', '-' and '.'")
        }
        guard let promptNode = m["prompt"] else { throw r.error(node, "subtask '\(id)' is missing 'prompt'") }
        let prompt = try r.string(promptNode, "prompt of '\(id)'")
        let needs = try m["needs"].map { try r.strings($0, "needs of '\(id)'") } ?? []
        var verify: Verifier?
        if let v = m["verify"] {
            let vm = try r.mapping(v, "verify of '\(id)'")
            try r.checkKeys(vm, allowed: ["python", "command"], in: "verify of '\(id)'")
            if let p = vm["python"] { verify = .python(try r.string(p, "verify.python")) }
            else if let c = vm["command"] { verify = .command(try r.string(c, "verify.command")) }
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
        return Subtask(id: id, prompt: prompt, needs: needs, verify: verify, estimates: estimates,
                       maxTokens: maxTokens, maxAttempts: maxAttempts, line: node.mark?.line)
    }
}
