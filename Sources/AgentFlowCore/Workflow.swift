import Foundation

/// How a subtask's result is checked. Exit status 0 means success; it runs in the attempt's workspace.
public enum Verifier: Codable, Sendable, Equatable {
    /// A Python snippet, run with `python3` in the workspace (the attempt's code is `solution.py`).
    case python(String)
    /// A shell command, run with `/bin/sh -c` in the workspace.
    case command(String)
}

/// Prior or learned behaviour of one (subtask, model) pair: success probability, output tokens,
/// latency in seconds. The workflow's priors and what the planner plans with.
public struct Estimate: Codable, Sendable, Equatable {
    public var success: Double
    public var tokens: Double
    public var seconds: Double

    public init(success: Double, tokens: Double, seconds: Double) {
        self.success = success
        self.tokens = tokens
        self.seconds = seconds
    }
}

/// A budget in tokens, US dollars, or both. `nil` means no limit on that axis.
public struct Budget: Codable, Sendable, Equatable {
    public var tokens: Int?
    public var usd: Double?

    public init(tokens: Int? = nil, usd: Double? = nil) {
        self.tokens = tokens
        self.usd = usd
    }
}

/// One node of a workflow DAG: agent work with a verifier.
public struct Subtask: Codable, Sendable, Equatable {
    public var id: String
    public var prompt: String
    public var needs: [String]
    public var verify: Verifier?
    public var estimates: [String: Estimate]
    /// Token cap of one attempt (all roles). Default: derived from estimates.
    public var maxTokens: Int?
    /// Most attempts before the subtask, and so the job, fails. `nil`: limited by budget and deadline only.
    public var maxAttempts: Int?
    /// 1-based line of the subtask in its file, for messages.
    public var line: Int?
    /// What it produces (`kind:`); `code` by default.
    public var kind: SubtaskKind = .code
    /// What the agent may run (`actions:`); `[python]` by default.
    public var actions: [AgentAction] = [.python]
    /// The JSON Schema of a `json` subtask's answer.
    public var schema: JSONSchema?
    /// Glob patterns of the files kept on success (`outputs:`); nil: the kind's default.
    public var outputs: [String]?
    /// The input whose tree the workspace starts as (`workspace: {from: NAME}`).
    public var workspaceFrom: String?
    /// An LLM judge that must also pass the result (`judge:`).
    public var judge: JudgeSpec?
    /// For an expansion `ID[i]` of a `foreach` subtask: `ID`, and the item it was made for.
    public var expandedFrom: String?
    public var item: JSONValue?
    /// What the subtask asks of its attempts' sandbox: lower limits than the worker's, or its
    /// GPUs (`sandbox: {gpu: true}`).
    public var sandbox: SandboxSpec?

    public init(
        id: String, prompt: String, needs: [String] = [], verify: Verifier? = nil,
        estimates: [String: Estimate] = [:], maxTokens: Int? = nil, maxAttempts: Int? = nil, line: Int? = nil,
        kind: SubtaskKind = .code, actions: [AgentAction] = [.python], schema: JSONSchema? = nil, outputs: [String]? = nil,
        workspaceFrom: String? = nil, judge: JudgeSpec? = nil
    ) {
        self.id = id
        self.prompt = prompt
        self.needs = needs
        self.verify = verify
        self.estimates = estimates
        self.maxTokens = maxTokens
        self.maxAttempts = maxAttempts
        self.line = line
        self.kind = kind
        self.actions = actions
        self.schema = schema
        self.outputs = outputs
        self.workspaceFrom = workspaceFrom
        self.judge = judge
    }
}

/// A DAG of subtasks with default budget and deadline (DESIGN.md §3).
public struct Workflow: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    /// Candidate models; `nil` means every model in the cluster.
    public var models: [String]?
    public var budget: Budget
    /// Relative deadline in seconds from submission.
    public var deadline: Double?
    public var scaffold: ScaffoldOptions?
    public var subtasks: [Subtask]
    /// Parameter values after `-p` overrides (`params:`), as substituted.
    public var params: [String: JSONValue] = [:]
    /// Files and directories handed to every attempt (`inputs:`).
    public var inputs: [WorkflowInput] = []

    public init(
        name: String, description: String = "", models: [String]? = nil, budget: Budget = Budget(),
        deadline: Double? = nil, scaffold: ScaffoldOptions? = nil, subtasks: [Subtask],
        params: [String: JSONValue] = [:], inputs: [WorkflowInput] = []
    ) {
        self.params = params
        self.inputs = inputs
        self.name = name
        self.description = description
        self.models = models
        self.budget = budget
        self.deadline = deadline
        self.scaffold = scaffold
        self.subtasks = subtasks
    }

    public func subtask(_ id: String) -> Subtask? { subtasks.first { $0.id == id } }

    /// Subtask ids in an order where every subtask comes after its `needs`.
    public var topologicalOrder: [String] {
        var order: [String] = []
        var done = Set<String>()
        var remaining = subtasks
        while !remaining.isEmpty {
            let ready = remaining.filter { $0.needs.allSatisfy(done.contains) }
            if ready.isEmpty { break }
            for s in ready {
                order.append(s.id)
                done.insert(s.id)
            }
            remaining.removeAll { done.contains($0.id) }
        }
        return order
    }
}
