import Crypto
import Foundation

/// What a dispatch carries so the worker's spans (model calls, actions, verifier runs) join the
/// job's trace as children of the attempt's span: the W3C trace context, and the model's prices
/// for the cost attribute of each model call.
public struct TraceContext: Codable, Sendable, Equatable {
    /// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>` (W3C Trace Context).
    public var traceparent: String
    /// USD per 1M input and output tokens of the attempt's model.
    public var priceInput: Double
    public var priceOutput: Double

    public init(traceparent: String, priceInput: Double, priceOutput: Double) {
        self.traceparent = traceparent
        self.priceInput = priceInput
        self.priceOutput = priceOutput
    }
}

/// The trace and span ids of a job's spans, derived from the job's, its subtasks' and its
/// attempts' ids (the first bytes of a SHA-256): the coordinator needs no memory to know them,
/// so after a restart its spans still join the job's one trace with the same parents, and a
/// dispatch names the attempt's span before the span itself is exported (when the attempt ends).
public enum TraceIDs {
    /// 16 bytes: the trace of job `job`.
    public static func trace(job: String) -> [UInt8] { derive("trace", job, count: 16) }
    /// 8 bytes each: the job's span, a subtask's, an attempt's.
    public static func jobSpan(_ job: String) -> [UInt8] { derive("job", job, count: 8) }
    public static func subtaskSpan(job: String, subtask: String) -> [UInt8] { derive("subtask", job + "\u{0}" + subtask, count: 8) }
    public static func attemptSpan(_ id: AttemptID) -> [UInt8] { derive("attempt", "\(id.job)\u{0}\(id.subtask)\u{0}\(id.n)", count: 8) }

    /// The W3C `traceparent` naming attempt `id`'s span as the parent (sampled).
    public static func traceparent(attempt id: AttemptID) -> String {
        "00-" + hex(trace(job: id.job)) + "-" + hex(attemptSpan(id)) + "-01"
    }

    /// Trace id and parent span id of a W3C `traceparent` (version 00, ids not all zero); nil otherwise.
    public static func parse(traceparent: String) -> (trace: [UInt8], parent: [UInt8], sampled: Bool)? {
        let parts = traceparent.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
              let trace = bytes(parts[1]), let span = bytes(parts[2]), let flags = bytes(parts[3]),
              trace.contains(where: { $0 != 0 }), span.contains(where: { $0 != 0 }) else { return nil }
        return (trace, span, flags[0] & 1 == 1)
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(_ text: Substring) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        for i in stride(from: 0, to: u.count, by: 2) {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    static func derive(_ kind: String, _ name: String, count: Int) -> [UInt8] {
        var bytes = Array(SHA256.hash(data: Data("agentflow \(kind)\u{0}\(name)".utf8)).prefix(count))
        // An id of all zeros is invalid in W3C Trace Context and OTLP.
        if bytes.allSatisfy({ $0 == 0 }) { bytes[count - 1] = 1 }
        return bytes
    }
}
