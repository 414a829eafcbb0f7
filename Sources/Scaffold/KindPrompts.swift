import AgentFlowCore
import Foundation
import LLM

/// Prompts of the `files`, `answer` and `json` kinds and of the judge. The `code` kind keeps
/// ``Prompts`` unchanged (the demo's small models are tuned to it).
enum KindPrompts {
    static func protocolLines(_ kind: SubtaskKind, actions: [AgentAction]) -> String {
        var lines = ["```file:PATH writes the file PATH (relative) with the block's text as its whole content."]
        if actions.contains(.python) { lines.append("```python runs Python in the workspace; you see its output next turn.") }
        if actions.contains(.shell) { lines.append("```sh runs shell commands in the workspace; you see their output next turn.") }
        switch kind {
        case .answer: lines.append("```answer holds your final answer (saved as answer.md).")
        case .json: lines.append("```json holds your final answer as one JSON value (saved as answer.json; it must match the schema).")
        case .files, .code: break
        }
        return lines.map { "- " + $0 }.joined(separator: "\n")
    }

    /// The kind's instructions, the same for every call (the tracker is a message of its own: ``PromptLayout``).
    static func system(_ kind: SubtaskKind, actions: [AgentAction]) -> String {
        let goal: String
        switch kind {
        case .files: goal = "Change the files in the workspace so that the task is done. The task's check runs after each turn that changes files."
        case .answer: goal = "Find out what you need, then give your answer in one ```answer block."
        case .json: goal = "Find out what you need, then give the answer in one ```json block."
        case .code: goal = ""
        }
        return """
            You are an agent working in a sandbox; the current directory is the workspace. Act with fenced blocks:
            \(protocolLines(kind, actions: actions))
            Files under inputs/ are read-only. \(goal)
            """
    }

    /// One worked exchange per kind: base models follow an example far better than a rule.
    static func example(_ kind: SubtaskKind) -> [ChatMessage] {
        switch kind {
        case .files:
            return [.user("Task:\nCreate greeting.txt containing Hello."), .assistant("```file:greeting.txt\nHello\n```")]
        case .answer:
            return [.user("Task:\nWhat is 2 + 3? Answer in one sentence."), .assistant("```answer\n2 + 3 is 5.\n```")]
        case .json:
            return [.user("Task:\nGive the name and age of Ada, who is 36.\nThe answer must match this JSON Schema:\n{\"type\":\"object\",\"required\":[\"name\",\"age\"]}"),
                    .assistant("```json\n{\"name\": \"Ada\", \"age\": 36}\n```")]
        case .code:
            return Prompts.example
        }
    }

    /// The task message: the prompt, the schema, the workspace, and the text of the files the
    /// prompt names and of the needs' outputs (small models rarely think of reading them).
    static func task(_ prompt: String, work: AttemptWork, workspace: AttemptWorkspace, notes: [String]) -> String {
        var text = "Task:\n\(prompt.trimmingCharacters(in: .whitespacesAndNewlines))"
        if work.kind == .json, let schema = work.schema {
            text += "\nThe answer must match this JSON Schema:\n\(schema)"
        }
        text += "\n\nWorkspace:\n" + workspace.listing()
        var shown = 0
        var named: [String] = []
        for entry in workspace.files.walk(nil) where entry.kind == .file && entry.size <= 4000 {
            let needOutput = work.needs.contains { entry.path.hasPrefix("inputs/\($0.id)/") }
            guard needOutput || prompt.contains(entry.path) else { continue }
            guard shown + entry.size <= 6000, let data = workspace.sandbox.readData(entry.path, limit: 4000) else { continue }
            shown += entry.size
            named.append("### \(entry.path)\n```\n\(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines))\n```")
        }
        if !named.isEmpty { text += "\n\n" + named.joined(separator: "\n") }
        if !notes.isEmpty { text += "\n\nNotes:\n" + notes.map { "- " + $0 }.joined(separator: "\n") }
        return text
    }

    static func observation(_ report: String, kind: SubtaskKind) -> String {
        let next: String
        switch kind {
        case .files: next = "Continue: fix what failed with ```file:PATH blocks (or run commands)."
        case .answer: next = "Continue: when you know the answer, give it in one ```answer block."
        case .json: next = "Continue: give the answer as JSON in one ```json block."
        case .code: next = ""
        }
        return report + "\n" + next
    }

    static let noBlock = "Your reply had no fenced block, so nothing happened."

    static func correctorSystem(_ kind: SubtaskKind, actions: [AgentAction]) -> String {
        """
        You fix an agent's failed step. You get the task, what the agent did and what happened. \
        Reply with corrected fenced blocks only:
        \(protocolLines(kind, actions: actions))
        """
    }

    static func correction(task: String, failed: String, output: String) -> String {
        """
        Task:
        \(task.trimmingCharacters(in: .whitespacesAndNewlines))

        The agent's step:
        \(failed.prefix(3000))

        What happened:
        ```
        \(output.trimmingCharacters(in: .newlines).suffix(2000))
        ```
        Reply with the corrected block(s).
        """
    }

    static let judgeSystem = """
        You are a strict judge. You get a task, a rubric and a result. Score how well the result \
        meets the rubric, from 0 (not at all) to 1 (fully). Reply with one ```json block and \
        nothing else: {"score": <number from 0 to 1>, "reason": "<one sentence>"}
        """

    static func judge(task: String, rubric: String, result: String) -> String {
        """
        Task:
        \(task.trimmingCharacters(in: .whitespacesAndNewlines))

        Rubric:
        \(rubric.trimmingCharacters(in: .whitespacesAndNewlines))

        Result:
        \(result)
        """
    }

    /// The verdict's schema, sent with every judge call as `response_format`: a server that
    /// constrains decoding can then only reply with a verdict (a base model left to itself
    /// echoes the prompt); the reply is still checked, for servers that do not.
    static let verdictFormat = ResponseFormat(
        name: "verdict",
        schemaJSON: #"{"type":"object","required":["score","reason"],"additionalProperties":false,"properties":{"score":{"type":"number","minimum":0,"maximum":1},"reason":{"type":"string"}}}"#)

    static let judgeAgain = "That was not a verdict. Reply with one ```json block: {\"score\": <number from 0 to 1>, \"reason\": \"<one sentence>\"}"
}
