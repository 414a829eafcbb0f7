import AgentFlowCore
import Archive
import Foundation

/// What acting on one reply did: an observation line per block, and what the loop needs to
/// decide whether to check.
struct TurnActions {
    var lines: [String] = []
    /// A block that could be acted on (run, written, answered).
    var usable = false
    /// The final answer given this turn (`answer.md` / `answer.json` written).
    var answered = false
    /// The first failed step (a block that ran and failed, an invalid answer) and what happened.
    var failure: (step: String, output: String)?
    /// Blocks past ``Limits/maxBlocksPerReply``, not acted on.
    var ignored = 0

    mutating func merge(_ other: TurnActions) {
        lines += other.lines
        usable = usable || other.usable
        answered = answered || other.answered
        failure = failure ?? other.failure
        ignored += other.ignored
    }
}

/// Acting on the blocks of a reply (DESIGN.md §7), in order, inside the workspace: each block
/// runs in the sandbox or writes a file through ``SafeDirectory``; whatever it is, it ends in an
/// observation line, never in a crash or a write outside the workspace.
extension AttemptRun {
    /// Most bytes of one block's output shown in the observation (its tail).
    static let shownOutputBytes = 1500

    func act(on reply: String, sandbox: Sandbox, workspace: AttemptWorkspace, kind: SubtaskKind, schema: JSONSchema?) throws -> TurnActions {
        var blocks = ReplyBlock.parse(reply)
        var result = TurnActions()
        if blocks.isEmpty && kind == .json, let bare = try? JSONValue.parse(reply) {
            // A reply that is one JSON value is the answer.
            blocks = [ReplyBlock(kind: .json, body: bare.text, closed: true)]
        }
        if blocks.count > Limits.maxBlocksPerReply {
            result.ignored = blocks.count - Limits.maxBlocksPerReply
            blocks = Array(blocks.prefix(Limits.maxBlocksPerReply))
        }
        let actions = spec.work?.actions ?? [.python]
        for (i, block) in blocks.enumerated() {
            try checkStop(tokens: false)
            if kind == .code {
                // In a code subtask the python block is the module (the loop runs it); only
                // file and sh blocks act here.
                switch block.kind {
                case .file, .shell: break
                default: continue
                }
            }
            let name = "\(block.label) (block \(i + 1))"
            // Every block acted on is in the transcript: a run records itself (exit status and
            // time); anything else (written, answered, refused, ignored) with its observation.
            let linesBefore = result.lines.count
            let entriesBefore = transcript.count
            defer {
                if transcript.count == entriesBefore, result.lines.count > linesBefore {
                    let said = result.lines[linesBefore...].joined(separator: "\n")
                    let status = said.hasPrefix(name + ": ") ? String(said.dropFirst(name.count + 2)) : said
                    transcript.action(kind: block.kind.transcriptKind, label: name, status: status, input: block.body)
                }
            }
            guard block.closed else {
                result.lines.append("\(name): not closed — the reply ended inside it (too long?); it was not used")
                continue
            }
            switch block.kind {
            case .python:
                guard actions.contains(.python) else {
                    result.lines.append("\(name): not run — python is not enabled for this subtask" + (actions.contains(.shell) ? "; use ```sh" : ""))
                    continue
                }
                try run(block, name: name, argv: nil, sandbox: sandbox, workspace: workspace, into: &result)
            case .shell:
                guard actions.contains(.shell) else {
                    result.lines.append("\(name): not run — shell commands are not enabled for this subtask" + (actions.contains(.python) ? "; use ```python" : ""))
                    continue
                }
                try run(block, name: name, argv: ["/bin/sh"], sandbox: sandbox, workspace: workspace, into: &result)
            case .file(let path):
                write(block.body, to: path, name: name, workspace: workspace, into: &result)
            case .answer:
                guard kind == .answer else {
                    result.lines.append("\(name): ignored — an answer block is the result of an answer subtask; this one is \(kind.rawValue)")
                    continue
                }
                let text = block.body.trimmingCharacters(in: .whitespacesAndNewlines)
                if text.isEmpty {
                    result.lines.append("\(name): the answer is empty")
                    result.failure = result.failure ?? ("```answer\n```", "the answer was empty")
                    continue
                }
                result.usable = true
                saveAnswer(Data((text + "\n").utf8), file: "answer.md", name: name, workspace: workspace, into: &result)
            case .json, .unlabeled:
                if kind == .json, block.kind == .json || (try? JSONValue.parse(block.body)) != nil {
                    answerJSON(block.body, name: name, schema: schema, workspace: workspace, into: &result)
                } else if block.kind == .json {
                    result.lines.append("\(name): ignored — a json block is the result of a json subtask; this one is \(kind.rawValue) (write files with ```file:PATH)")
                } else {
                    result.lines.append("\(name): ignored — a block needs a kind: python, sh, file:PATH, answer or json")
                }
            case .unknown(let language):
                result.lines.append("\(name): ignored — '\(Limits.printable(language, limit: 30).dropFirst().dropLast())' is not a block kind here (use python, sh, file:PATH, answer or json)")
            }
        }
        if result.ignored > 0 {
            result.lines.append("\(result.ignored) more block(s) ignored: at most \(Limits.maxBlocksPerReply) are acted on per reply")
        }
        return result
    }

    /// Runs a python block (argv nil) or a shell block from a file in the private directory.
    private func run(_ block: ReplyBlock, name: String, argv: [String]?, sandbox: Sandbox, workspace: AttemptWorkspace,
                     into result: inout TurnActions) throws {
        result.usable = true
        let file = "\(AttemptWorkspace.privateDirectory)/action.\(argv == nil ? "py" : "sh")"
        do {
            try sandbox.write(file, Data(block.body.utf8))
        } catch {
            result.lines.append("\(name): not run — \(error)")
            return
        }
        let cancelled: @Sendable () -> Bool = { [cancel] in cancel.isCancelled }
        let run = argv == nil
            ? sandbox.runPython(file: file, cancel: cancelled, deadline: spec.deadline)
            : sandbox.run((argv ?? []) + [file], cancel: cancelled, deadline: spec.deadline)
        let output = Self.relative(run.output, to: sandbox).replacingOccurrences(of: file, with: argv == nil ? "<python block>" : "<sh block>")
        transcript.action(kind: block.kind.transcriptKind, label: name, status: run.summary, exitCode: run.exitCode, seconds: run.seconds,
                          input: block.body, output: output)
        try checkStop(tokens: false)
        let shown = Self.tail(output)
        result.lines.append("\(name): \(run.summary)" + (shown.isEmpty ? " (no output)" : "\n```\n\(shown)\n```"))
        if !run.succeeded {
            lastFailure = Self.lastLine(of: output)
            result.failure = result.failure ?? ("\(block.label)\n\(block.body)\n```", "\(run.summary)\n\(shown)")
        }
    }

    private func write(_ body: String, to path: String, name: String, workspace: AttemptWorkspace, into result: inout TurnActions) {
        let data = Data((body.hasSuffix("\n") || body.isEmpty ? body : body + "\n").utf8)
        if data.count > Limits.maxFileBlockBytes {
            result.lines.append("\(name): not written — \(data.count) bytes, more than \(Limits.maxFileBlockBytes) per file block")
            return
        }
        guard case .success = WorkspacePath.components(path) else {
            if case .failure(let problem) = WorkspacePath.components(path) {
                result.lines.append("\(name): refused — \(problem.message)")
                result.failure = result.failure ?? ("```file:\(path)", "refused: \(problem.message)")
            }
            return
        }
        guard workspace.isWritable(path) else {
            result.lines.append("\(name): refused — inputs/ is read-only (write your files elsewhere in the workspace)")
            result.failure = result.failure ?? ("```file:\(path)", "refused: inputs/ is read-only")
            return
        }
        do {
            try workspace.sandbox.write(WorkspacePath.normalized(path) ?? path, data)
            result.usable = true
            result.lines.append("\(name): wrote \(WorkspacePath.normalized(path) ?? path) (\(data.count) bytes)")
        } catch {
            result.lines.append("\(name): refused — \(error)")
            result.failure = result.failure ?? ("```file:\(path)", "refused: \(error)")
        }
    }

    private func answerJSON(_ body: String, name: String, schema: JSONSchema?, workspace: AttemptWorkspace, into result: inout TurnActions) {
        result.usable = true
        let value: JSONValue
        do {
            value = try JSONValue.parse(body)
        } catch {
            lastFailure = "the answer is not valid JSON (\(error))"
            result.lines.append("\(name): not valid JSON — \(error)")
            result.failure = result.failure ?? ("```json\n\(body.prefix(2000))\n```", "not valid JSON: \(error)")
            return
        }
        if let problems = schema?.problems(in: value), !problems.isEmpty {
            lastFailure = "the answer does not match the schema: " + problems[0]
            let list = problems.prefix(8).map { "- " + $0 }.joined(separator: "\n")
            result.lines.append("\(name): does not match the schema:\n\(list)")
            result.failure = result.failure ?? ("```json\n\(body.prefix(2000))\n```", "does not match the schema:\n\(list)")
            return
        }
        saveAnswer(Data(value.prettyText.utf8), file: "answer.json", name: name, workspace: workspace, into: &result)
    }

    private func saveAnswer(_ data: Data, file: String, name: String, workspace: AttemptWorkspace, into result: inout TurnActions) {
        do {
            try workspace.sandbox.write(file, data)
            result.answered = true
            result.lines.append("\(name): saved as \(file) (\(data.count) bytes)")
        } catch {
            result.lines.append("\(name): could not be saved — \(error)")
        }
    }

    /// Paths in outputs made relative to the workspace: shorter prompts, and the host's layout stays out.
    static func relative(_ output: String, to sandbox: Sandbox) -> String {
        output.replacingOccurrences(of: sandbox.workspace.path + "/", with: "")
    }

    /// The last ``shownOutputBytes`` of `output`, on a line boundary where one is near.
    static func tail(_ output: String) -> String {
        let trimmed = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count > shownOutputBytes else { return trimmed }
        let cut = String(decoding: Array(trimmed.utf8).suffix(shownOutputBytes), as: UTF8.self)
        let fromLine = cut.firstIndex(of: "\n").map { String(cut[cut.index(after: $0)...]) } ?? cut
        return "… (\(trimmed.utf8.count - fromLine.utf8.count) bytes before)\n" + fromLine
    }
}
