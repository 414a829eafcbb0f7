import Foundation

/// What a subtask produces (DESIGN.md §3). `code` is the default and the original behaviour.
public enum SubtaskKind: String, Codable, Sendable, CaseIterable {
    /// One Python module (`solution.py` in the workspace), importable by dependants.
    case code
    /// Edits to a workspace of many files, in any language; the verifier runs there.
    case files
    /// A written answer, saved as `answer.md`.
    case answer
    /// A JSON value, saved as `answer.json`, checked against the subtask's `schema:`.
    case json

    /// The file that holds the result of an `answer` or `json` subtask.
    public var answerFile: String? {
        switch self {
        case .answer: return "answer.md"
        case .json: return "answer.json"
        case .code, .files: return nil
        }
    }
}

/// What the agent may do in a turn besides writing files and answering.
public enum AgentAction: String, Codable, Sendable, CaseIterable {
    /// ```` ```python ```` blocks are run.
    case python
    /// ```` ```sh ```` blocks are run with `/bin/sh`.
    case shell
}

/// An LLM judge for a subtask's result: an attempt of its own on a worker of `model`.
public struct JudgeSpec: Codable, Sendable, Equatable {
    public var model: String
    /// What a good result is, in words; the judge scores the result against it.
    public var rubric: String
    /// The lowest score in [0, 1] that passes.
    public var pass: Double

    public init(model: String, rubric: String, pass: Double = 0.7) {
        self.model = model
        self.rubric = rubric
        self.pass = pass
    }
}

/// A file or directory a workflow hands to its attempts, copied under `inputs/NAME/` in each
/// workspace (or made the workspace by `workspace: {from: NAME}`).
public struct WorkflowInput: Codable, Sendable, Equatable {
    public var name: String
    /// Where the submitting client reads it, relative to the workflow file's directory (or
    /// absolute); nil once packed.
    public var path: String?
    /// The packed tree (gzip-compressed tar), once the client has packed it.
    public var blob: Blob?
    /// 1-based line in the workflow file, for messages.
    public var line: Int?

    public init(name: String, path: String? = nil, blob: Blob? = nil, line: Int? = nil) {
        self.name = name
        self.path = path
        self.blob = blob
        self.line = line
    }
}

extension Subtask {
    /// The module file of a `code` subtask as dependants import it: `add.py`; an expansion
    /// `square[2]` of a `foreach` is `square_2.py`.
    public var moduleFile: String { Self.moduleFile(for: id) }

    public static func moduleFile(for id: String) -> String {
        var name = id
        if name.hasSuffix("]"), let open = name.lastIndex(of: "[") {
            let index = name[name.index(after: open)..<name.index(before: name.endIndex)]
            name = String(name[..<open]) + "_" + index
        }
        return name + ".py"
    }

    /// The files kept on success when `outputs:` is not given: the module, `answer.md`,
    /// `answer.json`; for `files`, nil: every file created or changed outside `inputs/`.
    public var defaultOutputs: [String]? {
        switch kind {
        case .code: return ["solution.py"]
        case .answer: return ["answer.md"]
        case .json: return ["answer.json"]
        case .files: return nil
        }
    }
}
