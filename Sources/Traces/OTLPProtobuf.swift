import Tracing

/// The OTLP trace export request (`opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`)
/// encoded as protobuf, by hand: the handful of messages a span export needs (resource, scope,
/// span, event, status, key-value, any-value) do not justify a protobuf library and its code
/// generator. Field numbers and wire types are those of opentelemetry-proto v1
/// (https://github.com/open-telemetry/opentelemetry-proto/tree/main/opentelemetry/proto).
public enum OTLPProtobuf {
    /// One request: the spans of one process (`resource`) under one instrumentation scope.
    public static func exportRequest(resource: [(String, SpanAttribute)], scope: String, version: String, spans: [FinishedSpan]) -> [UInt8] {
        var scopeSpans = ProtobufWriter()
        var scopeMessage = ProtobufWriter()
        scopeMessage.string(1, scope)
        scopeMessage.string(2, version)
        scopeSpans.message(1, scopeMessage)
        for s in spans { scopeSpans.message(2, span(s)) }
        var resourceMessage = ProtobufWriter()
        for (k, v) in resource { resourceMessage.message(1, keyValue(k, v)) }
        var resourceSpans = ProtobufWriter()
        resourceSpans.message(1, resourceMessage)
        resourceSpans.message(2, scopeSpans)
        var request = ProtobufWriter()
        request.message(1, resourceSpans)
        return request.bytes
    }

    static func span(_ s: FinishedSpan) -> ProtobufWriter {
        var w = ProtobufWriter()
        w.bytesField(1, s.traceID)
        w.bytesField(2, s.spanID)
        if !s.parentSpanID.isEmpty { w.bytesField(4, s.parentSpanID) }
        w.string(5, s.name)
        w.varint(6, UInt64(kind(s.kind)))
        w.fixed64(7, s.startNanos)
        w.fixed64(8, max(s.endNanos, s.startNanos))
        for (k, v) in s.attributes { w.message(9, keyValue(k, v)) }
        for e in s.events {
            var event = ProtobufWriter()
            event.fixed64(1, e.nanos)
            event.string(2, e.name)
            for (k, v) in e.attributes { event.message(3, keyValue(k, v)) }
            w.message(11, event)
        }
        if let status = s.status {
            var m = ProtobufWriter()
            if let message = status.message { m.string(2, message) }
            m.varint(3, status.code == .ok ? 1 : 2)
            w.message(15, m)
        }
        return w
    }

    /// `Span.SpanKind`: INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5.
    static func kind(_ k: SpanKind) -> Int {
        switch k {
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        default: 1
        }
    }

    static func keyValue(_ key: String, _ value: SpanAttribute) -> ProtobufWriter {
        var w = ProtobufWriter()
        w.string(1, key)
        w.message(2, anyValue(value))
        return w
    }

    /// `AnyValue`: string 1, bool 2, int 3, double 4, array 5.
    static func anyValue(_ value: SpanAttribute) -> ProtobufWriter {
        var w = ProtobufWriter()
        func array(_ items: [ProtobufWriter]) {
            var a = ProtobufWriter()
            for i in items { a.message(1, i) }
            w.message(5, a)
        }
        func scalar(_ build: (inout ProtobufWriter) -> Void) -> ProtobufWriter {
            var v = ProtobufWriter()
            build(&v)
            return v
        }
        switch value {
        case .string(let s): w.string(1, s)
        case .bool(let b): w.varint(2, b ? 1 : 0)
        case .int32(let i): w.varint(3, UInt64(bitPattern: Int64(i)))
        case .int64(let i): w.varint(3, UInt64(bitPattern: i))
        case .double(let d): w.double(4, d)
        case .stringArray(let a): array(a.map { s in scalar { $0.string(1, s) } })
        case .boolArray(let a): array(a.map { b in scalar { $0.varint(2, b ? 1 : 0) } })
        case .int32Array(let a): array(a.map { i in scalar { $0.varint(3, UInt64(bitPattern: Int64(i))) } })
        case .int64Array(let a): array(a.map { i in scalar { $0.varint(3, UInt64(bitPattern: i)) } })
        case .doubleArray(let a): array(a.map { d in scalar { $0.double(4, d) } })
        case .stringConvertible(let c): w.string(1, c.description)
        case .stringConvertibleArray(let a): array(a.map { c in scalar { $0.string(1, c.description) } })
        default: w.string(1, "\(value)")
        }
        return w
    }
}

/// Protobuf's wire format, just what ``OTLPProtobuf`` writes: varints, fixed64, doubles and
/// length-delimited fields (strings, bytes, nested messages).
struct ProtobufWriter {
    var bytes: [UInt8] = []

    mutating func tag(_ field: Int, _ wireType: UInt8) { rawVarint(UInt64(field) << 3 | UInt64(wireType)) }

    mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ value: UInt64) {
        tag(field, 0)
        rawVarint(value)
    }

    mutating func fixed64(_ field: Int, _ value: UInt64) {
        tag(field, 1)
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func double(_ field: Int, _ value: Double) { fixed64(field, value.bitPattern) }

    mutating func bytesField(_ field: Int, _ value: [UInt8]) {
        tag(field, 2)
        rawVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytesField(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ value: ProtobufWriter) { bytesField(field, value.bytes) }
}
