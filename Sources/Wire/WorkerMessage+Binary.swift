import AgentFlowCore
import Foundation

/// The coordinator reads every worker frame, most of them results, progress and heartbeats:
/// those are decoded here straight from the bytes into their structs (no `BinaryValue` tree of
/// the frame, no `Decoder` containers); any other message goes through the generic decoder.
/// Both accept and reject the same frames and give the same values (the tests compare them on
/// valid, truncated and corrupted frames): fields in any order, unknown keys skipped, the first
/// of a repeated key used, every length and the depth limit checked.
extension WorkerMessage {
    /// Decodes a worker's frame; throws `DecodingError` on anything malformed.
    public static func decode(binary data: Data) throws -> WorkerMessage {
        try BinaryReader.direct(data, "worker message") { r in try r.hotWorkerMessage() }
    }
}

extension BinaryReader {
    /// `data` read whole by `read` (a hand-written decoder of a message's hot cases), or — when
    /// `read` returns nil, the frame being another case — by the generic decoder. Anything
    /// malformed is a `DecodingError` naming `what` and the byte.
    static func direct<T: Decodable>(_ data: Data, _ what: String, _ read: (inout BinaryReader) throws -> T?) throws -> T {
        let hot: T? = try data.withUnsafeBytes { raw in
            var r = BinaryReader(bytes: raw)
            do {
                guard let message = try read(&r) else { return nil }
                guard r.at == raw.count else { throw BinaryReader.Malformed() }
                return message
            } catch let e as DecodingError {
                throw e
            } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "malformed \(what) at byte \(r.at)"))
            }
        }
        if let hot { return hot }
        return try BinaryCodec.decode(T.self, from: data)
    }
}

extension BinaryReader {
    /// A result, progress, heartbeat, goodbye or draining, read whole; nil (nothing consumed
    /// that matters) when the frame is something else, for the generic decoder.
    mutating func hotWorkerMessage() throws -> WorkerMessage? {
        // The synthesized enum coding: a map of exactly one entry, the case's name → its fields.
        guard bytes.count >= 5, bytes[0] == BinaryTag.map.rawValue else { return nil }
        guard try openMap() == 1 else { return nil }
        let name = try key()
        let message: WorkerMessage
        if name.isKey("result") {
            message = .result(try payload { r in try r.attemptReport() })
        } else if name.isKey("progress") {
            var id: AttemptID?
            var tokens: Int?
            try fields { r, k in
                if k.isKey("id"), id == nil { id = try r.attemptID() }
                else if k.isKey("tokens"), tokens == nil { tokens = try r.readInt() }
                else { try r.skip() }
            }
            guard let id, let tokens else { throw Mismatch() }
            message = .progress(id: id, tokens: tokens)
        } else if name.isKey("heartbeat") {
            try fields { r, _ in try r.skip() }
            message = .heartbeat
        } else if name.isKey("goodbye") {
            try fields { r, _ in try r.skip() }
            message = .goodbye
        } else if name.isKey("draining") {
            try fields { r, _ in try r.skip() }
            message = .draining
        } else {
            return nil
        }
        close()
        return message
    }

    /// Reads a map, handing each entry's key to `entry`, which reads or skips its value.
    mutating func fields(_ entry: (inout BinaryReader, UnsafeRawBufferPointer) throws -> Void) throws {
        let n = try openMap()
        for _ in 0..<n {
            let k = try key()
            try entry(&self, k)
        }
        close()
    }

    /// The map of a case with one unnamed value: its `_0`, read by `read` (the first, if
    /// repeated; other keys skipped; missing is an error).
    mutating func payload<T>(_ read: (inout BinaryReader) throws -> T) throws -> T {
        var found: T?
        try fields { r, k in
            if found == nil, k.isKey("_0") { found = try read(&r) } else { try r.skip() }
        }
        guard let found else { throw Mismatch() }
        return found
    }

    mutating func attemptID() throws -> AttemptID {
        var job: String?, subtask: String?, n: Int?
        try fields { r, k in
            if k.isKey("job"), job == nil { job = try r.readString() }
            else if k.isKey("subtask"), subtask == nil { subtask = try r.readString() }
            else if k.isKey("n"), n == nil { n = try r.readInt() }
            else { try r.skip() }
        }
        guard let job, let subtask, let n else { throw Mismatch() }
        return AttemptID(job: job, subtask: subtask, n: n)
    }

    mutating func attemptReport() throws -> AttemptReport {
        var id: AttemptID?, outcome: AttemptOutcome?
        try fields { r, k in
            if k.isKey("id"), id == nil { id = try r.attemptID() }
            else if k.isKey("outcome"), outcome == nil { outcome = try r.attemptOutcome() }
            else { try r.skip() }
        }
        guard let id, let outcome else { throw Mismatch() }
        return AttemptReport(id: id, outcome: outcome)
    }

    mutating func attemptOutcome() throws -> AttemptOutcome {
        var end: AttemptEnd?, usage: [TokenUsage]?, detail: String?, seconds: Double?
        // Optional fields: absent and null both read as nil; `seen` keeps the first of a repeat.
        var output: String?, outputs: OutputBundle?, judgement: Judgement?
        var seen: (output: Bool, outputs: Bool, judgement: Bool) = (false, false, false)
        try fields { r, k in
            if k.isKey("end"), end == nil { end = try r.readRaw(AttemptEnd.self) }
            else if k.isKey("usage"), usage == nil { usage = try r.tokenUsages() }
            else if k.isKey("detail"), detail == nil { detail = try r.readString() }
            else if k.isKey("seconds"), seconds == nil { seconds = try r.readDouble() }
            else if k.isKey("output"), !seen.output {
                seen.output = true
                output = try r.readNull() ? nil : try r.readString()
            } else if k.isKey("outputs"), !seen.outputs {
                seen.outputs = true
                outputs = try r.readNull() ? nil : try BinaryDecoding.decode(OutputBundle.self, from: try r.subtree(), path: [])
            } else if k.isKey("judgement"), !seen.judgement {
                seen.judgement = true
                judgement = try r.readNull() ? nil : try BinaryDecoding.decode(Judgement.self, from: try r.subtree(), path: [])
            } else {
                try r.skip()
            }
        }
        guard let end, let usage, let detail, let seconds else { throw Mismatch() }
        return AttemptOutcome(end: end, usage: usage, output: output, detail: detail, seconds: seconds, outputs: outputs, judgement: judgement)
    }

    mutating func tokenUsages() throws -> [TokenUsage] {
        let n = try openArray()
        var usages: [TokenUsage] = []
        usages.reserveCapacity(n)
        for _ in 0..<n {
            var role: Role?, input: Int?, output: Int?
            try fields { r, k in
                if k.isKey("role"), role == nil { role = try r.readRaw(Role.self) }
                else if k.isKey("input"), input == nil { input = try r.readInt() }
                else if k.isKey("output"), output == nil { output = try r.readInt() }
                else { try r.skip() }
            }
            guard let role, let input, let output else { throw Mismatch() }
            usages.append(TokenUsage(role: role, input: input, output: output))
        }
        close()
        return usages
    }
}

extension WireCodec {
    /// A worker's frame, its hot cases decoded directly (``WorkerMessage/decode(binary:)``).
    public func decode(_ type: WorkerMessage.Type, from data: Data) throws -> WorkerMessage {
        try WorkerMessage.decode(binary: data)
    }
}
