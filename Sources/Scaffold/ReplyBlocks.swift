import AgentFlowCore
import Foundation

/// The reply protocol (DESIGN.md §7): a model reply read as fenced blocks, in order.
///
/// - ```` ```python ```` (`py`, `python3`): Python to run;
/// - ```` ```sh ```` (`bash`, `shell`): shell commands to run;
/// - ```` ```file:PATH ````: the whole new content of PATH, relative to the workspace;
/// - ```` ```answer ````: the final answer of an `answer` subtask;
/// - ```` ```json ````: the final answer of a `json` subtask.
///
/// A fence is three or more backticks; it closes at a line of at least as many backticks
/// alone, so a file that itself holds ```` ``` ```` fences is written inside a four-backtick
/// block. Text outside blocks is the model's reasoning and is ignored.
public struct ReplyBlock: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case python, shell, answer, json
        case file(String)
        /// A fence without a language.
        case unlabeled
        /// A fence whose language is not part of the protocol (`javascript`, `text`, …).
        case unknown(String)
    }

    public var kind: Kind
    public var body: String
    /// False when the reply ended inside the block (the model ran out of tokens).
    public var closed: Bool

    /// How the block is named in observations: ```` ```sh ````, ```` ```file:a.py ````.
    public var label: String {
        switch kind {
        case .python: return "```python"
        case .shell: return "```sh"
        case .answer: return "```answer"
        case .json: return "```json"
        case .file(let p): return "```file:\(Limits.printable(p, limit: 80).dropFirst().dropLast())"
        case .unlabeled: return "```"
        case .unknown(let l): return "```\(Limits.printable(l, limit: 40).dropFirst().dropLast())"
        }
    }

    /// The blocks of `reply`, in order.
    public static func parse(_ reply: String) -> [ReplyBlock] {
        var blocks: [ReplyBlock] = []
        var open: (kind: Kind, fence: Int, lines: [Substring])?
        for line in reply.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let ticks = trimmed.prefix { $0 == "`" }.count
            if var current = open {
                if ticks >= current.fence && trimmed.allSatisfy({ $0 == "`" }) {
                    blocks.append(ReplyBlock(kind: current.kind, body: current.lines.joined(separator: "\n"), closed: true))
                    open = nil
                } else {
                    current.lines.append(line)
                    open = current
                }
            } else if ticks >= 3 {
                let info = String(trimmed.dropFirst(ticks)).trimmingCharacters(in: .whitespaces)
                open = (kind(of: info), ticks, [])
            }
        }
        if let current = open {
            blocks.append(ReplyBlock(kind: current.kind, body: current.lines.joined(separator: "\n"), closed: false))
        }
        return blocks
    }

    static func kind(of info: String) -> Kind {
        let lower = info.lowercased()
        if lower.hasPrefix("file:") || lower.hasPrefix("file ") {
            return .file(String(info.dropFirst(5)).trimmingCharacters(in: .whitespaces))
        }
        // Only the first word names the language (```python title="x" is still Python).
        let word = lower.split(separator: " ").first.map(String.init) ?? ""
        switch word {
        case "": return .unlabeled
        case "python", "py", "python3": return .python
        case "sh", "bash", "shell": return .shell
        case "answer": return .answer
        case "json": return .json
        default: return .unknown(word)
        }
    }

    /// Whether `text` (a reply being streamed) already holds a closed block after which the
    /// model should stop and see what happens: an action to run or a final answer. File blocks
    /// need no observation, so several may come in one reply.
    public static func hasActionOrAnswer(_ text: String) -> Bool {
        parse(text).contains { block in
            guard block.closed else { return false }
            switch block.kind {
            case .python, .shell, .answer, .json: return true
            default: return false
            }
        }
    }
}
