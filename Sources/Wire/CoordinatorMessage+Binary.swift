import AgentFlowCore
import Foundation

/// The frames of every attempt — a dispatch and an acknowledgement from the coordinator, a
/// result from the worker — written and (dispatches, acknowledgements) read by hand: no
/// `Encoder`/`Decoder` containers, no `BinaryValue` tree. The bytes are the generic codec's,
/// key for key (the tests compare them), so either end may use either coder; what the hand
/// decoder does not know (another case, a map of more than one case) goes to the generic one,
/// and it accepts and rejects what the generic one does (truncated and corrupted frames
/// included). Rare nested fields (a verifier, agent work, a sandbox, a trace, outputs, a
/// verdict) are written and read by the generic coder inside the hand-written frame; the `sim`
/// backend's ``Estimate``, in every simulated dispatch, by hand.
extension CoordinatorMessage {
    /// The frame of this message.
    public func encodeBinary() -> Data {
        let w = BinaryWriter()
        switch self {
        case .dispatch(let spec):
            let top = w.open(.map)
            w.entry(top, "dispatch")
            let payload = w.open(.map)
            w.entry(payload, "_0")
            w.attemptSpec(spec)
        case .ack(let ids):
            let top = w.open(.map)
            w.entry(top, "ack")
            let payload = w.open(.map)
            w.entry(payload, "ids")
            let list = w.open(.array)
            for id in ids {
                w.bump(list)
                w.attemptID(id)
            }
        default:
            return (try? BinaryCodec.encode(self)) ?? Data()
        }
        return Data(w.out)
    }

    /// Decodes a coordinator's frame; throws `DecodingError` on anything malformed.
    public static func decode(binary data: Data) throws -> CoordinatorMessage {
        try BinaryReader.direct(data, "coordinator message") { r in try r.hotCoordinatorMessage() }
    }
}

extension WorkerMessage {
    /// The frame of this message: results by hand, the rest through the generic coder.
    public func encodeBinary() -> Data {
        guard case .result(let report) = self else { return (try? BinaryCodec.encode(self)) ?? Data() }
        let w = BinaryWriter()
        let top = w.open(.map)
        w.entry(top, "result")
        let payload = w.open(.map)
        w.entry(payload, "_0")
        let r = w.open(.map)
        w.entry(r, "id")
        w.attemptID(report.id)
        w.entry(r, "outcome")
        let o = w.open(.map)
        let outcome = report.outcome
        w.entry(o, "end")
        w.string(outcome.end.rawValue)
        w.entry(o, "usage")
        let usage = w.open(.array)
        for u in outcome.usage {
            w.bump(usage)
            let m = w.open(.map)
            w.entry(m, "role")
            w.string(u.role.rawValue)
            w.entry(m, "input")
            w.int(Int64(u.input))
            w.entry(m, "output")
            w.int(Int64(u.output))
        }
        if let output = outcome.output {
            w.entry(o, "output")
            w.string(output)
        }
        w.entry(o, "detail")
        w.string(outcome.detail)
        w.entry(o, "seconds")
        w.double(outcome.seconds)
        w.generic(o, "outputs", ifPresent: outcome.outputs)
        w.generic(o, "judgement", ifPresent: outcome.judgement)
        return Data(w.out)
    }
}

extension BinaryWriter {
    /// Counts one more entry of the map whose count is at `map`, and writes its key.
    func entry(_ map: Int, _ key: StaticString) {
        bump(map)
        key.withUTF8Buffer { u in
            put32(u.count)
            out.append(contentsOf: u)
        }
    }

    /// A nested value the hand-written frames leave to the generic coder.
    func generic<T: Encodable>(_ v: T) {
        // Encoding our own value types cannot fail.
        try? value(v)
    }

    /// An optional field as the synthesized `encode(to:)` writes one: left out when nil.
    func generic<T: Encodable>(_ map: Int, _ key: StaticString, ifPresent v: T?) {
        guard let v else { return }
        entry(map, key)
        generic(v)
    }

    func attemptID(_ id: AttemptID) {
        let m = open(.map)
        entry(m, "job")
        string(id.job)
        entry(m, "subtask")
        string(id.subtask)
        entry(m, "n")
        int(Int64(id.n))
    }

    /// An ``Estimate`` as its synthesized `encode(to:)` writes it (every dispatch of the `sim`
    /// backend carries one).
    func estimate(_ e: Estimate) {
        let m = open(.map)
        entry(m, "success")
        double(e.success)
        entry(m, "tokens")
        double(e.tokens)
        entry(m, "seconds")
        double(e.seconds)
    }

    /// An ``AttemptSpec`` as its synthesized `encode(to:)` writes it: its fields in declaration
    /// order, nil optionals left out.
    func attemptSpec(_ s: AttemptSpec) {
        let m = open(.map)
        entry(m, "id")
        attemptID(s.id)
        entry(m, "model")
        string(s.model)
        entry(m, "prompt")
        string(s.prompt)
        generic(m, "verify", ifPresent: s.verify)
        entry(m, "inputs")
        let inputs = open(.map)
        for (k, v) in s.inputs {
            bump(inputs)
            putString(k)
            string(v)
        }
        entry(m, "tokenCap")
        int(Int64(s.tokenCap))
        entry(m, "ttl")
        double(s.ttl.seconds)
        if let jobTTL = s.jobTTL {
            entry(m, "jobTTL")
            double(jobTTL.seconds)
        }
        entry(m, "scaffold")
        let scaffold = open(.map)
        entry(scaffold, "summarizer")
        bool(s.scaffold.summarizer)
        entry(scaffold, "corrector")
        bool(s.scaffold.corrector)
        entry(scaffold, "maxTurns")
        int(Int64(s.scaffold.maxTurns))
        if let simulated = s.simulated {
            entry(m, "simulated")
            estimate(simulated)
        }
        entry(m, "seed")
        uint(s.seed)
        if let priority = s.priority {
            entry(m, "priority")
            int(Int64(priority))
        }
        generic(m, "work", ifPresent: s.work)
        generic(m, "sandbox", ifPresent: s.sandbox)
        if let transcriptBytes = s.transcriptBytes {
            entry(m, "transcriptBytes")
            int(Int64(transcriptBytes))
        }
        generic(m, "trace", ifPresent: s.trace)
    }
}

extension BinaryReader {
    /// A dispatch, an acknowledgement or a heartbeat, read whole; nil when the frame is
    /// something else (or a map of several cases), for the generic decoder.
    mutating func hotCoordinatorMessage() throws -> CoordinatorMessage? {
        guard bytes.count >= 5, bytes[0] == BinaryTag.map.rawValue else { return nil }
        guard try openMap() == 1 else { return nil }
        let name = try key()
        let message: CoordinatorMessage
        if name.isKey("dispatch") {
            message = .dispatch(try payload { r in try r.attemptSpec() })
        } else if name.isKey("ack") {
            var ids: [AttemptID]?
            try fields { r, k in
                if k.isKey("ids"), ids == nil {
                    let n = try r.openArray()
                    var list: [AttemptID] = []
                    list.reserveCapacity(n)
                    for _ in 0..<n { list.append(try r.attemptID()) }
                    r.close()
                    ids = list
                } else {
                    try r.skip()
                }
            }
            guard let ids else { throw Mismatch() }
            message = .ack(ids: ids)
        } else if name.isKey("heartbeat") {
            try fields { r, _ in try r.skip() }
            message = .heartbeat
        } else {
            return nil
        }
        close()
        return message
    }

    /// An optional field as the generic decoder reads one: null is nil, anything else through `read`.
    mutating func optional<T>(_ read: (inout BinaryReader) throws -> T) throws -> T? {
        try readNull() ? nil : try read(&self)
    }

    /// A nested value left to the generic decoder.
    mutating func generic<T: Decodable>(_ type: T.Type) throws -> T {
        try BinaryDecoding.decode(type, from: try subtree(), path: [])
    }

    mutating func attemptSpec() throws -> AttemptSpec {
        var id: AttemptID?, model: String?, prompt: String?, inputs: [String: String]?, tokenCap: Int?, ttl: Double?
        var scaffold: ScaffoldOptions?, seed: UInt64?
        var verify: Verifier?, simulated: Estimate?, priority: Int?, work: AttemptWork?, sandbox: SandboxSpec?
        var transcriptBytes: Int?, trace: TraceContext?, jobTTL: Double?
        // Optional fields: absent and null both read as nil; `seen` (a bit per field) keeps the
        // first of a repeat.
        var seen: UInt8 = 0
        func first(_ field: Int) -> Bool {
            defer { seen |= 1 << field }
            return seen & (1 << field) == 0
        }
        try fields { r, k in
            if k.isKey("id"), id == nil { id = try r.attemptID() }
            else if k.isKey("model"), model == nil { model = try r.readString() }
            else if k.isKey("prompt"), prompt == nil { prompt = try r.readString() }
            else if k.isKey("inputs"), inputs == nil { inputs = try r.stringMap() }
            else if k.isKey("tokenCap"), tokenCap == nil { tokenCap = try r.readInt() }
            else if k.isKey("ttl"), ttl == nil { ttl = try r.readDouble() }
            else if k.isKey("scaffold"), scaffold == nil { scaffold = try r.scaffoldOptions() }
            else if k.isKey("seed"), seed == nil { seed = try r.readUInt64() }
            else if k.isKey("verify"), first(0) { verify = try r.optional { try $0.generic(Verifier.self) } }
            else if k.isKey("simulated"), first(1) { simulated = try r.optional { try $0.estimate() } }
            else if k.isKey("priority"), first(2) { priority = try r.optional { try $0.readInt() } }
            else if k.isKey("work"), first(3) { work = try r.optional { try $0.generic(AttemptWork.self) } }
            else if k.isKey("sandbox"), first(4) { sandbox = try r.optional { try $0.generic(SandboxSpec.self) } }
            else if k.isKey("transcriptBytes"), first(5) { transcriptBytes = try r.optional { try $0.readInt() } }
            else if k.isKey("trace"), first(6) { trace = try r.optional { try $0.generic(TraceContext.self) } }
            else if k.isKey("jobTTL"), first(7) { jobTTL = try r.optional { try $0.readDouble() } }
            else { try r.skip() }
        }
        guard let id, let model, let prompt, let inputs, let tokenCap, let ttl, let scaffold, let seed else { throw Mismatch() }
        var spec = AttemptSpec(id: id, model: model, prompt: prompt, verify: verify, inputs: inputs, tokenCap: tokenCap,
                               ttl: .clampedSeconds(ttl), scaffold: scaffold, simulated: simulated, seed: seed)
        spec.priority = priority
        spec.work = work
        spec.sandbox = sandbox
        spec.transcriptBytes = transcriptBytes
        spec.trace = trace
        spec.jobTTL = jobTTL.map { .clampedSeconds($0) }
        return spec
    }

    /// An ``Estimate`` as the generic decoder reads one: doubles (or signed integers), the
    /// first of a repeated key, unknown keys skipped, a missing one an error.
    mutating func estimate() throws -> Estimate {
        var success: Double?, tokens: Double?, seconds: Double?
        try fields { r, k in
            if k.isKey("success"), success == nil { success = try r.readDouble() }
            else if k.isKey("tokens"), tokens == nil { tokens = try r.readDouble() }
            else if k.isKey("seconds"), seconds == nil { seconds = try r.readDouble() }
            else { try r.skip() }
        }
        guard let success, let tokens, let seconds else { throw Mismatch() }
        return Estimate(success: success, tokens: tokens, seconds: seconds)
    }

    /// A `[String: String]`: for a repeated key the first value (the generic decoder looks each
    /// key up, finding the first; the repeat's value is only checked for structure).
    mutating func stringMap() throws -> [String: String] {
        let n = try openMap()
        var map: [String: String] = [:]
        // Reserving 0 would allocate storage for the empty map (most dispatches have no inputs).
        if n > 0 { map.reserveCapacity(n) }
        for _ in 0..<n {
            let k = String(decoding: try key(), as: UTF8.self)
            if map[k] == nil { map[k] = try readString() } else { try skip() }
        }
        close()
        return map
    }

    mutating func scaffoldOptions() throws -> ScaffoldOptions {
        var summarizer: Bool?, corrector: Bool?, maxTurns: Int?
        try fields { r, k in
            if k.isKey("summarizer"), summarizer == nil { summarizer = try r.readBool() }
            else if k.isKey("corrector"), corrector == nil { corrector = try r.readBool() }
            else if k.isKey("maxTurns"), maxTurns == nil { maxTurns = try r.readInt() }
            else { try r.skip() }
        }
        guard let summarizer, let corrector, let maxTurns else { throw Mismatch() }
        return ScaffoldOptions(summarizer: summarizer, corrector: corrector, maxTurns: maxTurns)
    }

    /// A `UInt64` as the generic decoder reads one: unsigned, or a signed value ≥ 0.
    mutating func readUInt64() throws -> UInt64 {
        switch try valueTag() {
        case .uint: return try u64()
        case .int:
            let i = Int64(bitPattern: try u64())
            guard i >= 0 else { throw Mismatch() }
            return UInt64(i)
        default: throw Mismatch()
        }
    }
}

extension WireCodec {
    /// A dispatch or an acknowledgement written by hand, any other message generically.
    public func encode(_ message: CoordinatorMessage) -> Data {
        message.encodeBinary()
    }

    /// A result written by hand, any other message generically.
    public func encode(_ message: WorkerMessage) -> Data {
        message.encodeBinary()
    }

    /// A coordinator's frame, its hot cases decoded directly (``CoordinatorMessage/decode(binary:)``).
    public func decode(_ type: CoordinatorMessage.Type, from data: Data) throws -> CoordinatorMessage {
        try CoordinatorMessage.decode(binary: data)
    }
}
