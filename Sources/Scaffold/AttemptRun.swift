import AgentFlowCore
import Foundation
import LLM

/// One attempt: the three-role loop of DESIGN.md §1/§7, run on the calling thread.
///
/// Not thread-safe: one instance runs once, on one thread. Other threads only raise `cancel`.
final class AttemptRun {
    let spec: AttemptSpec
    let chat: any ChatModel
    private let modelName: String
    let estimator: PromptTokenEstimator
    let configuration: ScaffoldConfiguration
    let cancel: CancellationFlag
    private let progress: (Int) -> Void
    /// What happened, entry by entry, for the coordinator (``TranscriptRecorder``).
    let transcript: TranscriptRecorder

    var usage: [Role: ChatUsage] = [:]
    private var reported = 0
    var summary: String?
    var failures: [String: Int] = [:]
    var correctorCalls = 0
    /// How the last failing run of the code ended, for the attempt's note.
    var lastFailure: String?
    /// Import lines the corrector added without a model call (``ImportRepair``).
    private var importsAdded: [String] = []
    private var summaries = 0
    var droppedTurns = 0
    /// The worker's clock (``ScaffoldBackend/time``): `spec.deadline` is on its monotonic clock.
    let time: any TimeSource
    private let started: MonotonicInstant

    /// Ends the loop early.
    struct Stop: Error {
        var end: AttemptEnd
        var detail: String
    }

    init(
        spec: AttemptSpec, chat: any ChatModel, modelName: String, estimator: PromptTokenEstimator,
        configuration: ScaffoldConfiguration, cancel: CancellationFlag, progress: @escaping (Int) -> Void,
        transcript: TranscriptRecorder = TranscriptRecorder(cap: 0) { _ in }, time: any TimeSource
    ) {
        self.time = time
        self.started = time.instant
        self.transcript = transcript
        self.spec = spec
        self.chat = chat
        self.modelName = modelName
        self.estimator = estimator
        self.configuration = configuration
        self.cancel = cancel
        self.progress = progress
    }

    var spent: Int { usage.values.reduce(0) { $0 + $1.total } }

    var usageList: [TokenUsage] {
        Role.allCases.compactMap { role in
            guard let u = usage[role], u.total > 0 else { return nil }
            return TokenUsage(role: role, input: u.promptTokens, output: u.completionTokens)
        }
    }

    /// Charges tokens spent outside a role call (the estimator's calibration) to `role`.
    func charge(_ role: Role, _ tokens: ChatUsage, seconds: Double) {
        usage[role, default: .zero] += tokens
        report(spent, force: true)
        transcript.calibration(role, usage: tokens, seconds: seconds)
    }

    func run() -> AttemptOutcome {
        let sandbox: Sandbox
        var workspace: AttemptWorkspace?
        var setUpNotes: [String] = []
        do {
            sandbox = try Sandbox(
                root: configuration.workspaceRoot,
                name: "\(spec.id.job)-\(spec.id.subtask)-\(spec.id.n)-\(UUID().uuidString.prefix(8))",
                limits: spec.sandbox.map { configuration.limits.narrowed(by: $0) } ?? configuration.limits, mode: configuration.sandbox,
                time: time)
        } catch {
            transcript.note("cannot create the workspace: \(error)")
            return outcome(.error, "cannot create the workspace: \(error)")
        }
        defer {
            workspace?.cleanUp()
            if !configuration.keepWorkspaces { sandbox.remove() }
        }
        do {
            if let work = spec.work {
                let ws = AttemptWorkspace(sandbox: sandbox, work: work)
                workspace = ws
                setUpNotes = try ws.setUp(needOutputs: spec.inputs)
            } else {
                for (id, code) in spec.inputs { try sandbox.seed("\(id).py", code) }
            }
        } catch {
            transcript.note("cannot set up the workspace: \(error)")
            return outcome(.error, "cannot set up the workspace: \(error)")
        }
        do {
            if let work = spec.work, let workspace {
                if let judge = work.judge { return try judgeRun(judge, workspace: workspace) }
                if work.kind != .code {
                    let result = try agentLoop(sandbox, workspace, notes: setUpNotes)
                    return outcome(.succeeded, result.detail, output: result.text, outputs: result.outputs)
                }
            }
            let code = try loop(sandbox, workspace: workspace)
            guard let workspace else { return outcome(.succeeded, code.detail, output: code.code) }
            switch workspace.collectOutputs(defaultGlobs: ["solution.py"]) {
            case .success(let kept):
                return outcome(.succeeded, code.detail + Self.skippedNote(kept.skipped), output: code.code, outputs: kept.bundle)
            case .failure(let problem):
                return outcome(.failed, "verified, but the outputs are too large: \(problem.message)")
            }
        } catch let stop as Stop {
            return outcome(stop.end, stop.detail)
        } catch {
            return outcome(.error, "\(error)")
        }
    }

    static func skippedNote(_ skipped: [String]) -> String {
        skipped.isEmpty ? "" : "; not kept: " + skipped.prefix(5).joined(separator: ", ") + (skipped.count > 5 ? " and \(skipped.count - 5) more" : "")
    }

    func outcome(_ end: AttemptEnd, _ detail: String, output: String? = nil, outputs: OutputBundle? = nil,
                 judgement: Judgement? = nil) -> AttemptOutcome {
        var notes = detail
        if correctorCalls > 0 { notes += "; corrector ×\(correctorCalls)" }
        if !importsAdded.isEmpty {
            // Each turn's new code may drop the same import again: name each line once.
            var seen = Set<String>()
            notes += "; imports added: " + importsAdded.filter { seen.insert($0).inserted }.joined(separator: ", ")
        }
        if end != .succeeded, let lastFailure { notes += "; last run: \(lastFailure)" }
        if summaries > 0 { notes += "; summarized ×\(summaries)" }
        if droppedTurns > 0 { notes += "; \(droppedTurns) oldest turn(s) dropped to fit the context" }
        report(spent, force: true)
        transcript.note("attempt ended \(end.rawValue): \(notes)")
        return AttemptOutcome(
            end: end, usage: usageList, output: output, detail: notes, seconds: (time.instant - started).seconds,
            outputs: outputs, judgement: judgement)
    }

    private func report(_ tokens: Int, force: Bool = false) {
        let value = min(tokens, spec.tokenCap)
        if force ? value != reported : value - reported >= 16 {
            reported = value
            progress(value)
        }
    }

    func tracker(turn: Int) -> String {
        Prompts.tracker(
            tokensLeft: spec.tokenCap - spent, secondsLeft: spec.deadline.remaining(at: time.instant).seconds,
            turn: turn, maxTurns: spec.scaffold.maxTurns)
    }

    /// The schema of a `json` subtask without actions, for the server to constrain the agent's and
    /// the corrector's replies to (`response_format`): every reply is then the answer, one JSON value.
    private var responseFormat: ResponseFormat? {
        guard let work = spec.work, work.kind == .json, work.actions.isEmpty, let schema = work.schema else { return nil }
        return ResponseFormat(name: spec.id.subtask, schemaJSON: schema)
    }

    /// Throws when the attempt must end now. Running code costs no tokens, so `tokens: false`
    /// lets code that the last call produced be verified even when that call used up the cap.
    func checkStop(tokens: Bool = true) throws {
        if cancel.isCancelled { throw Stop(end: .cancelled, detail: "cancelled") }
        if time.instant >= spec.deadline { throw Stop(end: .deadline, detail: "deadline reached") }
        if tokens && spent >= spec.tokenCap { throw Stop(end: .capReached, detail: "token cap \(spec.tokenCap) reached") }
    }

    /// One model call in `role`, inside what is left of the cap. With `untilCode`, the stream is
    /// stopped as soon as the reply holds a complete code block: the rest would be paid for and
    /// thrown away (small models ramble on to `max_tokens`).
    func call(_ role: Role, _ messages: [ChatMessage], maxTokens: Int? = nil, untilCode: Bool = false,
              until stopRule: ((String) -> Bool)? = nil) throws -> String {
        try checkStop()
        let untilCode = untilCode || stopRule != nil
        let complete = stopRule ?? CodeExtraction.hasCompleteBlock
        var maxTokens = maxTokens ?? (untilCode ? configuration.maxTokensPerCall : nil)
        if let context = configuration.contextTokens {
            let room = context - estimator.estimate(messages)
            guard room >= 16 else {
                throw Stop(end: .error, detail: "the \(role) prompt (about \(context - room) tokens) does not fit the \(context)-token context")
            }
            maxTokens = min(maxTokens ?? room, room)
        }
        let before = spent
        var messages = messages
        if !configuration.usesSystemMessages(for: modelName) { messages = PromptLayout.foldingSystemMessages(messages) }
        var request = ChatRequest(
            model: modelName, messages: messages, temperature: configuration.temperature, seed: spec.seed,
            maxCompletionTokens: maxTokens)
        if role == .agent || role == .corrector { request.responseFormat = responseFormat }
        if role == .judge { request.responseFormat = KindPrompts.verdictFormat }
        let callFlag = CancellationFlag(parent: cancel)
        let callNumber = transcript.request(role, messages, maxTokens: maxTokens)
        let callStarted = time.instant
        /// Why the client stopped the stream itself (nil: the server ended it).
        var stoppedBecause: String?
        var firstToken: Double?
        var text = ""
        var haveCode = false
        var lineCounts: [Substring: Int] = [:]
        var partialLine = ""
        do {
            let reply = try chat.complete(
                request, allowance: spec.tokenCap - before, deadline: spec.deadline, cancel: callFlag
            ) { [self] p in
                report(before + p.tokensSoFar)
                if firstToken == nil && !p.delta.isEmpty { firstToken = (time.instant - callStarted).seconds }
                guard untilCode, !haveCode else { return }
                text += p.delta
                if p.delta.contains("`") && complete(text) {
                    haveCode = true
                    stoppedBecause = "stopped: the reply held a complete block"
                    callFlag.cancel()
                }
                // Count each finished line; a loop repeating one line is cut off.
                partialLine += p.delta
                guard partialLine.contains("\n") else { return }
                let lines = partialLine.split(separator: "\n", omittingEmptySubsequences: false)
                partialLine = String(lines.last ?? "")
                for line in lines.dropLast() {
                    let trimmed = line.drop { $0 == " " }
                    guard trimmed.count >= 16 else { continue }
                    lineCounts[trimmed, default: 0] += 1
                    if lineCounts[trimmed]! >= configuration.repeatedLineLimit {
                        haveCode = true
                        stoppedBecause = "stopped: a line repeated \(configuration.repeatedLineLimit) times"
                        callFlag.cancel()
                        return
                    }
                }
            }
            usage[role, default: .zero] += reply.usage
            report(spent, force: true)
            transcript.reply(callNumber, text: reply.text, usage: reply.usage, seconds: (time.instant - callStarted).seconds,
                             firstToken: reply.firstTokenSeconds ?? firstToken, finish: reply.finishReason)
            return reply.text
        } catch {
            usage[role, default: .zero] += error.spent
            report(spent, force: true)
            let stopped = error.code == .cancelled && haveCode && !cancel.isCancelled
            transcript.reply(callNumber, text: error.partialText, usage: error.spent, seconds: (time.instant - callStarted).seconds,
                             firstToken: firstToken, finish: stopped ? stoppedBecause : "\(error.code)", error: stopped ? nil : "\(error)")
            if stopped {
                return error.partialText
            }
            switch error.code {
            case .cancelled: throw Stop(end: .cancelled, detail: "cancelled during the \(role) call")
            case .deadlineExceeded: throw Stop(end: .deadline, detail: "deadline reached during the \(role) call")
            case .budgetExhausted:
                throw Stop(end: .capReached, detail: "token cap \(spec.tokenCap) reached before the \(role) call (\(error.message))")
            default: throw Stop(end: .error, detail: "\(role) call failed: \(error)")
            }
        }
    }

    private struct Run {
        var passed: Bool
        var report: String
        var output: String
    }

    /// Saves `code` as solution.py, runs it, then the verifier. Paths in tracebacks are made
    /// relative to the workspace: shorter prompts, and the host's layout stays out of them.
    private func execute(_ code: String, in sandbox: Sandbox) throws -> Run {
        let result = try executeWithAbsolutePaths(code, in: sandbox)
        let prefix = sandbox.workspace.path + "/"
        let run = Run(
            passed: result.passed, report: result.report.replacingOccurrences(of: prefix, with: ""),
            output: result.output.replacingOccurrences(of: prefix, with: ""))
        if !run.passed { lastFailure = Self.lastLine(of: run.output) }
        return run
    }

    /// The last non-blank line of a run's output (the exception, for a traceback), shortened.
    static func lastLine(of output: String) -> String {
        let line = output.split(separator: "\n").last { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? "no output"
        let text = line.trimmingCharacters(in: .whitespaces)
        return text.count > 160 ? String(text.prefix(160)) + "…" : text
    }

    private func executeWithAbsolutePaths(_ code: String, in sandbox: Sandbox) throws -> Run {
        try checkStop(tokens: false)
        try sandbox.write("solution.py", code)
        let cancelled: @Sendable () -> Bool = { [cancel] in cancel.isCancelled }
        let run = sandbox.runPython(file: "solution.py", cancel: cancelled, deadline: spec.deadline)
        transcript.action(kind: "solution", label: "solution.py", status: run.summary, exitCode: run.exitCode, seconds: run.seconds, input: code,
                          output: Self.relative(run.output, to: sandbox))
        try checkStop(tokens: false)
        guard run.succeeded else {
            return Run(passed: false, report: "Running solution.py failed (\(run.summary)):\n```\n\(run.output)\n```", output: run.output)
        }
        guard let verify = spec.verify else {
            return Run(passed: true, report: "solution.py ran (exit 0).", output: run.output)
        }
        let check = sandbox.runVerifier(verify, cancel: cancelled, deadline: spec.deadline)
        transcript.verifier(passed: check.succeeded, summary: check.succeeded ? "" : check.summary, seconds: check.seconds,
                            output: Self.relative(check.output, to: sandbox))
        try checkStop(tokens: false)
        if check.succeeded { return Run(passed: true, report: "verified", output: check.output) }
        return Run(
            passed: false,
            report: "solution.py ran, but the check failed (\(check.summary)):\n```\n\(check.output)\n```",
            output: run.output + check.output)
    }

    /// Runs `code`. With the corrector on, its mechanical step follows a failure: while the
    /// run fails with a NameError that an import fixes (``ImportRepair``), the import is added
    /// and the code run again — at most three imports, no tokens. Returns the code that ran last.
    private func executeFixingImports(_ code: String, in sandbox: Sandbox, corrector: Bool) throws -> (code: String, result: Run, fixed: Bool) {
        var code = code
        var result = try execute(code, in: sandbox)
        var added = 0
        while corrector, !result.passed, added < 3,
              let fix = ImportRepair.patch(code, output: result.output, task: spec.prompt, inputs: spec.inputs) {
            added += 1
            importsAdded.append(fix.line)
            code = fix.code
            result = try execute(code, in: sandbox)
        }
        return (code, result, added > 0)
    }

    private static func key(_ code: String) -> String {
        code.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    private func loop(_ sandbox: Sandbox, workspace: AttemptWorkspace?) throws -> (code: String, detail: String) {
        let options = spec.scaffold
        // Each turn's budget tracker is a system message before the message it goes with
        // (``PromptLayout``): what was sent before stays byte-identical, for prefix caches.
        let task = Prompts.task(spec.prompt, inputs: spec.inputs)
        var history: [ChatMessage] = []
        var noCodeTurns = 0
        let firstTracker = tracker(turn: 1)
        for turn in 1...max(1, options.maxTurns) {
            try checkStop()
            if options.summarizer { try summarizeIfNeeded(&history, task: task) }
            if turn > 1 { PromptLayout.addTracker(tracker(turn: turn), to: &history) }
            let head = PromptLayout.opening(instructions: Prompts.agentSystem, example: Prompts.example, firstTracker: firstTracker,
                                            task: summary.map { task + "\n\n" + $0 } ?? task)
            if let context = configuration.contextTokens {
                // Keep room for a reply: drop the oldest exchange while the prompt is too long.
                while history.count >= 2, estimator.estimate(head + history) > context - min(512, context / 4) {
                    history.removeFirst(PromptLayout.oldestTurn(in: history))
                    droppedTurns += 1
                }
            }
            let reply = try call(.agent, head + history, untilCode: true)
            history.append(.assistant(reply))
            // Agent work (a dispatch with `work`): file and sh blocks act before the module runs.
            let side = try workspace.map { try act(on: reply, sandbox: sandbox, workspace: $0, kind: .code, schema: nil).lines } ?? []
            var code = CodeExtraction.pythonBlock(in: reply)
            var patched = false
            if code == nil {
                noCodeTurns += 1
                if options.corrector && noCodeTurns >= 2 {
                    correctorCalls += 1
                    let fix = try call(.corrector, [
                        .system(Prompts.correctorSystem),
                        .user(Prompts.correctionWithoutCode(task: spec.prompt, inputs: spec.inputs, lastReply: reply)),
                    ], untilCode: true)
                    code = CodeExtraction.pythonBlock(in: fix)
                    patched = code != nil
                }
                guard let found = code else {
                    history.append(.user(Prompts.observation((side + [Prompts.noCode]).joined(separator: "\n"))))
                    continue
                }
                noCodeTurns = 0
                history[history.count - 1] = .assistant("```python\n\(found)```")
            } else {
                noCodeTurns = 0
            }
            var (current, result, fixed) = try executeFixingImports(code!, in: sandbox, corrector: options.corrector)
            if fixed { history[history.count - 1] = .assistant("```python\n\(current)```") }
            if result.passed {
                return (current, "verified on turn \(turn)" + (fixed ? " (corrector added an import)" : patched ? " (corrector's code)" : ""))
            }
            let repeats = failures[Self.key(current), default: 0]
            failures[Self.key(current), default: 0] += 1
            if options.corrector {
                correctorCalls += 1
                var output = result.output
                if repeats > 0 { output += "\n(This exact code already failed \(repeats) time(s) before: change the approach.)" }
                let fix = try call(.corrector, [
                    .system(Prompts.correctorSystem),
                    .user(Prompts.correction(task: spec.prompt, inputs: spec.inputs, code: current, output: output)),
                ], untilCode: true)
                if let patch = CodeExtraction.pythonBlock(in: fix), Self.key(patch) != Self.key(current) {
                    (current, result, fixed) = try executeFixingImports(patch, in: sandbox, corrector: true)
                    history[history.count - 1] = .assistant("```python\n\(current)```")
                    if result.passed {
                        return (current, "verified on turn \(turn) (corrector's patch" + (fixed ? ", an import added" : "") + ")")
                    }
                    failures[Self.key(current), default: 0] += 1
                }
            }
            if turn < options.maxTurns {
                history.append(.user(Prompts.observation((side + [result.report]).joined(separator: "\n"))))
            }
        }
        throw Stop(end: .failed, detail: "no verified solution in \(options.maxTurns) turn(s)")
    }

    /// Replaces the middle of the history by one summary once it is long enough. The task and the
    /// last ``ScaffoldConfiguration/keepLast`` messages stay verbatim; artifacts are extracted
    /// mechanically as well, so the summary keeps them whatever the model writes.
    func summarizeIfNeeded(_ history: inout [ChatMessage], task: String) throws {
        // Counted in replies and observations: the trackers between them are not turns' content.
        guard PromptLayout.turnMessages(in: history) >= configuration.summarizeAfterMessages else { return }
        let prompt = [ChatMessage.system(Prompts.agentSystem)] + Prompts.example + [.user(task + (summary ?? ""))] + history
        guard estimator.estimate(prompt) >= configuration.summarizeAboveTokens else { return }
        // Cut where a turn starts, so the kept tail begins with a reply; trackers are left out of the log.
        let cut = PromptLayout.turnStart(in: history, atMost: PromptLayout.index(keepingLast: configuration.keepLast, of: history))
        guard cut >= 2 else { return }
        let middle = history[..<cut].filter { $0.role != .system }
        let transcript = middle.map { "[\($0.role.rawValue)]\n\($0.content)" }.joined(separator: "\n\n")
        let earlier = summary.map { "Earlier summary:\n\($0)\n\n" } ?? ""
        summaries += 1
        let text = try call(.summarizer, [
            .system(Prompts.summarizerSystem), .user(earlier + "Work log:\n" + transcript),
        ], maxTokens: configuration.summaryMaxTokens)
        var artifacts = ArtifactExtractor.extract(from: (summary ?? "") + "\n" + transcript)
        artifacts.removeAll { $0 == "solution.py" || $0 == "_verify.py" }
        let repeated = failures.filter { $0.value >= 2 }.map { "- this code failed \($0.value) times: `\($0.key.split(separator: "\n").first ?? "")`…" }
        var message = "Summary of earlier turns:\n\(text.trimmingCharacters(in: .whitespacesAndNewlines))"
        if !artifacts.isEmpty { message += "\nArtifacts (verbatim):\n" + artifacts.map { "- \($0)" }.joined(separator: "\n") }
        if !repeated.isEmpty { message += "\nRepeated failed actions (do not repeat):\n" + repeated.joined(separator: "\n") }
        summary = message
        history.removeFirst(cut)
    }
}
