import AgentFlowCore
import Coordinator
import ArgumentParser
import Foundation
import Planner

/// `agentflow plan WF.yaml`: MCPP's estimated completion probability for a budget and deadline,
/// and the frontier (the smallest budget that reaches 50/90/99% at a few deadlines), before
/// anything is spent. Runs locally; no coordinator needed.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Estimated completion probability of a workflow, and the budget/deadline frontier.")

    @Argument(help: "The workflow file.")
    var workflow: String

    @Option(name: .long, help: "Cluster file (models, prices, worker slots).")
    var cluster: String = "cluster.yaml"

    @Option(name: .long, help: "Token budget (overrides the workflow's).")
    var budgetTokens: Int?

    @Option(name: .long, help: "USD budget (overrides the workflow's).")
    var budgetUsd: Double?

    @Option(name: .long, help: "Deadline, e.g. 90s, 5m, 1h (overrides the workflow's).")
    var deadline: String?

    @Option(name: .long, help: "Seed of the simulations.")
    var seed: UInt64 = 1

    @Flag(help: "Print one JSON object.")
    var json = false

    @OptionGroup var parameters: WorkflowParameters

    func validate() throws {
        if let t = budgetTokens, t <= 0 { throw ValidationError("--budget-tokens must be positive, got \(t)") }
        if let u = budgetUsd, !(u > 0) { throw ValidationError("--budget-usd must be positive, got \(u)") }
        if let d = deadline, parseDuration(d) == nil { throw ValidationError("bad --deadline '\(d)': expected e.g. 90s, 5m, 1h") }
    }

    /// Budget on the axis the user limits (USD first), as the planner's state wants it.
    enum Axis { case usd, tokens }

    func run() throws {
        let clusterSpec = try Cluster.load(path: cluster)
        let wf = try loadWorkflow(workflow, cluster: clusterSpec, parameters: parameters, pack: false).workflow
        // The planner's horizon, in seconds (its arithmetic is in seconds).
        guard let horizon = deadline.flatMap(parseDuration)?.seconds ?? wf.deadline else {
            throw ValidationError("no deadline: give --deadline or set `deadline:` in \(workflow)")
        }
        let tokens = budgetTokens ?? wf.budget.tokens
        let usd = budgetUsd ?? wf.budget.usd
        let models = (wf.models ?? clusterSpec.models.map(\.name)).compactMap { clusterSpec.model($0) }
        let base = Self.state(wf, models: models, cluster: clusterSpec, tokens: tokens, usd: usd, seconds: horizon)
        let planner = MCPPPlanner(seed: seed)
        let probability = planner.completionProbability(base) ?? 0

        let axis: Axis = usd != nil || tokens == nil ? .usd : .tokens
        let targets = [0.5, 0.9, 0.99]
        let deadlines = [0.5, 1, 2].map { $0 * horizon }
        // Scale of the search: the given budget, else every node's cap once on its dearest model.
        let scale: Double = axis == .usd
            ? (usd ?? base.nodes.reduce(0) { sum, n in sum + (models.map { $0.worstCaseUSD(tokens: n.tokenCap) }.max() ?? 0) })
            : Double(tokens ?? base.nodes.reduce(0) { $0 + $1.tokenCap })
        func p(budget: Double, seconds: Double) -> Double {
            var s = base
            s.remainingSeconds = seconds
            switch axis {
            case .usd: s.remainingUSD = budget; s.remainingTokens = nil
            case .tokens: s.remainingTokens = Int(budget.rounded(.down)); s.remainingUSD = nil
            }
            return planner.completionProbability(s) ?? 0
        }
        var frontier: [(deadline: Double, budgets: [Double?])] = []
        for d in deadlines {
            var budgets: [Double?] = []
            for target in targets {
                var hi = max(scale, 1e-9)
                var reached = false
                for _ in 0..<12 {
                    if p(budget: hi, seconds: d) >= target { reached = true; break }
                    hi *= 2
                }
                guard reached else { budgets.append(nil); continue }
                var lo = 0.0
                for _ in 0..<12 {
                    let mid = (lo + hi) / 2
                    if p(budget: mid, seconds: d) >= target { hi = mid } else { lo = mid }
                }
                budgets.append(hi)
            }
            frontier.append((d, budgets))
        }
        // The estimates are Monte Carlo; make the table respect what must hold: a higher target
        // never needs less, a later deadline never needs more.
        for i in frontier.indices {
            for j in frontier[i].budgets.indices.dropFirst() {
                if let a = frontier[i].budgets[j - 1], let b = frontier[i].budgets[j], b < a { frontier[i].budgets[j] = a }
            }
            if i > 0 {
                for j in frontier[i].budgets.indices {
                    if let a = frontier[i - 1].budgets[j], (frontier[i].budgets[j] ?? .infinity) > a { frontier[i].budgets[j] = a }
                }
            }
        }
        print(json ? renderJSON(wf, probability, tokens, usd, horizon, axis, targets, frontier)
                   : renderText(wf, probability, tokens, usd, horizon, axis, targets, frontier))
    }

    /// The planner's view of a workflow before it starts: the same nodes as a job's
    /// (`workflowPlanNodes(_:models:)`), with the cluster's slots per model.
    static func state(_ wf: Workflow, models: [ModelSpec], cluster: Cluster, tokens: Int?, usd: Double?, seconds: Double) -> PlanState {
        // Judged subtasks count their judge (priced at the judge's model where USD is the axis).
        let nodes = workflowPlanNodes(wf, models: models, judges: cluster.models, usd: usd != nil || tokens == nil)
        let planModels = models.map { m in
            let slots = cluster.workers.filter { $0.model == m.name }.reduce(0) { $0 + $1.slots }
            return PlanModel(name: m.name, priceInput: m.priceInput, priceOutput: m.priceOutput,
                             freeSlots: slots > 0 ? slots : nil, totalSlots: slots > 0 ? slots : nil)
        }
        return PlanState(nodes: nodes, models: planModels, done: [], inFlight: [:], remainingTokens: tokens,
                         remainingUSD: usd, remainingSeconds: seconds)
    }

    func money(_ x: Double?, _ axis: Axis) -> String {
        guard let x else { return "—" }
        return axis == .usd ? String(format: "$%.4g", x) : "\(Int(x.rounded(.up))) tok"
    }

    func renderText(_ wf: Workflow, _ p: Double, _ tokens: Int?, _ usd: Double?, _ horizon: Double, _ axis: Axis,
                    _ targets: [Double], _ frontier: [(deadline: Double, budgets: [Double?])]) -> String {
        var budget: [String] = []
        if let tokens { budget.append("\(tokens) tokens") }
        if let usd { budget.append(String(format: "$%.4g", usd)) }
        var lines = [
            "\(wf.name): \(wf.subtasks.count) subtasks",
            "budget \(budget.isEmpty ? "unlimited" : budget.joined(separator: " and ")), deadline \(formatDuration(horizon)): "
                + String(format: "estimated completion probability %.2f", p),
            "",
            "smallest \(axis == .usd ? "USD" : "token") budget for a completion probability of (MCPP, M = 64):",
            "deadline".padding(toLength: 10, withPad: " ", startingAt: 0)
                + targets.map { "\(Int($0 * 100))%".padding(toLength: 14, withPad: " ", startingAt: 0) }.joined(),
        ]
        for row in frontier {
            lines.append(formatDuration(row.deadline).padding(toLength: 10, withPad: " ", startingAt: 0)
                + row.budgets.map { money($0, axis).padding(toLength: 14, withPad: " ", startingAt: 0) }.joined())
        }
        if wf.subtasks.contains(where: { $0.expandedFrom != nil }) || !wf.params.isEmpty || !wf.inputs.isEmpty {
            lines += ["", describeAgentWork(wf)]
        }
        return lines.joined(separator: "\n")
    }

    func renderJSON(_ wf: Workflow, _ p: Double, _ tokens: Int?, _ usd: Double?, _ horizon: Double, _ axis: Axis,
                    _ targets: [Double], _ frontier: [(deadline: Double, budgets: [Double?])]) -> String {
        func num(_ x: Double?) -> String { x.map { String(format: "%.6g", $0) } ?? "null" }
        let rows = frontier.map { row in
            "{\"deadline\":\(num(row.deadline)),"
                + zip(targets, row.budgets).map { "\"p\(Int($0 * 100))\":\(num($1))" }.joined(separator: ",") + "}"
        }
        let name = wf.name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "{\"workflow\":\"\(name)\",\"budgetTokens\":\(tokens.map(String.init) ?? "null"),\"budgetUSD\":\(num(usd)),"
            + "\"deadline\":\(num(horizon)),\"probability\":\(num(p)),\"frontierAxis\":\"\(axis == .usd ? "usd" : "tokens")\","
            + "\"frontier\":[\(rows.joined(separator: ","))],\"subtasks\":\(Self.subtasksJSON(wf))}"
    }

    /// The subtasks after `foreach` expansion: id, kind, needs, and the item of an expansion.
    static func subtasksJSON(_ wf: Workflow) -> String {
        JSONValue.array(wf.subtasks.map { s in
            var m: [String: JSONValue] = ["id": .string(s.id), "kind": .string(s.kind.rawValue), "needs": .array(s.needs.map { .string($0) })]
            if let item = s.item { m["item"] = item }
            if let base = s.expandedFrom { m["foreach"] = .string(base) }
            return .object(m)
        }).text
    }
}
