import AgentFlowCore
import Foundation
import Testing
import Wire

/// The hand-written frames of every attempt (CoordinatorMessage+Binary.swift): a dispatch and an
/// acknowledgement written by the coordinator and read by the worker, a result written by the
/// worker. Their bytes are the generic codec's, and the worker's direct decoder reaches the
/// generic decoder's verdict and value on valid, reordered, truncated and corrupted frames.
@Suite struct AttemptFrameCodingTests {
    typealias V = WorkerMessageDecodingTests.V

    static var fullSpec: AttemptSpec {
        var s = AttemptSpec(id: AttemptID(job: "job\u{0}é", subtask: "s'\"\n", n: Int.max), model: "m😀", prompt: "write f()\n\t\u{7}",
                            verify: .python("assert f() == 1"), inputs: ["a": "1", "b\u{1}": "", "": "x"], tokenCap: Int.min,
                            ttl: .milliseconds(1500), scaffold: ScaffoldOptions(summarizer: false, corrector: true, maxTurns: -3),
                            simulated: Estimate(success: 0.25, tokens: 7, seconds: .infinity), seed: .max)
        s.priority = -9
        s.work = AttemptWork(kind: .files, outputs: ["out/*.txt"], module: "mod")
        var sandbox = SandboxSpec()
        sandbox.memoryBytes = 1 << 30
        sandbox.cpus = 0.5
        sandbox.devices = ["/dev/null"]
        s.sandbox = sandbox
        s.transcriptBytes = 0
        s.trace = TraceContext(traceparent: "00-abc-def-01", priceInput: 0.1, priceOutput: .nan)
        return s
    }

    static var minimalSpec: AttemptSpec {
        AttemptSpec(id: AttemptID(job: "", subtask: "", n: 0), model: "", prompt: "", verify: nil, inputs: [:], tokenCap: 0,
                    scaffold: ScaffoldOptions(), simulated: nil, seed: 0)
    }

    /// Estimates no workflow should hold, which the wire must carry bit for bit all the same.
    static var hostileEstimates: [Estimate] {
        [Estimate(success: .nan, tokens: -.infinity, seconds: .greatestFiniteMagnitude),
         Estimate(success: -0.0, tokens: .leastNonzeroMagnitude, seconds: -.nan),
         Estimate(success: Double(bitPattern: 0x7ff0_dead_beef_0001), tokens: 1e308, seconds: -1e-308)]
    }

    /// A minimal dispatch of the `sim` backend (what every simulated attempt is) with `estimate`.
    static func simulatedSpec(_ estimate: Estimate) -> AttemptSpec {
        var s = minimalSpec
        s.simulated = estimate
        return s
    }

    static var coordinatorSamples: [CoordinatorMessage] {
        let ids = (0..<40).map { AttemptID(job: "j\($0 % 3)", subtask: "s\($0)", n: $0 - 20) }
        return [.dispatch(fullSpec), .dispatch(minimalSpec), .ack(ids: ids), .ack(ids: []), .ack(ids: [ids[0]]), .heartbeat]
            + hostileEstimates.map { .dispatch(simulatedSpec($0)) }
    }

    static var workerSamples: [WorkerMessage] { WorkerMessageDecodingTests.samples }

    /// A message as the generic codec writes it, a dispatch's inputs sorted (two equal
    /// dictionaries need not iterate in the same order): equal values, equal text.
    static func canonical(_ m: CoordinatorMessage) -> String {
        func bytes(_ m: CoordinatorMessage) -> String { (try? BinaryCodec.encode(m)).map { Array($0).description } ?? "unencodable" }
        guard case .dispatch(var s) = m else { return bytes(m) }
        let inputs = s.inputs.sorted { $0.key < $1.key }
        s.inputs = [:]
        return "\(inputs) " + bytes(.dispatch(s))
    }

    /// What a decoder made of `bytes` (``canonical(_:)``), or "refused".
    static func verdict(_ decode: (Data) throws -> CoordinatorMessage, _ bytes: [UInt8]) -> String {
        guard let m = try? decode(Data(bytes)) else { return "refused" }
        return canonical(m)
    }

    @discardableResult
    static func agree(_ bytes: [UInt8], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        let direct = verdict({ try CoordinatorMessage.decode(binary: $0) }, bytes)
        let generic = verdict({ try BinaryCodec.decode(CoordinatorMessage.self, from: $0) }, bytes)
        #expect(direct == generic, comment, sourceLocation: sourceLocation)
        return direct
    }

    @Test func theHandWrittenFramesAreTheGenericCodecsBytes() throws {
        for m in Self.coordinatorSamples {
            #expect(m.encodeBinary() == (try BinaryCodec.encode(m)), "\(m)")
            #expect(WireCodec().encode(m) == (try BinaryCodec.encode(m)))
        }
        for m in Self.workerSamples {
            #expect(m.encodeBinary() == (try BinaryCodec.encode(m)), "\(m)")
            #expect(WireCodec().encode(m) == (try BinaryCodec.encode(m)))
        }
    }

    @Test func everyFieldRoundTrips() throws {
        for m in Self.coordinatorSamples {
            let bytes = m.encodeBinary()
            #expect(Self.canonical(try CoordinatorMessage.decode(binary: bytes)) == Self.canonical(m))
            #expect(Self.canonical(try WireCodec().decode(CoordinatorMessage.self, from: bytes)) == Self.canonical(m))
        }
        guard case .dispatch(let s) = try CoordinatorMessage.decode(binary: CoordinatorMessage.dispatch(Self.fullSpec).encodeBinary()) else {
            Issue.record("not a dispatch")
            return
        }
        let f = Self.fullSpec
        #expect(s.id == f.id && s.model == f.model && s.prompt == f.prompt && s.verify == f.verify && s.inputs == f.inputs)
        #expect(s.tokenCap == Int.min && s.ttl == .milliseconds(1500) && s.scaffold == f.scaffold && s.simulated == f.simulated && s.seed == .max)
        #expect(s.priority == -9 && s.work == f.work && s.sandbox == f.sandbox && s.transcriptBytes == 0)
        #expect(s.trace?.traceparent == "00-abc-def-01" && s.trace?.priceOutput.isNaN == true)
        for m in Self.workerSamples {
            #expect(try WorkerMessage.decode(binary: m.encodeBinary()).encodeBinary() == m.encodeBinary())
        }
    }

    /// The hostile estimates come back bit for bit (NaN payloads and the sign of zero too).
    @Test func hostileEstimatesRoundTrip() throws {
        for e in Self.hostileEstimates {
            guard case .dispatch(let s) = try CoordinatorMessage.decode(binary: CoordinatorMessage.dispatch(Self.simulatedSpec(e)).encodeBinary()),
                  let back = s.simulated else {
                Issue.record("no estimate came back for \(e)")
                continue
            }
            #expect(back.success.bitPattern == e.success.bitPattern)
            #expect(back.tokens.bitPattern == e.tokens.bitPattern)
            #expect(back.seconds.bitPattern == e.seconds.bitPattern)
        }
    }

    static func spec(_ fields: [(String, V)]) -> V { .map([("dispatch", .map([("_0", .map(fields))]))]) }

    static var specFields: [(String, V)] {
        [("id", WorkerMessageDecodingTests.id()), ("model", .string("m")), ("prompt", .string("p")), ("inputs", .map([("a", .string("b"))])),
         ("tokenCap", .int(10)), ("ttl", .double(2.5)), ("scaffold", .map([("summarizer", .bool(true)), ("corrector", .bool(false)), ("maxTurns", .int(6))])),
         ("seed", .uint(7))]
    }

    /// Any order, unknown keys, repeats (the first counts), nulls for optionals, integers where
    /// doubles go, signed where unsigned go, a hostile ttl: as the generic decoder reads them.
    @Test func layoutsTheGenericDecoderAccepts() {
        let junk: V = .array([.map([("x", .array([.null, .bool(true), .uint(.max)]))]), .string("\u{0}")])
        let base = Self.specFields
        let cases: [V] = [
            Self.spec(base),
            Self.spec(base.reversed()),
            Self.spec(base + [("junk", junk), ("verify", .null), ("priority", .null), ("trace", .null), ("work", .null), ("sandbox", .null),
                              ("simulated", .null), ("transcriptBytes", .null)]),
            Self.spec(base + [("model", .int(3)), ("seed", .string("no")), ("priority", .int(4)), ("priority", .string("no"))]),
            Self.spec(base.map { $0.0 == "ttl" ? ("ttl", .int(-5)) : $0 }),
            Self.spec(base.map { $0.0 == "ttl" ? ("ttl", .double(.nan)) : $0 }),
            Self.spec(base.map { $0.0 == "ttl" ? ("ttl", .double(.infinity)) : $0 }),
            Self.spec(base.map { $0.0 == "seed" ? ("seed", .int(5)) : $0 }),
            Self.spec(base.map { $0.0 == "inputs" ? ("inputs", .map([("k", .string("first")), ("k", .int(2)), ("j", .string(""))])) : $0 }),
            Self.spec(base + [("verify", .map([("python", .map([("_0", .string("assert 1"))]))]))]),
            Self.spec(base + [("simulated", .map([("seconds", .double(.nan)), ("success", .int(-1)), ("tokens", .int(Int64.min))]))]),
            Self.spec(base + [("simulated", .map([("x", junk), ("success", .double(1)), ("success", .string("no")), ("tokens", .double(-.infinity)),
                                                  ("seconds", .double(0)), ("seconds", .null)])),
                              ("simulated", .string("a repeat: only the first counts"))]),
            Self.spec(base + [("simulated", .null), ("simulated", .map([]))]),
            .map([("dispatch", .map([("junk", junk), ("_0", .map(base)), ("_0", .null)]))]),
            .map([("ack", .map([("ids", .array([WorkerMessageDecodingTests.id(), WorkerMessageDecodingTests.id("a", "b", .uint(3))])), ("ids", .null)]))]),
            .map([("ack", .map([("junk", junk), ("ids", .array([]))]))]),
            .map([("heartbeat", .map([("anything", junk)]))]),
            .map([("cancel", .map([("id", WorkerMessageDecodingTests.id())]))]),
            .map([("welcome", .map([("heartbeat", .double(1)), ("liveness", .int(3))]))]),
        ]
        for (i, c) in cases.enumerated() { #expect(Self.agree(c.bytes, "case \(i)") != "refused", "case \(i)") }
    }

    /// Missing or mistyped fields, a negative seed, unknown cases: refused by both.
    @Test func layoutsBothRefuse() {
        let base = Self.specFields
        var cases: [V] = base.indices.map { i in Self.spec(base.enumerated().filter { $0.offset != i }.map(\.element)) }
        cases += [
            Self.spec(base.map { $0.0 == "seed" ? ("seed", .int(-1)) : $0 }),
            Self.spec(base.map { $0.0 == "seed" ? ("seed", .double(1)) : $0 }),
            Self.spec(base.map { $0.0 == "tokenCap" ? ("tokenCap", .uint(.max)) : $0 }),
            Self.spec(base.map { $0.0 == "ttl" ? ("ttl", .uint(1)) : $0 }),
            Self.spec(base.map { $0.0 == "ttl" ? ("ttl", .null) : $0 }),
            Self.spec(base.map { $0.0 == "inputs" ? ("inputs", .map([("k", .int(1))])) : $0 }),
            Self.spec(base.map { $0.0 == "inputs" ? ("inputs", .array([])) : $0 }),
            Self.spec(base.map { $0.0 == "scaffold" ? ("scaffold", .map([("summarizer", .bool(true)), ("corrector", .bool(false))])) : $0 }),
            Self.spec(base.map { $0.0 == "scaffold" ? ("scaffold", .map([("summarizer", .int(1)), ("corrector", .bool(false)), ("maxTurns", .int(1))])) : $0 }),
            Self.spec(base + [("priority", .double(1))]),
            Self.spec(base + [("verify", .string("python"))]),
            Self.spec(base + [("trace", .map([("traceparent", .string("x"))]))]),
            Self.spec(base + [("simulated", .map([("success", .double(1)), ("tokens", .double(2))]))]),
            Self.spec(base + [("simulated", .map([]))]),
            Self.spec(base + [("simulated", .map([("success", .uint(1)), ("tokens", .double(2)), ("seconds", .double(3))]))]),
            Self.spec(base + [("simulated", .map([("success", .double(1)), ("tokens", .null), ("seconds", .double(3))]))]),
            Self.spec(base + [("simulated", .map([("success", .double(1)), ("tokens", .string("2")), ("seconds", .double(3))]))]),
            Self.spec(base + [("simulated", .array([.double(1), .double(2), .double(3)]))]),
            Self.spec(base + [("simulated", .double(0.5))]),
            .map([("dispatch", .map([("_1", .map(base))]))]),
            .map([("dispatch", .null)]),
            .map([("ack", .map([("ids", .array([.null]))]))]),
            .map([("ack", .map([("ids", .null)]))]),
            .map([("ack", .map([]))]),
            .map([("heartbeat", .null)]),
            .map([("heartbeat", .map([])), ("ack", .map([("ids", .array([]))]))]),
            .map([("teleport", .map([]))]),
            .map([]),
            .string("dispatch"),
        ]
        for (i, c) in cases.enumerated() { #expect(Self.agree(c.bytes, "case \(i)") == "refused", "case \(i)") }
        #expect(Self.agree([]) == "refused")
    }

    @Test func everyTruncationAndTrailingByteIsRefused() throws {
        for m in Self.coordinatorSamples {
            let bytes = Array(m.encodeBinary())
            for cut in 0..<bytes.count {
                #expect(throws: DecodingError.self) { try CoordinatorMessage.decode(binary: Data(bytes[..<cut])) }
            }
            #expect(throws: DecodingError.self) { try CoordinatorMessage.decode(binary: Data(bytes + [0])) }
        }
    }

    @Test func depthIsLimitedInSkippedFieldsToo() {
        func nested(_ depth: Int) -> V { (0..<depth).reduce(V.null) { v, _ in .array([v]) } }
        for (depth, accepted) in [(60, true), (61, false), (500, false)] {
            let frame = Self.spec(Self.specFields + [("junk", nested(depth))])
            #expect((Self.agree(frame.bytes, "depth \(depth)") != "refused") == accepted, "depth \(depth)")
        }
    }

    /// Random damage — bytes overwritten, inserted, deleted; lengths and counts lying — never
    /// crashes, and both decoders reach the same verdict and value.
    @Test func corruptedFramesGetTheGenericVerdict() {
        var rng = TestRNG(state: 777)
        let samples = Self.coordinatorSamples.map { Array($0.encodeBinary()) }
        var refused = 0
        for round in 0..<20_000 {
            var bytes = samples[round % samples.count]
            damageFrame(&bytes, using: &rng)
            if Self.agree(bytes, "round \(round)") == "refused" { refused += 1 }
        }
        #expect(refused > 1000)
    }
}
