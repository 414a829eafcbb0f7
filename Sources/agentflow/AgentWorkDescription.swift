import AgentFlowCore
import Foundation

/// The workflow as it will run, for `plan` and `validate`: parameter values, inputs, and every
/// subtask after `foreach` expansion with its kind, item, needs and judge.
func describeAgentWork(_ wf: Workflow) -> String {
    var lines: [String] = []
    if !wf.params.isEmpty {
        lines.append("params: " + wf.params.keys.sorted().map { "\($0)=\(excerpt(wf.params[$0]!.text, 60))" }.joined(separator: ", "))
    }
    if !wf.inputs.isEmpty {
        lines.append("inputs: " + wf.inputs.map { "\($0.name) (\($0.path ?? "given at submission"))" }.joined(separator: ", "))
    }
    lines.append("subtasks\(wf.subtasks.contains { $0.expandedFrom != nil } ? " after foreach expansion" : ""):")
    let width = min(32, wf.subtasks.map(\.id.count).max() ?? 0)
    for s in wf.subtasks {
        var parts = [s.id.padding(toLength: max(width, s.id.count), withPad: " ", startingAt: 0), s.kind.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0)]
        if let item = s.item { parts.append("item \(excerpt(item.text, 40))") }
        if let from = s.workspaceFrom { parts.append("workspace from \(from)") }
        if s.actions != [.python] { parts.append("actions [\(s.actions.map(\.rawValue).joined(separator: ", "))]") }
        if !s.needs.isEmpty { parts.append("needs \(excerpt(s.needs.joined(separator: ", "), 80))") }
        if let judge = s.judge { parts.append(String(format: "judge %@ ≥ %.2f", judge.model, judge.pass)) }
        lines.append("  " + parts.joined(separator: "  "))
    }
    return lines.joined(separator: "\n")
}

private func excerpt(_ s: String, _ n: Int) -> String {
    s.count > n ? String(s.prefix(n)) + "…" : s
}
