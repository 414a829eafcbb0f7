import AgentFlowCore
import Foundation
import Wire

/// `agentflow attempts JOB --transcript SUBTASK#N`: one attempt's transcript for a terminal —
/// each model call with the messages it sent (each printed once, where it is first sent; later
/// requests name them), its reply, tokens, times and finish reason; each action with its input
/// and output; each verifier run; notes. Texts are printed as recorded, indented, with terminal
/// control characters shown as escapes.
enum TranscriptPrinter {
    static func render(_ t: TranscriptReport) -> String {
        var out: [String] = []
        out.append("Transcript of \(t.attempt) · \(t.model)" + (t.worker.map { " on \($0)" } ?? "") + " · \(t.state)")
        if !t.detail.isEmpty { out.append("  \(visible(t.detail))") }
        var facts = ["\(t.entries) entries", size(t.bytes)]
        facts.append(t.complete ? "complete" : t.state == "dispatched" ? "still running" : "ends early (the worker stopped before the attempt's end arrived)")
        if t.missing > 0 { facts.append("\(t.missing) entries lost in flight") }
        if t.refused > 0 { facts.append("\(t.refused) entries not stored (over the cap)") }
        out.append("  " + facts.joined(separator: " · "))
        if let note = t.note { out.append("  note: \(visible(note))") }
        let start = t.events.first.flatMap { parseISO($0.at) }
        let messages = Dictionary(t.messages.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        var shown = Set<Int>()
        for e in t.events {
            out.append("")
            let offset = start.flatMap { s in parseISO(e.at).map { String(format: "+%.2fs", $0 - s) } } ?? e.at
            switch e.type {
            case "call":
                var head = "── call \(e.call ?? 0) · \(e.role ?? "?") · \(offset)"
                if let r = e.reply {
                    head += " · " + seconds(r.seconds) + (r.firstTokenSeconds.map { " (first token \(seconds($0)))" } ?? "")
                    head += " · \(r.tokensIn) in, \(r.tokensOut) out"
                    if let f = r.finishReason { head += " · finish: \(visible(f))" }
                }
                out.append(head)
                if e.reply?.finishReason == ModelReply.calibration, e.request?.isEmpty ?? true {
                    out.append("  the token estimator's calibration call, charged to this attempt (its prompt is not kept)")
                    continue
                }
                if let request = e.request {
                    let old = request.filter { shown.contains($0) }
                    var line = "  request: \(request.count) message(s)"
                    if !old.isEmpty { line += "; \(ranges(old)) as sent before" }
                    if let m = e.maxTokens { line += "; max \(m) tokens" }
                    out.append(line)
                    for i in request where !shown.contains(i) {
                        shown.insert(i)
                        guard let m = messages[i] else {
                            out.append("    [\(i)] (not recorded)")
                            continue
                        }
                        out.append("    [\(i)] \(m.role):")
                        out += block(m.content, omitted: m.omitted, indent: 8)
                    }
                }
                if let r = e.reply {
                    if let err = r.error { out.append("  error: \(visible(err))") }
                    out.append("  reply:")
                    out += block(r.text, omitted: r.omitted, indent: 4)
                } else {
                    out.append("  no reply recorded (the worker stopped during this call)")
                }
            case "action":
                guard let a = e.action else { continue }
                out.append("── action \(visible(a.label)) · \(offset)" + (a.seconds > 0 ? " · \(seconds(a.seconds))" : "") + " · \(visible(a.status))")
                if !a.input.isEmpty || a.omitted > 0 {
                    out.append("  input:")
                    out += block(a.input, omitted: 0, indent: 4)
                }
                if !a.output.isEmpty {
                    out.append("  output:")
                    out += block(a.output, omitted: 0, indent: 4)
                }
                if a.omitted > 0 { out.append("    … (\(a.omitted) bytes left out under the transcript cap)") }
            case "verifier":
                guard let v = e.verifier else { continue }
                out.append("── verifier · \(offset) · \(seconds(v.seconds)) · " + (v.passed ? "passed" : "failed (\(visible(v.summary)))"))
                if !v.output.isEmpty || v.omitted > 0 {
                    out.append("  output:")
                    out += block(v.output, omitted: v.omitted, indent: 4)
                }
            default:
                out.append("── note · \(offset) · \(visible(e.text ?? ""))")
            }
        }
        return out.joined(separator: "\n")
    }

    static func block(_ text: String, omitted: Int, indent: Int) -> [String] {
        let pad = String(repeating: " ", count: indent)
        var lines = text.isEmpty && omitted == 0 ? [pad + "(empty)"] : text.split(separator: "\n", omittingEmptySubsequences: false).map { pad + visible(String($0)) }
        if omitted > 0 { lines.append(pad + "… (\(omitted) bytes left out under the transcript cap)") }
        return lines
    }

    /// The text with terminal control characters (ESC and the rest, but tabs) shown as `\u{1B}`.
    static func visible(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F || (0x80..<0xA0).contains($0.value) }) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            if (u.value < 0x20 && u != "\t") || u.value == 0x7F || (0x80..<0xA0).contains(u.value) {
                out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    static func seconds(_ s: Double) -> String { s < 1 ? String(format: "%.0fms", s * 1000) : String(format: "%.2fs", s) }

    static func size(_ bytes: Int) -> String {
        bytes < 10_000 ? "\(bytes) bytes" : bytes < 10_000_000 ? String(format: "%.1f KB", Double(bytes) / 1000) : String(format: "%.1f MB", Double(bytes) / 1e6)
    }

    /// `0–3, 5` for [0, 1, 2, 3, 5].
    static func ranges(_ list: [Int]) -> String {
        var parts: [String] = []
        var i = 0
        while i < list.count {
            var j = i
            while j + 1 < list.count && list[j + 1] == list[j] + 1 { j += 1 }
            parts.append(j > i ? "[\(list[i])–\(list[j])]" : "[\(list[i])]")
            i = j + 1
        }
        return parts.joined(separator: ", ")
    }
}
