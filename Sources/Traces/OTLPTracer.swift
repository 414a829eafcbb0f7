import AgentFlowCore
import Foundation
import Synchronization
import Tracing

/// A tracer of the tracing API (swift-distributed-tracing's `Tracer`) whose ended spans go to
/// an ``OTLPExporter``. Its trace context crosses processes as W3C `traceparent`
/// (``extract(_:into:using:)`` / ``inject(_:into:using:)``).
///
/// Most spans here are made after the fact, from what the store or a transcript says happened,
/// with their real start and end (`at:`); a context made with
/// ``Tracing/ServiceContext/span(trace:id:parent:)`` gives the next span ids decided in advance
/// (``AgentFlowCore/TraceIDs``), so a job's spans share one trace and find their parents across
/// processes and restarts.
///
/// Why not swift-otel's tracer and exporter (1.6.0 is in the package set): its public API is
/// `OTel.bootstrap` / `OTel.makeTracingBackend`, a tracer whose span ids are random and whose id
/// generator, span processor, exporter and span types are internal. The coordinator here makes
/// a job's spans after the fact, from its store, with ids derived from the job's ids: a
/// coordinator restarted mid-job still exports the whole tree, and the worker's spans, parented
/// by the `traceparent` a dispatch carried before the restart, land under the same attempt span
/// — random ids held by live spans cannot do that. It would also bring async-http-client,
/// swift-protobuf and (by default) gRPC into every clean build. What is written here instead:
/// the tracing API's `Tracer` over an OTLP/HTTP protobuf exporter (``OTLPExporter``,
/// ``OTLPProtobuf``), checked end to end by the `opentelemetry-proto` package's own decoder
/// (tools/traces-check.sh).
///
/// ```swift
/// let tracer = OTLPTracer(exporter: OTLPExporter(url: "http://127.0.0.1:4318/v1/traces", resource: [("service.name", .string("agentflow"))]))
/// let span = tracer.startSpan("agentflow.job", context: .span(trace: t, id: s, parent: nil), ofKind: .internal, at: EpochInstant(seconds: start))
/// span.attributes["agentflow.job"] = "j-1"
/// span.end(at: EpochInstant(seconds: end))
/// ```
public final class OTLPTracer: Tracer, Sendable {
    public typealias Span = RecordedSpan
    public let exporter: OTLPExporter

    public init(exporter: OTLPExporter) {
        self.exporter = exporter
    }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> RecordedSpan {
        let parent = context()
        let current = parent[SpanIDsKey.self]
        let preset = parent[PresetSpanKey.self]
        let ids = SpanIDs(trace: preset?.trace ?? current?.trace ?? Self.random(16), span: preset?.span ?? Self.random(8))
        var own = parent
        own[SpanIDsKey.self] = ids
        own[PresetSpanKey.self] = nil
        return RecordedSpan(name: operationName, kind: kind, ids: ids, parent: current?.span ?? [], start: instant().nanosecondsSinceEpoch,
                            context: own, exporter: exporter)
    }

    public func forceFlush() { exporter.flush() }

    /// Takes a `traceparent` out of the carrier: spans started in the context are its children.
    public func extract<Carrier, Extract>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract: Extractor, Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier), let p = TraceIDs.parse(traceparent: header) else { return }
        context[SpanIDsKey.self] = SpanIDs(trace: p.trace, span: p.parent)
    }

    public func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        guard let ids = context[SpanIDsKey.self] else { return }
        injector.inject("00-\(TraceIDs.hex(ids.trace))-\(TraceIDs.hex(ids.span))-01", forKey: "traceparent", into: &carrier)
    }

    static func random(_ count: Int) -> [UInt8] {
        var bytes = (0..<count).map { _ in UInt8.random(in: 0...255) }
        if bytes.allSatisfy({ $0 == 0 }) { bytes[count - 1] = 1 }
        return bytes
    }
}

/// A trace id and a span id.
public struct SpanIDs: Sendable, Equatable {
    public var trace: [UInt8]
    public var span: [UInt8]

    public init(trace: [UInt8], span: [UInt8]) {
        self.trace = trace
        self.span = span
    }
}

/// The current span's ids in a context.
enum SpanIDsKey: ServiceContextKey {
    typealias Value = SpanIDs
}

/// The ids the next span started in a context takes.
enum PresetSpanKey: ServiceContextKey {
    typealias Value = SpanIDs
}

extension ServiceContext {
    /// A context in which the next span gets trace `trace` and span id `id`, as a child of span
    /// `parent` (nil: a root span).
    public static func span(trace: [UInt8], id: [UInt8], parent: [UInt8]?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let parent { context[SpanIDsKey.self] = SpanIDs(trace: trace, span: parent) }
        context[PresetSpanKey.self] = SpanIDs(trace: trace, span: id)
        return context
    }

    /// The ids of the span this context belongs to (after `extract`, the remote parent's).
    public var spanIDs: SpanIDs? { self[SpanIDsKey.self] }
}

/// A span of ``OTLPTracer``: attributes, events and status are kept under a lock until `end`,
/// which hands the span to the exporter once.
public final class RecordedSpan: Tracing.Span, Sendable {
    struct State {
        var name: String
        var attributes = SpanAttributes()
        var events: [SpanEvent] = []
        var status: SpanStatus?
        var ended = false
    }

    public let context: ServiceContext
    let kind: SpanKind
    let ids: SpanIDs
    let parent: [UInt8]
    let start: UInt64
    let exporter: OTLPExporter
    private let state: Mutex<State>

    init(name: String, kind: SpanKind, ids: SpanIDs, parent: [UInt8], start: UInt64, context: ServiceContext, exporter: OTLPExporter) {
        self.kind = kind
        self.ids = ids
        self.parent = parent
        self.start = start
        self.context = context
        self.exporter = exporter
        state = Mutex(State(name: name))
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    public var isRecording: Bool { state.withLock { !$0.ended } }

    public func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }

    public func addEvent(_ event: SpanEvent) { state.withLock { $0.events.append(event) } }

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        var a = attributes
        a["exception.message"] = "\(error)"
        let event = SpanEvent(name: "exception", at: instant(), attributes: a)
        state.withLock { $0.events.append(event) }
    }

    /// Links are not exported (nothing here makes them).
    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let end = instant().nanosecondsSinceEpoch
        guard let s = state.withLock({ s -> State? in
            guard !s.ended else { return nil }
            s.ended = true
            return s
        }) else { return }
        var attributes: [(String, SpanAttribute)] = []
        s.attributes.forEach { attributes.append(($0, $1)) }
        attributes.sort { $0.0 < $1.0 }
        let events = s.events.map { e -> (name: String, nanos: UInt64, attributes: [(String, SpanAttribute)]) in
            var list: [(String, SpanAttribute)] = []
            e.attributes.forEach { list.append(($0, $1)) }
            return (e.name, e.nanosecondsSinceEpoch, list)
        }
        exporter.export(FinishedSpan(traceID: ids.trace, spanID: ids.span, parentSpanID: parent, name: s.name, kind: kind, startNanos: start,
                                     endNanos: max(end, start), attributes: attributes, events: events, status: s.status))
    }
}
