import AgentFlowCore
import Foundation
import LLM

/// The loop of the `files`, `answer` and `json` kinds: the same three roles and limits as the
/// `code` loop, with the reply protocol's blocks as actions.
///
/// Each turn the agent's blocks are acted on in order (``act(on:sandbox:workspace:kind:schema:)``);
/// the corrector, given only the task and the failed step, may replace a failed step; then, if
/// the turn answered (`answer`, `json`) or changed files (`files`), the result is checked: the
/// schema first (for `json`, when the answer is given), then the verifier, then the outputs'
/// limits. Passing all is success; otherwise what happened is the next turn's observation.
extension AttemptRun {
    struct KindSuccess {
        var detail: String
        /// The legacy text output: the answer, the JSON, or the kept files' names.
        var text: String
        var outputs: OutputBundle
    }

    /// Most bytes of one turn's observation: small models have small contexts.
    static let maxObservationBytes = 6000

    func agentLoop(_ sandbox: Sandbox, _ workspace: AttemptWorkspace, notes: [String]) throws -> KindSuccess {
        let work = workspace.work
        let kind = work.kind
        let schema = work.schema.flatMap { try? JSONSchema(try JSONValue.parse($0)) }
        if work.schema != nil && schema == nil { throw Stop(end: .error, detail: "the dispatch's schema is not a valid schema") }
        let options = spec.scaffold
        let task = KindPrompts.task(spec.prompt, work: work, workspace: workspace, notes: notes)
        var history: [ChatMessage] = []
        var noBlockTurns = 0
        let stopRule: (String) -> Bool = ReplyBlock.hasActionOrAnswer
        let firstTracker = tracker(turn: 1)
        for turn in 1...max(1, options.maxTurns) {
            try checkStop()
            if options.summarizer { try summarizeIfNeeded(&history, task: task) }
            if turn > 1 { PromptLayout.addTracker(tracker(turn: turn), to: &history) }
            let head = PromptLayout.opening(instructions: KindPrompts.system(kind, actions: work.actions), example: KindPrompts.example(kind),
                                            firstTracker: firstTracker, task: summary.map { task + "\n\n" + $0 } ?? task)
            if let context = configuration.contextTokens {
                while history.count >= 2, estimator.estimate(head + history) > context - min(512, context / 4) {
                    history.removeFirst(PromptLayout.oldestTurn(in: history))
                    droppedTurns += 1
                }
            }
            let before = workspace.fingerprint()
            let reply = try call(.agent, head + history, until: stopRule)
            history.append(.assistant(reply))
            var acted = try act(on: reply, sandbox: sandbox, workspace: workspace, kind: kind, schema: schema)
            if acted.usable { noBlockTurns = 0 } else { noBlockTurns += 1 }

            // The corrector: no history, only the task and the failed step (or the last reply
            // after repeated turns without a usable block).
            if options.corrector, acted.failure != nil || noBlockTurns >= 2 {
                correctorCalls += 1
                let failed = acted.failure ?? (String(reply.prefix(1500)), "no usable fenced block in two replies")
                let key = failed.step
                let repeats = failures[key, default: 0]
                failures[key, default: 0] += 1
                var output = failed.output
                if repeats > 0 { output += "\n(This exact step already failed \(repeats) time(s) before: change the approach.)" }
                let fix = try call(.corrector, [
                    .system(KindPrompts.correctorSystem(kind, actions: work.actions)),
                    .user(KindPrompts.correction(task: spec.prompt, failed: failed.step, output: output)),
                ], until: stopRule)
                var fixed = try act(on: fix, sandbox: sandbox, workspace: workspace, kind: kind, schema: schema)
                fixed.lines = fixed.lines.map { "corrector: " + $0 }
                if fixed.usable {
                    noBlockTurns = 0
                    history[history.count - 1] = .assistant(reply + "\n\n" + fix)
                }
                acted.failure = nil
                acted.merge(fixed)
            }

            var report = acted.lines
            if !acted.usable && acted.lines.isEmpty {
                report.append(KindPrompts.noBlock)
                lastFailure = "no fenced block in the reply"
            }
            if try workspace.restoreInputs(needOutputs: spec.inputs) {
                report.append("inputs/ is read-only: your changes there were undone")
            }
            let changed = workspace.fingerprint() != before
            let answerFile = kind.answerFile
            let hasAnswer = answerFile.map { sandbox.readData($0, limit: Limits.maxOutputBytes) != nil } ?? false
            let shouldCheck = kind == .files ? changed : hasAnswer && (acted.answered || changed)
            if shouldCheck {
                let check = try verify(sandbox)
                report.append(check.line)
                if check.passed {
                    switch workspace.collectOutputs(defaultGlobs: workspace.work.kind == .files ? nil : [answerFile!]) {
                    case .success(let kept):
                        if kind == .files && kept.bundle.files.isEmpty && spec.verify == nil {
                            report.append("no file changed that would be kept")
                        } else {
                            let text = answerFile.flatMap { sandbox.readData($0, limit: Limits.maxOutputBytes) }
                                .map { String(decoding: $0, as: UTF8.self) } ?? kept.bundle.files.map(\.path).joined(separator: "\n")
                            let how = spec.verify == nil ? "done" : "verified"
                            return KindSuccess(detail: "\(how) on turn \(turn)" + (acted.lines.contains { $0.hasPrefix("corrector: ") } ? " (corrector's step)" : "")
                                                   + Self.skippedNote(kept.skipped), text: text, outputs: kept.bundle)
                        }
                    case .failure(let problem):
                        lastFailure = "outputs too large"
                        report.append("the check passed, but the outputs are too large: \(problem.message). Delete or shrink files you do not need to keep.")
                    }
                } else {
                    lastFailure = check.summary
                }
            } else if kind != .files && !hasAnswer {
                report.append(kind == .json ? "No valid ```json answer yet." : "No ```answer yet.")
            }
            if turn < options.maxTurns {
                history.append(.user(KindPrompts.observation(Self.bounded(report.joined(separator: "\n")), kind: kind)))
            }
        }
        if lastFailure == "outputs too large" {
            throw Stop(end: .failed, detail: "no result within the limits in \(options.maxTurns) turn(s): the outputs are too large")
        }
        throw Stop(end: .failed, detail: "no verified result in \(options.maxTurns) turn(s)")
    }

    /// Runs the subtask's verifier (in the sandbox's copy of the workspace, the inputs restored);
    /// with none, the result stands.
    func verify(_ sandbox: Sandbox) throws -> (passed: Bool, line: String, summary: String) {
        guard let verifier = spec.verify else { return (true, "check: none given, the result stands", "") }
        let cancelled: @Sendable () -> Bool = { [cancel] in cancel.isCancelled }
        let check = sandbox.runVerifier(verifier, cancel: cancelled, deadline: spec.deadline)
        transcript.verifier(passed: check.succeeded, summary: check.succeeded ? "" : check.summary, seconds: check.seconds,
                            output: Self.relative(check.output, to: sandbox))
        try checkStop(tokens: false)
        if check.succeeded { return (true, "check: passed", "") }
        let shown = Self.tail(Self.relative(check.output, to: sandbox))
        return (false, "check: failed (\(check.summary))" + (shown.isEmpty ? "" : "\n```\n\(shown)\n```"),
                Self.lastLine(of: check.output))
    }

    /// An observation cut to ``maxObservationBytes`` (head and tail kept).
    static func bounded(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > maxObservationBytes else { return text }
        let half = maxObservationBytes / 2
        return String(decoding: bytes.prefix(half), as: UTF8.self) + "\n… (\(bytes.count - 2 * half) bytes of the observation left out) …\n"
            + String(decoding: bytes.suffix(half), as: UTF8.self)
    }
}
