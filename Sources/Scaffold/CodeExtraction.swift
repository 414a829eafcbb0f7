import Foundation

/// Finds the code action in a model reply.
public enum CodeExtraction {
    /// The first fenced ```python block of `reply` (or the first fenced block of any language
    /// when no block is marked python). An unterminated final block — the model ran out of
    /// tokens mid-fence — counts up to the end of the reply. `nil` when there is no fence.
    public static func pythonBlock(in reply: String) -> String? {
        let blocks = fencedBlocks(in: reply)
        let python = blocks.first { ["python", "py", "python3"].contains($0.language.lowercased()) }
        // A block of the reply protocol's other kinds (file:PATH, sh, answer, json) is never the module.
        let other = blocks.first { block in
            let l = block.language.lowercased()
            return !(l.hasPrefix("file:") || l.hasPrefix("file ") || ["sh", "bash", "shell", "answer", "json"].contains(l))
        }
        guard let chosen = python ?? blocks.first(where: { $0.language.isEmpty }) ?? other else { return nil }
        let code = chosen.code.trimmingCharacters(in: .whitespacesAndNewlines)
        return code.isEmpty ? nil : code + "\n"
    }

    /// Whether `text` already holds a closed fenced block with code in it.
    public static func hasCompleteBlock(_ text: String) -> Bool {
        var open = false
        var hasCode = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if line.trimmingCharacters(in: .whitespaces).hasPrefix("```") {
                if open && hasCode { return true }
                open.toggle()
                hasCode = false
            } else if open && !line.trimmingCharacters(in: .whitespaces).isEmpty {
                hasCode = true
            }
        }
        return open && hasCode && text.split(separator: "\n", omittingEmptySubsequences: false).last.map {
            $0.trimmingCharacters(in: .whitespaces).hasPrefix("```")
        } == true
    }

    struct Block {
        var language: String
        var code: String
    }

    static func fencedBlocks(in reply: String) -> [Block] {
        var blocks: [Block] = []
        var current: (language: String, lines: [Substring])?
        for line in reply.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if var open = current {
                if trimmed.hasPrefix("```") {
                    blocks.append(Block(language: open.language, code: open.lines.joined(separator: "\n")))
                    current = nil
                } else {
                    open.lines.append(line)
                    current = open
                }
            } else if trimmed.hasPrefix("```") {
                current = (String(trimmed.dropFirst(3)).trimmingCharacters(in: .whitespaces), [])
            }
        }
        if let open = current, !open.lines.isEmpty {
            blocks.append(Block(language: open.language, code: open.lines.joined(separator: "\n")))
        }
        return blocks
    }
}
