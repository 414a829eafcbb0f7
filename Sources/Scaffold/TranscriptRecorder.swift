import AgentFlowCore
import Foundation
import LLM

/// Records one attempt's transcript (``AgentFlowCore/TranscriptEntry``) as it happens and hands
/// each entry to `sink` at once — the worker streams them to the coordinator with its progress,
/// so what happened before a crash is already there.
///
/// Every text is redacted first (``AgentFlowCore/SecretRedactor``: the backend's key and secret
/// headers, `sk-…` and `Bearer …` strings). Texts are kept whole until they reach `cap` bytes;
/// the entry that crosses it keeps its head, and from then on each model call, action and
/// verifier run is still recorded — role, tokens, times, finish reason, exit status — with its
/// texts left out (`omitted` counts their bytes; a note says where the cap was reached). After
/// ``AgentFlowCore/TranscriptLimits/maxEntries`` entries, one last note ends it.
///
/// Not thread-safe: it lives on its attempt's thread.
final class TranscriptRecorder {
    private let cap: Int
    private let redact: (String) -> String
    private let sink: ([TranscriptEntry]) -> Void
    /// Stamps each entry with its wall-clock reading (for people reading the transcript).
    private let time: any TimeSource
    private var seq = 0
    private var used = 0
    private var capReached = false
    private var full = false
    /// Messages already recorded, by role and text: a request names them by index.
    private var messageIndex: [String: Int] = [:]
    private var messages = 0
    private var calls = 0

    /// Longest output kept of one action or verifier run (its tail): one flood must not use the
    /// whole cap. The model saw less (``AttemptRun/shownOutputBytes``).
    static let maxOutputBytes = 16 << 10

    /// - Parameters:
    ///   - cap: bytes of text to keep; 0 records nothing.
    ///   - redact: takes the backend's own secrets out (``LLM/ChatClient/Configuration/redact(_:)``);
    ///     the well-known key formats are taken out as well.
    ///   - enabled: record at all (default: when `cap` > 0); with a cap of 0, every text is left out.
    init(cap: Int, enabled: Bool? = nil, redact: @escaping (String) -> String = { $0 }, time: any TimeSource = SystemTime(),
         sink: @escaping ([TranscriptEntry]) -> Void) {
        self.cap = max(0, cap)
        self.isOn = enabled ?? (cap > 0)
        // Nothing to keep: no note that a cap was reached.
        capReached = cap <= 0
        let formats = SecretRedactor()
        self.redact = { formats.redact(redact($0)) }
        self.time = time
        self.sink = sink
    }

    let isOn: Bool

    /// A model call is about to be sent: its messages (new ones recorded once) and its number.
    func request(_ role: Role, _ request: [ChatMessage], maxTokens: Int?) -> Int {
        guard isOn else { return 0 }
        calls += 1
        var indices: [Int] = []
        for m in request {
            let key = m.role.rawValue + "\u{0}" + m.content
            if let i = messageIndex[key] {
                indices.append(i)
                continue
            }
            let i = messages
            messages += 1
            messageIndex[key] = i
            let (content, omitted) = fit(m.content)
            emit(.message(index: i, role: m.role.rawValue, content: content, omitted: omitted))
            indices.append(i)
        }
        emit(.request(call: calls, role: role.rawValue, messages: indices, maxTokens: maxTokens))
        return calls
    }

    /// How call `call` ended.
    func reply(_ call: Int, text: String, usage: ChatUsage, seconds: Double, firstToken: Double?, finish: String?, error: String? = nil) {
        guard isOn else { return }
        let (kept, omitted) = fit(text)
        emit(.reply(call: call, ModelReply(text: kept, tokensIn: usage.promptTokens, tokensOut: usage.completionTokens, seconds: seconds,
                                           firstTokenSeconds: firstToken, finishReason: finish, error: error.map { redact(String($0.prefix(2000))) },
                                           omitted: omitted)))
    }

    /// A block acted on, or a `code` subtask's module run.
    func action(kind: String, label: String, status: String, exitCode: Int32? = nil, seconds: Double = 0, input: String, output: String = "") {
        guard isOn else { return }
        let (i, o1) = fit(input)
        let (o, o2) = fit(Self.tail(output))
        emit(.action(ActionRecord(kind: kind, label: label, status: redact(String(status.prefix(2000))), exitCode: exitCode.map(Int.init), seconds: seconds,
                                  input: i, output: o, omitted: o1 + o2)))
    }

    /// A verifier run.
    func verifier(passed: Bool, summary: String, seconds: Double, output: String) {
        guard isOn else { return }
        let (o, omitted) = fit(Self.tail(output))
        emit(.verifier(VerifierRecord(passed: passed, summary: summary, seconds: seconds, output: o, omitted: omitted)))
    }

    /// The estimator's calibration call, made before the attempt's first turn and charged to
    /// `role`: a note saying so, and the call itself as call 0 with its tokens (its prompt is not
    /// kept; the turns' calls keep their numbers from 1), so the calls listed (and the trace's
    /// model-call spans) add up to what the attempt spent.
    func calibration(_ role: Role, usage: ChatUsage, seconds: Double) {
        guard isOn else { return }
        note("\(usage.total) tokens charged to the \(role.rawValue) for calibrating the token estimator (one short call)")
        emit(.request(call: 0, role: role.rawValue, messages: [], maxTokens: 1))
        emit(.reply(call: 0, ModelReply(text: "", tokensIn: usage.promptTokens, tokensOut: usage.completionTokens, seconds: seconds,
                                        finishReason: ModelReply.calibration)))
    }

    func note(_ text: String) {
        guard isOn else { return }
        emit(.note(redact(String(text.prefix(4000)))))
    }

    /// Entries recorded so far.
    var count: Int { seq }

    // MARK: -

    private func emit(_ event: TranscriptEvent) {
        guard !full else { return }
        if seq == TranscriptLimits.maxEntries - 1 {
            full = true
            sink([TranscriptEntry(seq: seq, at: time.now, event: .note(
                "the transcript ends here: an attempt keeps at most \(TranscriptLimits.maxEntries) entries"))])
            seq += 1
            return
        }
        let entry = TranscriptEntry(seq: seq, at: time.now, event: event)
        seq += 1
        // Texts were counted by `fit`; the fixed part of every entry counts too.
        used += TranscriptEntry.overhead
        sink([entry])
    }

    /// `text` redacted, then whole while it fits the cap, its head when it crosses it, or
    /// nothing after; with the bytes left out.
    private func fit(_ raw: String) -> (String, Int) {
        let text = redact(raw)
        let bytes = text.utf8.count
        if capReached { return ("", bytes) }
        if used + bytes <= cap {
            used += bytes
            return (text, 0)
        }
        capReached = true
        let room = max(0, cap - used)
        used = cap
        let head = Self.prefix(text, bytes: room)
        let omitted = bytes - head.utf8.count
        emit(.note("the transcript reached its cap of \(cap) bytes here: from now on model calls, actions and checks are listed with their tokens, times and exit statuses, without their texts"))
        return (head, omitted)
    }

    /// The first `bytes` bytes of `text`, cut at a character boundary.
    static func prefix(_ text: String, bytes: Int) -> String {
        let u = Array(text.utf8)
        guard u.count > bytes else { return text }
        var end = max(0, bytes)
        while end > 0 && (u[end] & 0xC0) == 0x80 { end -= 1 }
        return String(decoding: u[..<end], as: UTF8.self)
    }

    /// The last ``maxOutputBytes`` of an output, saying how much came before.
    static func tail(_ output: String) -> String {
        let u = Array(output.utf8)
        guard u.count > maxOutputBytes else { return output }
        var start = u.count - maxOutputBytes
        while start < u.count && (u[start] & 0xC0) == 0x80 { start += 1 }
        return "… (\(start) bytes before)\n" + String(decoding: u[start...], as: UTF8.self)
    }
}

extension ReplyBlock.Kind {
    /// The block's kind as ``AgentFlowCore/ActionRecord/kind`` names it.
    var transcriptKind: String {
        switch self {
        case .python: return "python"
        case .shell: return "sh"
        case .answer: return "answer"
        case .json: return "json"
        case .file: return "file"
        case .unlabeled: return "unlabeled"
        case .unknown: return "unknown"
        }
    }
}
