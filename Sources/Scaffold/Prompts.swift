import AgentFlowCore
import Foundation
import LLM

/// The three roles' prompts. Each role has its own system prompt; the corrector never sees the
/// conversation.
enum Prompts {
    static let agentSystem = """
        You are a Python programmer working in a sandbox. Every turn, reply with exactly one \
        ```python code block holding the complete contents of solution.py. It is run, then checked \
        by a verifier, and you see the result. Write only what the task asks for; do not call input().
        """

    static let correctorSystem = """
        You fix broken Python code. You get a task, the code that failed and its output. Reply \
        with the complete corrected solution.py in one ```python code block and nothing else.
        """

    static let summarizerSystem = """
        You summarize an agent's work log for the agent itself. Copy every access token, \
        credential, ID, file name and API output VERBATIM. List actions that failed more than \
        once so they are not repeated. Be brief: at most 10 lines.
        """

    /// The budget tracker line of a turn: a system message of its own just before the message
    /// its turn answers (``PromptLayout``; in the system message it cost the prefix cache, after
    /// the task it was read as part of the task).
    static func tracker(tokensLeft: Int, secondsLeft: Double, turn: Int, maxTurns: Int) -> String {
        "[budget] \(max(0, tokensLeft)) tokens and \(Int(max(0, secondsLeft)))s left; turn \(turn) of \(maxTurns)."
    }

    /// One worked exchange before the task. Base models (Gemma-3-270M) answer a bare chat prompt
    /// by echoing it; after one example they answer with a code block.
    static let example: [ChatMessage] = [
        .user("Task:\nWrite a Python function is_even(n) that returns True when n is even."),
        .assistant("```python\ndef is_even(n):\n    return n % 2 == 0\n```"),
    ]

    /// The needs' outputs, as importable modules.
    static func modules(_ inputs: [String: String]) -> String {
        guard !inputs.isEmpty else { return "" }
        var text = "\n\nModules from earlier subtasks are in the working directory; import them:\n"
        for (id, code) in inputs.sorted(by: { $0.key < $1.key }) {
            text += "### \(id).py\n```python\n\(code.trimmingCharacters(in: .newlines))\n```\n"
        }
        return text
    }

    /// `def`/`class` lines of the needs' outputs: the corrector's "relevant docs".
    static func signatures(_ inputs: [String: String]) -> String {
        var lines: [String] = []
        for (id, code) in inputs.sorted(by: { $0.key < $1.key }) {
            for line in code.split(separator: "\n") where line.hasPrefix("def ") || line.hasPrefix("class ") {
                lines.append("\(id).\(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        return lines.isEmpty ? "" : "\nAvailable from earlier modules (import them):\n" + lines.joined(separator: "\n") + "\n"
    }

    static func task(_ prompt: String, inputs: [String: String]) -> String {
        "Task:\n\(prompt.trimmingCharacters(in: .whitespacesAndNewlines))\(modules(inputs))"
    }

    static func observation(_ report: String) -> String {
        "\(report)\nFix the problem and reply with the complete solution.py in one ```python block."
    }

    static let noCode = "Your reply had no ```python code block. Reply with the complete solution.py in one ```python block."

    static func correction(task: String, inputs: [String: String], code: String, output: String) -> String {
        """
        Task:
        \(task.trimmingCharacters(in: .whitespacesAndNewlines))
        \(signatures(inputs))
        This solution.py failed:
        ```python
        \(code.trimmingCharacters(in: .newlines))
        ```
        Its output:
        ```
        \(output.trimmingCharacters(in: .newlines))
        ```
        Reply with the corrected solution.py in one ```python block.
        """
    }

    static func correctionWithoutCode(task: String, inputs: [String: String], lastReply: String) -> String {
        """
        Task:
        \(task.trimmingCharacters(in: .whitespacesAndNewlines))
        \(signatures(inputs))
        An assistant answered twice without writing code. Its last answer:
        \(lastReply.prefix(1500))

        Write solution.py for the task. Reply with one ```python block.
        """
    }
}
