import Foundation

/// The part of an attempt's dispatch that describes agent work beyond one Python module
/// (DESIGN.md §3, §7). `nil` on ``AttemptSpec/work`` is a plain `code` subtask as before, so
/// such dispatches stay as small as they were.
///
/// Inputs travel content-addressed: ``inputs`` names each tree by the SHA-256 of its packed
/// form; ``blobs`` carries bodies. A coordinator may leave out bodies it has already sent to
/// the same worker connection; the worker keeps received blobs in a cache and asks for missing
/// ones (``WorkerMessage`` `fetchBlobs`) before the attempt starts. A worker never reads the
/// submitter's disk.
public struct AttemptWork: Codable, Sendable, Equatable {
    public var kind: SubtaskKind
    public var actions: [AgentAction]
    /// The `json` kind's schema, as JSON text.
    public var schema: String?
    /// Globs of the files kept on success; nil: the kind's default.
    public var outputs: [String]?
    /// The file a `code` subtask's module is also kept as for dependants (`add.py`, `square_2.py`).
    public var module: String?
    /// The input whose tree is the workspace (`workspace: {from:}`); it is not also under `inputs/`.
    public var workspaceFrom: String?
    /// Trees to place in the workspace, in order.
    public var inputs: [AttemptInput]
    /// Bodies of (some of) the inputs' blobs.
    public var blobs: [Blob]
    /// How each need's text output (``AttemptSpec/inputs``) is laid out in the workspace.
    public var needs: [NeedLayout]
    /// Set on a judge attempt: score the judged result (its outputs are the inputs) against the rubric.
    public var judge: JudgeTask?

    public init(
        kind: SubtaskKind = .code, actions: [AgentAction] = [.python], schema: String? = nil, outputs: [String]? = nil,
        module: String? = nil, workspaceFrom: String? = nil, inputs: [AttemptInput] = [], blobs: [Blob] = [],
        needs: [NeedLayout] = [], judge: JudgeTask? = nil
    ) {
        self.kind = kind
        self.actions = actions
        self.schema = schema
        self.outputs = outputs
        self.module = module
        self.workspaceFrom = workspaceFrom
        self.inputs = inputs
        self.blobs = blobs
        self.needs = needs
        self.judge = judge
    }
}

/// One tree placed in an attempt's workspace: `inputs/NAME/` for a workflow input or a need's
/// outputs, or the workspace root (`at` empty) for `workspace: {from: NAME}`.
public struct AttemptInput: Codable, Sendable, Equatable {
    public var name: String
    public var sha256: String
    /// Packed size in bytes.
    public var size: Int
    /// Directory relative to the workspace; empty for the root.
    public var at: String
    /// Whether the agent's changes to it are undone before each check (inputs are read-only).
    public var readOnly: Bool

    public init(name: String, sha256: String, size: Int, at: String, readOnly: Bool = true) {
        self.name = name
        self.sha256 = sha256
        self.size = size
        self.at = at
        self.readOnly = readOnly
    }
}

/// Where a need's output goes in a dependant's workspace: under `inputs/ID/` as the file its
/// kind produces, and a `code` need's module also at the root (importable, as before).
public struct NeedLayout: Codable, Sendable, Equatable {
    public var id: String
    public var kind: SubtaskKind
    /// The `code` need's module file (`add.py`).
    public var module: String?

    public init(id: String, kind: SubtaskKind, module: String? = nil) {
        self.id = id
        self.kind = kind
        self.module = module
    }
}

/// A judge attempt's task: the rubric and the passing score. The judged subtask's prompt is
/// the attempt's prompt; its outputs are the attempt's inputs (at the workspace root).
public struct JudgeTask: Codable, Sendable, Equatable {
    public var rubric: String
    public var pass: Double
    /// The attempt whose result is judged.
    public var judged: AttemptID

    public init(rubric: String, pass: Double, judged: AttemptID) {
        self.rubric = rubric
        self.pass = pass
        self.judged = judged
    }
}

/// The files an attempt kept, as it reports them: a manifest, and the files packed
/// (gzip-compressed tar) in one blob. Bounded by ``Limits/maxOutputBytes`` and
/// ``Limits/maxOutputFiles``.
public struct OutputBundle: Codable, Sendable, Equatable {
    public var files: [OutputFile]
    public var blob: Blob

    public init(files: [OutputFile], blob: Blob) {
        self.files = files
        self.blob = blob
    }

    public var totalBytes: Int { files.reduce(0) { $0 + $1.size } }
}

/// One kept file: workspace-relative path, size, SHA-256 of its content.
public struct OutputFile: Codable, Sendable, Equatable {
    public var path: String
    public var size: Int
    public var sha256: String

    public init(path: String, size: Int, sha256: String) {
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// What one subtask kept: the attempt it came from, its bundle's SHA-256, and the files.
public struct SubtaskOutputs: Codable, Sendable, Equatable {
    public var subtask: String
    public var n: Int
    /// The bundle's name; empty when the files are not in a stored bundle (a `code` subtask's
    /// module from before bundles, given from its text output).
    public var bundle: String
    public var files: [OutputFile]

    public init(subtask: String, n: Int, bundle: String, files: [OutputFile]) {
        self.subtask = subtask
        self.n = n
        self.bundle = bundle
        self.files = files
    }
}

/// A judge's verdict on a result.
public struct Judgement: Codable, Sendable, Equatable {
    /// In [0, 1].
    public var score: Double
    public var passed: Bool
    /// The judge's reason, shortened.
    public var reason: String

    public init(score: Double, passed: Bool, reason: String) {
        self.score = score
        self.passed = passed
        self.reason = reason
    }
}

extension Workflow {
    /// Most bytes of blob bodies one dispatch carries (base64 on the wire: ~11 MiB, under the
    /// sockets' 16 MiB frames).
    public static let maxCarriedBytes = Limits.maxInputBytes

    /// What a dispatch of `subtask` carries beyond the legacy fields, or nil for a plain `code`
    /// subtask in a workflow without inputs (its dispatch stays as it was). Input bodies are all
    /// attached; `needKinds` maps each need to its subtask (for the layout of its text output).
    /// `needOutputs`: the packed outputs of the subtask's needs that have them, placed under
    /// `inputs/<need>/`.
    public func work(for subtask: Subtask, needOutputs: [String: Blob] = [:]) -> AttemptWork? {
        let needLayouts = subtask.needs.compactMap { id in self.subtask(id).map { NeedLayout(id: id, kind: $0.kind, module: $0.kind == .code ? $0.moduleFile : nil) } }
        let plain = subtask.kind == .code && subtask.actions == [.python] && subtask.outputs == nil && subtask.judge == nil
            && inputs.isEmpty && needLayouts.allSatisfy { $0.kind == .code && $0.module == "\($0.id).py" && needOutputs[$0.id] == nil }
        if plain { return nil }
        var placed: [AttemptInput] = []
        var blobs: [Blob] = []
        var carried = 0
        // Bodies ride along while they fit one message; the worker asks for the rest by name.
        func carry(_ blob: Blob) {
            guard !blobs.contains(blob), carried + blob.data.count <= Self.maxCarriedBytes else { return }
            carried += blob.data.count
            blobs.append(blob)
        }
        for input in inputs {
            guard let blob = input.blob else { continue }
            let root = input.name == subtask.workspaceFrom
            placed.append(AttemptInput(name: input.name, sha256: blob.sha256, size: blob.data.count, at: root ? "" : "inputs/\(input.name)", readOnly: !root))
            carry(blob)
        }
        for need in subtask.needs {
            guard let blob = needOutputs[need] else { continue }
            placed.append(AttemptInput(name: need, sha256: blob.sha256, size: blob.data.count, at: "inputs/\(need)"))
            carry(blob)
        }
        return AttemptWork(
            kind: subtask.kind, actions: subtask.actions, schema: subtask.schema?.source.text, outputs: subtask.outputs,
            module: subtask.kind == .code ? subtask.moduleFile : nil, workspaceFrom: subtask.workspaceFrom, inputs: placed, blobs: blobs,
            needs: needLayouts)
    }
}
