import AgentFlowCore
import Foundation

/// A worker that a job could use but that cannot take its attempts now: its circuit breaker has
/// suspended it (its model server keeps failing) or it is dead.
public struct UnavailableWorker: Sendable, Equatable {
    public var name: String
    /// "suspended" or "dead".
    public var state: String
    /// The last failure of its model server, in the worker's words; empty when unknown.
    public var problem: String

    public init(name: String, state: String, problem: String) {
        self.name = name
        self.state = state
        self.problem = problem
    }
}

/// Short readings of what the model servers say, for people.
public enum BackendProblem {
    /// "model server refuses connections" for curl's "Couldn't connect to server", and the like;
    /// the problem itself (shortened) when it is none of the known kinds.
    public static func summary(_ problem: String) -> String {
        let p = problem.lowercased()
        if p.contains(refusedKey) { return refusedKey }
        if p.contains("couldn't connect") || p.contains("connection refused") { return "model server refuses connections" }
        if p.contains("empty reply") || p.contains("returned nothing") || p.contains("recv failure") || p.contains("connection reset") || p.contains("before [done]") {
            return "model server drops connections"
        }
        if let range = problem.range(of: #"HTTP 5\d\d"#, options: .regularExpression) {
            return "model server answers \(problem[range])"
        }
        if p.contains("timed out") || p.contains("timeout") { return "model server does not answer in time" }
        let flat = problem.split(whereSeparator: \.isNewline).joined(separator: " ")
        return flat.count > 100 ? String(flat.prefix(97)) + "..." : flat
    }

    /// What the LLM client says, and what people and the `cause` label read, when a backend
    /// answers 401 or 403: the key (or its absence) was not accepted.
    public static let refusedKey = "the backend refused the key"

    /// What kind of failure a model server's problem is, for metrics and alerts.
    public enum Kind: Sendable, Equatable {
        /// It refuses or drops connections, or does not answer in time: the server is down.
        case unreachable
        /// HTTP 401/403: ``refusedKey``.
        case refusedKey
        /// Anything else (5xx, malformed replies, ...).
        case other
    }

    public static func kind(_ problem: String) -> Kind {
        switch summary(problem) {
        case refusedKey: return .refusedKey
        case "model server refuses connections", "model server drops connections", "model server does not answer in time": return .unreachable
        default: return .other
        }
    }

    /// "gpu0, gpu1 suspended — model server refuses connections": workers grouped by state and
    /// problem, in the order given.
    public static func describe(_ workers: [UnavailableWorker]) -> String {
        var groups: [(key: String, names: [String])] = []
        for w in workers {
            let why = w.problem.isEmpty ? "" : " — " + summary(w.problem)
            let key = w.state + why
            if let i = groups.firstIndex(where: { $0.key == key }) {
                groups[i].names.append(w.name)
            } else {
                groups.append((key, [w.name]))
            }
        }
        return groups.map { $0.names.joined(separator: ", ") + " " + $0.key }.joined(separator: "; ")
    }
}

extension JobReport {
    /// One line of a job's progress, for `agentflow run`: subtasks passed, then either how many
    /// run or — when no worker the job could use can take attempts — what it waits for; tokens
    /// spent and reserved.
    public var progressLine: String {
        let done = subtasks.filter { $0.state == .succeeded }.count
        let running = subtasks.filter { $0.state == .running }.count
        let activity = waiting.isEmpty ? "\(running) running" : "waiting: \(waiting)"
        return "  \(formatDuration(elapsedSeconds)): \(done)/\(subtasks.count) subtasks passed, \(activity), spent \(budget.spentTokens) tokens "
            + String(format: "$%.6f", budget.spentUSD) + ", reserved \(budget.reservedTokens)"
    }
}
