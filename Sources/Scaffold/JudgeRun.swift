import AgentFlowCore
import Foundation
import LLM

/// A judge attempt (``JudgeTask``): one model call, in the `judge` role, that scores the judged
/// result — its outputs are this attempt's workspace — against the rubric. The verdict is a JSON
/// object `{"score": 0…1, "reason": "…"}`; a reply that is not one gets one more chance, then
/// the attempt fails with a note and no verdict. Garbage never passes.
extension AttemptRun {
    func judgeRun(_ judge: JudgeTask, workspace: AttemptWorkspace) throws -> AttemptOutcome {
        let result = Self.judgedResult(workspace, kind: workspace.work.kind)
        var messages: [ChatMessage] = [
            .system(KindPrompts.judgeSystem),
            .user(KindPrompts.judge(task: spec.prompt, rubric: judge.rubric, result: result)),
        ]
        var lastProblem = ""
        for attempt in 1...2 {
            let reply = try call(.judge, messages, maxTokens: 256)
            switch Self.verdict(in: reply) {
            case .success(let v):
                let judgement = Judgement(score: v.score, passed: v.score >= judge.pass, reason: String(v.reason.prefix(300)))
                let detail = String(format: "judge score %.2f (pass %.2f)", v.score, judge.pass) + (v.reason.isEmpty ? "" : ": \(judgement.reason)")
                return outcome(judgement.passed ? .succeeded : .failed, detail, judgement: judgement)
            case .failure(let problem):
                lastProblem = problem.message
                if attempt == 1 {
                    messages.append(.assistant(reply))
                    messages.append(.user(KindPrompts.judgeAgain))
                }
            }
        }
        return outcome(.failed, "the judge's reply is not a verdict (\(lastProblem)); not passed")
    }

    /// What the judge reads: the answer, or the kept files (each shortened), at most 8000 bytes.
    static func judgedResult(_ workspace: AttemptWorkspace, kind: SubtaskKind) -> String {
        var parts: [String] = []
        var budget = 8000
        let answer = kind.answerFile
        var entries = workspace.files.walk(nil).filter { $0.kind == .file && !$0.path.hasPrefix(AttemptWorkspace.privateDirectory + "/") }
        if let answer { entries.sort { a, _ in a.path == answer } }
        for e in entries where budget > 0 {
            guard let data = workspace.sandbox.readData(e.path, limit: Limits.maxOutputBytes) else { continue }
            var text = String(decoding: data.prefix(budget), as: UTF8.self)
            if data.count > budget { text += "\n… (\(data.count - budget) more bytes)" }
            budget -= min(data.count, budget)
            parts.append(e.path == answer && entries.count == 1 ? text : "### \(e.path)\n\(text)")
        }
        return parts.isEmpty ? "(the result has no files)" : parts.joined(separator: "\n\n")
    }

    /// The verdict in a judge's reply: a ```json block or the bare JSON, an object with a
    /// numeric `score` in [0, 1] and optionally a `reason`.
    static func verdict(in reply: String) -> Result<(score: Double, reason: String), VerdictProblem> {
        var candidates = ReplyBlock.parse(reply).filter { $0.closed && ($0.kind == .json || $0.kind == .unlabeled) }.map(\.body)
        candidates.append(reply)
        for text in candidates {
            guard let value = try? JSONValue.parse(text) else { continue }
            guard case .object(let m) = value else { return .failure(VerdictProblem("the verdict is \(value.typeName), not an object")) }
            guard case .number(let score) = m["score"] else { return .failure(VerdictProblem("the verdict has no numeric 'score'")) }
            guard score >= 0 && score <= 1 else { return .failure(VerdictProblem("the score \(score) is not in [0, 1]")) }
            var reason = ""
            if case .string(let r) = m["reason"] { reason = r }
            return .success((score, reason))
        }
        return .failure(VerdictProblem("no JSON verdict in the reply"))
    }

    struct VerdictProblem: Error {
        var message: String
        init(_ m: String) { message = m }
    }
}
