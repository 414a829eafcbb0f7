import Foundation
import Yams

/// One thing that happened in an attempt, as its transcript keeps it: a message sent to the
/// model, a model call and its reply, an action and what it printed, a verifier run, a note.
///
/// Entries are numbered from 0 within their attempt (`seq`) and streamed by the worker as they
/// happen; the coordinator stores each `seq` once, so an entry sent twice (after a reconnect)
/// is stored once, and a transcript cut short by a dying worker keeps what arrived.
public struct TranscriptEntry: Codable, Sendable, Equatable {
    public var seq: Int
    /// When it happened: seconds since 1970 on the worker's clock.
    public var at: Double
    public var event: TranscriptEvent

    public init(seq: Int, at: Double, event: TranscriptEvent) {
        self.seq = seq
        self.at = at
        self.event = event
    }

    /// What the entry counts against its attempt's transcript cap: the bytes of its texts, and a
    /// fixed allowance for the rest. The worker and the coordinator count the same way.
    public var bytes: Int { TranscriptEntry.overhead + event.textBytes }

    /// Bytes counted per entry for its fixed fields.
    public static let overhead = 64
}

/// What a transcript entry records.
public enum TranscriptEvent: Codable, Sendable, Equatable {
    /// A message sent to the model for the first time in this attempt. Requests name their
    /// messages by `index`, so a history resent on every turn is kept once.
    case message(index: Int, role: String, content: String, omitted: Int)
    /// A model call started: its role, its request's messages (indices of `message` entries,
    /// in order), and the completion tokens it allowed.
    case request(call: Int, role: String, messages: [Int], maxTokens: Int?)
    /// How model call `call` ended.
    case reply(call: Int, ModelReply)
    /// A block of a reply acted on (python, sh, file, answer, json), or the code of a `code`
    /// subtask run as solution.py.
    case action(ActionRecord)
    /// A verifier run.
    case verifier(VerifierRecord)
    /// Something the reader should know (the cap was reached, the workspace could not be set up).
    case note(String)

    var textBytes: Int {
        switch self {
        case .message(_, let role, let content, _): return role.utf8.count + content.utf8.count
        case .request(_, let role, let messages, _): return role.utf8.count + 8 * messages.count
        case .reply(_, let r): return r.text.utf8.count + (r.error?.utf8.count ?? 0) + (r.finishReason?.utf8.count ?? 0)
        case .action(let a): return a.kind.utf8.count + a.label.utf8.count + a.status.utf8.count + a.input.utf8.count + a.output.utf8.count
        case .verifier(let v): return v.summary.utf8.count + v.output.utf8.count
        case .note(let text): return text.utf8.count
        }
    }
}

/// The end of one model call.
public struct ModelReply: Codable, Sendable, Equatable {
    /// What the model wrote (what arrived before the stream ended or was stopped).
    public var text: String
    public var tokensIn: Int
    public var tokensOut: Int
    /// From the request to the end of the reply, and to its first token where known.
    public var seconds: Double
    public var firstTokenSeconds: Double?
    /// The server's `finish_reason` (`stop`, `length`), or how the client ended the stream
    /// (`block complete`: stopped once the reply held a complete block; `repeating`; `cancelled`).
    public var finishReason: String?
    /// Why the call failed, when it did.
    public var error: String?
    /// Bytes of `text` left out to keep the attempt's transcript within its cap.
    public var omitted: Int

    /// The finish reason of the token estimator's calibration call: call 0, made before the
    /// attempt's first turn and charged to it; its prompt is not kept.
    public static let calibration = "calibration"

    public init(text: String, tokensIn: Int, tokensOut: Int, seconds: Double, firstTokenSeconds: Double? = nil, finishReason: String? = nil,
                error: String? = nil, omitted: Int = 0) {
        self.text = text
        self.tokensIn = tokensIn
        self.tokensOut = tokensOut
        self.seconds = seconds
        self.firstTokenSeconds = firstTokenSeconds
        self.finishReason = finishReason
        self.error = error
        self.omitted = omitted
    }
}

/// One action: what ran (or was written) and what came of it.
public struct ActionRecord: Codable, Sendable, Equatable {
    /// `python`, `sh`, `file`, `answer`, `json`, or `solution` (a `code` subtask's module run).
    public var kind: String
    /// As the observation names it: `python (block 1)`, `file:calc/stats.py (block 2)`.
    public var label: String
    /// How it ended, in the observation's words (`exit 1 after 0.2s`, `wrote a.py (40 bytes)`,
    /// `not run — shell commands are not enabled`).
    public var status: String
    /// The exit status where something ran.
    public var exitCode: Int?
    public var seconds: Double
    /// The block's body (the code, the file's text, the answer).
    public var input: String
    /// Its output (the tail the model was shown), or the observation line.
    public var output: String
    /// Bytes of `input` and `output` left out to keep the transcript within its cap.
    public var omitted: Int

    public init(kind: String, label: String, status: String, exitCode: Int? = nil, seconds: Double = 0, input: String = "", output: String = "",
                omitted: Int = 0) {
        self.kind = kind
        self.label = label
        self.status = status
        self.exitCode = exitCode
        self.seconds = seconds
        self.input = input
        self.output = output
        self.omitted = omitted
    }
}

/// One verifier run.
public struct VerifierRecord: Codable, Sendable, Equatable {
    public var passed: Bool
    /// How it ended (`exit 1 after 0.3s`), empty when it passed.
    public var summary: String
    public var seconds: Double
    public var output: String
    public var omitted: Int

    public init(passed: Bool, summary: String, seconds: Double, output: String, omitted: Int = 0) {
        self.passed = passed
        self.summary = summary
        self.seconds = seconds
        self.output = output
        self.omitted = omitted
    }
}

/// How much of each attempt's transcript is kept, and of all of them (`coordinator.transcripts`
/// in cluster.yaml).
///
/// Per attempt, entries are kept whole until their texts reach `perAttempt` bytes; after that
/// each model call, action and verifier run is still listed — role, tokens, times, finish
/// reason, exit status — with its texts left out (a note says where that began). In total, when
/// the stored transcripts pass `total` bytes, the transcripts of the jobs that ended first are
/// deleted, whole jobs at a time, until they fit again; each such job keeps a line saying when
/// and why its transcripts went. Transcripts of jobs still running are never deleted.
public struct TranscriptLimits: Codable, Sendable, Equatable {
    /// Bytes of text kept per attempt; 0 turns transcripts off.
    public var perAttempt: Int
    /// Bytes kept for all transcripts together.
    public var total: Int

    public init(perAttempt: Int = TranscriptLimits.defaultPerAttempt, total: Int = TranscriptLimits.defaultTotal) {
        self.perAttempt = perAttempt
        self.total = total
    }

    public static let defaultPerAttempt = 512 << 10
    public static let defaultTotal = 1 << 30
    /// Largest `perAttempt` (a ZeroMQ frame carries at most 16 MiB; entries go in batches).
    public static let maxPerAttempt = 64 << 20
    /// Entries one attempt may have: a flood of tiny actions ends in a note, not in a million rows.
    public static let maxEntries = 4096
    /// Bytes counted for the listed-but-textless entries past the cap (4096 × a short line).
    public static let metadataAllowance = 1 << 20

    /// The most an attempt's stored entries may count, texts and listings together.
    public var storedCap: Int { perAttempt == 0 ? 0 : perAttempt + Self.metadataAllowance }
}

extension Cluster {
    /// `coordinator.transcripts: {perAttempt: 512KiB, total: 1GiB}` (either; `perAttempt: 0` turns them off).
    static func parseTranscriptLimits(_ node: Node, _ r: YAMLReader) throws -> TranscriptLimits {
        let m = try r.mapping(node, "coordinator.transcripts")
        try r.checkKeys(m, allowed: ["perAttempt", "total"], in: "coordinator.transcripts")
        var limits = TranscriptLimits()
        func size(_ key: String, _ range: ClosedRange<Int>, _ shown: String) throws -> Int? {
            guard let n = m[key] else { return nil }
            let v = try SandboxSpec.size(n, r, "coordinator.transcripts.\(key)", within: 0...(1 << 50))
            guard range.contains(v) else { throw r.error(n, "coordinator.transcripts.\(key) must be \(shown), got \(v) bytes") }
            return v
        }
        if let v = try size("perAttempt", 0...TranscriptLimits.maxPerAttempt, "from 0 (off) to 64MiB") { limits.perAttempt = v }
        if let v = try size("total", (1 << 20)...(1 << 50), "from 1MiB to 1PiB") { limits.total = v }
        if limits.perAttempt > limits.total {
            throw r.error(node, "coordinator.transcripts: perAttempt (\(limits.perAttempt) bytes) is more than total (\(limits.total) bytes)")
        }
        return limits
    }
}

extension TranscriptEntry {
    /// The entry as a coordinator keeps it from a peer it cannot trust: numbers in range, texts
    /// redacted again with what `redactor` knows; nil when it cannot be one of an attempt's
    /// entries (its sequence number is out of range).
    public func checked(redactor: SecretRedactor, now: Double) -> TranscriptEntry? {
        guard (0..<TranscriptLimits.maxEntries).contains(seq) else { return nil }
        func count(_ v: Int) -> Int { min(max(0, v), 1 << 40) }
        func seconds(_ v: Double) -> Double { v.isFinite ? min(max(0, v), Limits.maxSeconds) : 0 }
        let r = redactor.redact
        let event: TranscriptEvent
        switch self.event {
        case .message(let index, let role, let content, let omitted):
            event = .message(index: count(index), role: r(String(role.prefix(32))), content: r(content), omitted: count(omitted))
        case .request(let call, let role, let messages, let maxTokens):
            guard messages.count <= 100_000 else { return nil }
            event = .request(call: count(call), role: r(String(role.prefix(32))), messages: messages.map(count), maxTokens: maxTokens.map(count))
        case .reply(let call, var m):
            m.text = r(m.text)
            m.error = m.error.map { r(String($0.prefix(4000))) }
            m.finishReason = m.finishReason.map { r(String($0.prefix(200))) }
            m.tokensIn = count(m.tokensIn)
            m.tokensOut = count(m.tokensOut)
            m.seconds = seconds(m.seconds)
            m.firstTokenSeconds = m.firstTokenSeconds.map(seconds)
            m.omitted = count(m.omitted)
            event = .reply(call: count(call), m)
        case .action(var a):
            a.kind = r(String(a.kind.prefix(32)))
            a.label = r(String(a.label.prefix(300)))
            a.status = r(String(a.status.prefix(4000)))
            a.input = r(a.input)
            a.output = r(a.output)
            a.seconds = seconds(a.seconds)
            a.exitCode = a.exitCode.map { min(max($0, -1), 255) }
            a.omitted = count(a.omitted)
            event = .action(a)
        case .verifier(var v):
            v.summary = r(String(v.summary.prefix(4000)))
            v.output = r(v.output)
            v.seconds = seconds(v.seconds)
            v.omitted = count(v.omitted)
            event = .verifier(v)
        case .note(let text):
            event = .note(r(String(text.prefix(4000))))
        }
        return TranscriptEntry(seq: seq, at: at.isFinite && at > 0 && at < 1e11 ? at : now, event: event)
    }
}
