import Tracing

/// A span that has ended, as it is exported: ids, parent, name, kind, times, attributes,
/// events and status. What ``OTLPTracer``'s spans become on `end()`.
public struct FinishedSpan: Sendable {
    public var traceID: [UInt8]
    public var spanID: [UInt8]
    /// Empty for a root span.
    public var parentSpanID: [UInt8]
    public var name: String
    public var kind: SpanKind
    public var startNanos: UInt64
    public var endNanos: UInt64
    public var attributes: [(String, SpanAttribute)]
    public var events: [(name: String, nanos: UInt64, attributes: [(String, SpanAttribute)])]
    public var status: SpanStatus?

    public init(traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8], name: String, kind: SpanKind, startNanos: UInt64, endNanos: UInt64,
                attributes: [(String, SpanAttribute)] = [], events: [(name: String, nanos: UInt64, attributes: [(String, SpanAttribute)])] = [],
                status: SpanStatus? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startNanos = startNanos
        self.endNanos = endNanos
        self.attributes = attributes
        self.events = events
        self.status = status
    }
}

/// A wall-clock instant given as seconds since 1970 (what the store and transcripts hold), for
/// the tracing API's `at:` parameters: spans here are mostly made after the fact.
public struct EpochInstant: TracerInstant {
    public var nanosecondsSinceEpoch: UInt64

    public init(seconds: Double) {
        nanosecondsSinceEpoch = seconds.isFinite && seconds > 0 ? UInt64(min(seconds, 1e10) * 1e9) : 0
    }

    public init(nanoseconds: UInt64) { nanosecondsSinceEpoch = nanoseconds }

    public static func < (a: EpochInstant, b: EpochInstant) -> Bool { a.nanosecondsSinceEpoch < b.nanosecondsSinceEpoch }
}
