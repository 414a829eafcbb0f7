import AgentFlowCore
import Foundation
import Wire

/// Pads columns for terminal tables.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = Array(repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    return rows.map { r in
        r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }.joined()
    }.joined(separator: "\n")
}

func usd(_ v: Double) -> String { String(format: "$%.6f", v) }

/// The human report of a job: outcome, budget spent vs limit, time vs deadline, per subtask.
func render(_ j: JobReport) -> String {
    var out = "job \(j.id)  \(j.workflow)  \(j.state.rawValue)"
    if !j.reason.isEmpty { out += "  (\(j.reason))" }
    out += "\n"
    out += "planner \(j.planner)   time \(formatDuration(j.elapsedSeconds)) of \(formatDuration(j.deadlineSeconds)) deadline\n"
    if !j.waiting.isEmpty { out += "waiting: \(j.waiting)\n" }
    if let p = j.successEstimate {
        out += "estimate \(String(format: "%.2f", p)) probability of finishing within budget and deadline under the current load"
            + (j.tenant.map { "   tenant \($0)" } ?? "") + "\n"
    }
    let b = j.budget
    var budget = "budget  tokens \(b.spentTokens)"
    if let l = b.limitTokens { budget += " / \(l) (\(String(format: "%.1f", 100 * Double(b.spentTokens) / Double(max(l, 1))))%)" }
    budget += "   usd \(usd(b.spentUSD))"
    if let l = b.limitUSD { budget += " / \(usd(l))" }
    if b.reservedTokens > 0 { budget += "   reserved \(b.reservedTokens) tokens / \(usd(b.reservedUSD))" }
    out += budget + "\n\n"
    // Tokens by scaffold role, in the ledger's order of the roles' appearance in an attempt.
    let roles = ["agent", "corrector", "summarizer"]
    var rows = [["subtask", "state", "model", "attempts", "tokens", "usd", roles.joined(separator: "/"), "last attempt"]]
    for s in j.subtasks {
        let byRole = roles.map { role in String(s.roles.first { $0.role == role }?.tokens ?? 0) }.joined(separator: "/")
        rows.append([s.id, s.state.rawValue, s.model ?? "-", String(s.attempts), String(s.tokens), usd(s.usd),
                     s.attempts == 0 ? "-" : byRole, s.note.isEmpty ? "-" : s.note])
    }
    out += table(rows)
    return out
}

/// A job's progress as one line per change of what ran or passed (not per tick of the clock),
/// for `run`, `submit --wait` and `watch` into a pipe: stderr unless told otherwise.
struct ProgressLines {
    var toStandardOutput = false
    private var last = ""

    init(toStandardOutput: Bool = false) { self.toStandardOutput = toStandardOutput }

    mutating func show(_ report: JobReport) {
        let key = report.state.rawValue + report.subtasks.map { "\($0.state.rawValue)\($0.attempts)" }.joined()
            + "\(report.budget.spentTokens) \(report.waiting)"
        guard key != last else { return }
        last = key
        if toStandardOutput { print(report.progressLine) } else { printError(report.progressLine) }
    }
}
