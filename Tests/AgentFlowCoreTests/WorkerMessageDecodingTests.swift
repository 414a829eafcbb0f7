import AgentFlowCore
import Foundation
import Testing
import Wire

/// The coordinator's direct decoder of worker frames (`WorkerMessage.decode(binary:)`: results,
/// progress, heartbeats, goodbye, draining read straight from the bytes) against the generic
/// `Decodable` path it replaces on the hot path: the same value for every valid frame, the same
/// refusal for every malformed one — truncated, corrupted, mistyped, too deep — and never a crash.
@Suite struct WorkerMessageDecodingTests {
    /// A value in the wire's binary layout, written here independently of the product's encoder.
    indirect enum V {
        case null, bool(Bool), int(Int64), uint(UInt64), double(Double), string(String), array([V]), map([(String, V)])

        var bytes: [UInt8] {
            func u32(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt32(n).littleEndian) { Array($0) } }
            func u64(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.littleEndian) { Array($0) } }
            func str(_ s: String) -> [UInt8] { u32(s.utf8.count) + Array(s.utf8) }
            switch self {
            case .null: return [0]
            case .bool(let b): return [b ? 2 : 1]
            case .int(let i): return [3] + u64(UInt64(bitPattern: i))
            case .uint(let u): return [4] + u64(u)
            case .double(let d): return [5] + u64(d.bitPattern)
            case .string(let s): return [6] + str(s)
            case .array(let a): return [7] + u32(a.count) + a.flatMap(\.bytes)
            case .map(let m): return [8] + u32(m.count) + m.flatMap { str($0.0) + $0.1.bytes }
            }
        }
    }

    static func id(_ job: String = "j\u{1}'", _ subtask: String = "s\n\u{7f}", _ n: V = .int(3)) -> V {
        .map([("job", .string(job)), ("subtask", .string(subtask)), ("n", n)])
    }

    static func usage(_ role: String = "corrector", _ input: V = .int(5), _ output: V = .int(-6)) -> V {
        .map([("role", .string(role)), ("input", input), ("output", output)])
    }

    static func outcome(_ fields: [(String, V)]? = nil) -> V {
        .map(fields ?? [("end", .string("cap_reached")), ("usage", .array([usage(), usage("agent", .int(Int64.max), .uint(7))])),
                        ("output", .string("print('\u{0}')")), ("detail", .string("d\t")), ("seconds", .double(1.5))])
    }

    static func result(_ outcome: V = outcome(), id: V = id()) -> V {
        .map([("result", .map([("_0", .map([("id", id), ("outcome", outcome)]))]))])
    }

    /// What a decoder made of `bytes`: the value re-encoded (equal values, equal bytes), or "refused".
    static func decoded(_ decode: (Data) throws -> WorkerMessage, _ bytes: [UInt8]) -> String {
        guard let m = try? decode(Data(bytes)) else { return "refused" }
        return (try? BinaryCodec.encode(m)).map { Array($0).description } ?? "unencodable"
    }

    /// The direct decoder and the generic one agree on `bytes`; returns the direct one's verdict.
    @discardableResult
    static func agree(_ bytes: [UInt8], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let direct = decoded({ try WorkerMessage.decode(binary: $0) }, bytes)
        let generic = decoded({ try BinaryCodec.decode(WorkerMessage.self, from: $0) }, bytes)
        #expect(direct == generic, comment, sourceLocation: sourceLocation)
        return direct
    }

    static var samples: [WorkerMessage] {
        let id = AttemptID(job: "job-1\u{1}", subtask: "s'\"?", n: Int.max)
        let blob = Blob(Data("packed outputs".utf8))
        let full = AttemptOutcome(end: .succeeded, usage: [TokenUsage(role: .agent, input: 3, output: 4), TokenUsage(role: .summarizer, input: -1, output: Int.min),
                                                           TokenUsage(role: .judge, input: 0, output: 0)],
                                  output: "def f():\n\treturn '\u{7}'", detail: "verified on turn 2 😀", seconds: -0.0,
                                  outputs: OutputBundle(files: [OutputFile(path: "a/b.txt", size: 14, sha256: blob.sha256)], blob: blob),
                                  judgement: Judgement(score: 0.75, passed: true, reason: "fine\u{0}"))
        return [
            .result(AttemptReport(id: id, outcome: full)),
            .result(AttemptReport(id: AttemptID(job: "", subtask: "", n: Int.min), outcome: AttemptOutcome(end: .error, usage: [], detail: "", seconds: .infinity))),
            .progress(id: id, tokens: -5),
            .heartbeat, .goodbye, .draining,
        ]
    }

    @Test func everyFieldOfEveryHotMessage() throws {
        for m in Self.samples {
            let bytes = try BinaryCodec.encode(m)
            let direct = try WorkerMessage.decode(binary: bytes)
            #expect(try BinaryCodec.encode(direct) == bytes)
            #expect(String(describing: direct) == String(describing: m))
        }
        guard case .result(let r) = try WorkerMessage.decode(binary: BinaryCodec.encode(Self.samples[0])) else {
            Issue.record("not a result")
            return
        }
        #expect(r.id == AttemptID(job: "job-1\u{1}", subtask: "s'\"?", n: Int.max))
        #expect(r.outcome.end == .succeeded && r.outcome.detail == "verified on turn 2 😀" && r.outcome.seconds == 0 && r.outcome.seconds.sign == .minus)
        #expect(r.outcome.usage.map(\.role) == [.agent, .summarizer, .judge] && r.outcome.usage[1].output == Int.min)
        #expect(r.outcome.output == "def f():\n\treturn '\u{7}'")
        #expect(r.outcome.outputs?.files.first?.path == "a/b.txt" && r.outcome.outputs?.blob.data == Data("packed outputs".utf8))
        #expect(r.outcome.judgement == Judgement(score: 0.75, passed: true, reason: "fine\u{0}"))
        // The codec the coordinator uses reads worker frames this way.
        #expect(String(describing: try WireCodec().decode(WorkerMessage.self, from: BinaryCodec.encode(Self.samples[2]))) == String(describing: Self.samples[2]))
    }

    @Test func otherMessagesGoThroughTheGenericDecoder() throws {
        let id = AttemptID(job: "j", subtask: "s", n: 1)
        let info = WorkerInfo(WorkerRecord(name: "w", host: "h", gpus: [0], model: "m", slots: 2, freeMemory: 1 << 40))
        for m: WorkerMessage in [.register(info: info, running: [id], finished: []), .fetchBlobs(attempt: id, sha256s: ["ab"]),
                                 .transcript(id: id, entries: [TranscriptEntry(seq: 1, at: 2, event: .note("n"))]), .serverLoad(ServerLoad(running: 1, waiting: 2))] {
            let bytes = try BinaryCodec.encode(m)
            #expect(Self.agree(Array(bytes)) != "refused")
        }
    }

    /// Keys in any order, unknown keys (even deeply nested junk), repeated keys (the first
    /// counts), null optionals, integers where doubles go and unsigned where signed go: as the
    /// generic decoder reads them.
    @Test func layoutsTheGenericDecoderAccepts() {
        let junk: V = .array([.map([("x", .array([.null, .bool(true), .uint(.max)]))]), .string("\u{0}")])
        let cases: [V] = [
            Self.result(),
            .map([("result", .map([("extra", junk), ("_0", .map([("outcome", Self.outcome()), ("junk", junk), ("id", Self.id())]))]))]),
            Self.result(Self.outcome([("seconds", .int(-2)), ("detail", .string("")), ("usage", .array([])), ("end", .string("failed")),
                                      ("output", .null), ("outputs", .null), ("judgement", .null)])),
            Self.result(Self.outcome([("end", .string("failed")), ("end", .string("nonsense")), ("usage", .array([])), ("detail", .string("first")),
                                      ("detail", .int(9)), ("seconds", .double(1)), ("output", .null), ("output", .string("second"))])),
            Self.result(id: .map([("n", .uint(5)), ("subtask", .string("s")), ("job", .string("j")), ("n", .string("ignored"))])),
            .map([("result", .map([("_0", .map([("id", Self.id()), ("outcome", Self.outcome())])), ("_0", .null)]))]),
            .map([("progress", .map([("tokens", .uint(UInt64(Int64.max))), ("id", Self.id()), ("tokens", .null)]))]),
            .map([("heartbeat", .map([]))]),
            .map([("heartbeat", .map([("anything", junk)]))]),
            .map([("goodbye", .map([]))]),
            .map([("draining", .map([("_0", .null)]))]),
        ]
        for (i, c) in cases.enumerated() { #expect(Self.agree(c.bytes, "case \(i)") != "refused", "case \(i)") }
    }

    /// Wrong types, missing fields, unknown names, values out of range: refused by both.
    @Test func layoutsBothRefuse() {
        let cases: [V] = [
            Self.result(id: Self.id("j", "s", .string("3"))),
            Self.result(id: Self.id("j", "s", .double(3))),
            Self.result(id: Self.id("j", "s", .uint(UInt64(Int64.max) + 1))),
            Self.result(id: .map([("job", .string("j")), ("n", .int(1))])),
            Self.result(id: .null),
            Self.result(Self.outcome([("end", .string("wizardry")), ("usage", .array([])), ("detail", .string("")), ("seconds", .double(0))])),
            Self.result(Self.outcome([("usage", .array([])), ("detail", .string("")), ("seconds", .double(0))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([Self.usage("wizard")])), ("detail", .string("")), ("seconds", .double(0))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([Self.usage("agent", .double(1))])), ("detail", .string("")), ("seconds", .double(0))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([.null])), ("detail", .string("")), ("seconds", .double(0))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .null), ("detail", .string("")), ("seconds", .double(0))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([])), ("detail", .null), ("seconds", .double(0))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([])), ("detail", .string("")), ("seconds", .uint(1))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([])), ("detail", .string("")), ("seconds", .double(0)), ("output", .int(1))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([])), ("detail", .string("")), ("seconds", .double(0)),
                                      ("outputs", .map([("files", .array([])), ("blob", .map([("sha256", .string("00")), ("base64", .string(""))]))]))])),
            Self.result(Self.outcome([("end", .string("failed")), ("usage", .array([])), ("detail", .string("")), ("seconds", .double(0)), ("judgement", .string("yes"))])),
            .map([("result", .map([("_1", Self.id())]))]),
            .map([("result", .null)]),
            .map([("progress", .map([("id", Self.id())]))]),
            .map([("progress", .map([("id", Self.id()), ("tokens", .bool(true))]))]),
            .map([("heartbeat", .null)]),
            .map([("heartbeat", .array([]))]),
            .map([("goodbye", .int(1))]),
            .map([("heartbeat", .map([])), ("goodbye", .map([]))]),
            .map([("teleport", .map([]))]),
            .map([]),
            .array([.map([("heartbeat", .map([]))])]),
            .string("heartbeat"),
        ]
        for (i, c) in cases.enumerated() { #expect(Self.agree(c.bytes, "case \(i)") == "refused", "case \(i)") }
        #expect(Self.agree([]) == "refused")
    }

    /// Nesting past the reader's limit of 64 values deep is refused, even inside a field that
    /// is skipped; just within it is read.
    @Test func depthIsLimitedInSkippedFieldsToo() {
        func nested(_ depth: Int) -> V { (0..<depth).reduce(V.null) { v, _ in .array([v]) } }
        // The junk sits 4 levels down (message → result → _0 → its value).
        for (depth, accepted) in [(59, true), (60, true), (61, false), (200, false)] {
            let frame: V = .map([("result", .map([("_0", .map([("id", Self.id()), ("outcome", Self.outcome()), ("junk", nested(depth))]))]))])
            #expect((Self.agree(frame.bytes, "depth \(depth)") != "refused") == accepted, "depth \(depth)")
        }
    }

    @Test func everyTruncationAndTrailingByteIsRefused() throws {
        for m in Self.samples {
            let bytes = Array(try BinaryCodec.encode(m))
            for cut in 0..<bytes.count {
                #expect(throws: DecodingError.self) { try WorkerMessage.decode(binary: Data(bytes[..<cut])) }
            }
            #expect(throws: DecodingError.self) { try WorkerMessage.decode(binary: Data(bytes + [0])) }
        }
    }

    /// Random damage to valid frames — bytes overwritten, inserted, deleted; lengths and counts
    /// lying — never crashes, and both decoders reach the same verdict and value.
    @Test func corruptedFramesGetTheGenericVerdict() throws {
        var rng = TestRNG(state: 4242)
        let samples = try Self.samples.map { Array(try BinaryCodec.encode($0)) }
        var refused = 0
        for round in 0..<20_000 {
            var bytes = samples[round % samples.count]
            damageFrame(&bytes, using: &rng)
            if Self.agree(bytes, "round \(round)") == "refused" { refused += 1 }
        }
        #expect(refused > 1000)
    }
}
