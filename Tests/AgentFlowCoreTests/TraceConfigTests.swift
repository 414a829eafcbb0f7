import AgentFlowCore
import Coordinator
import Foundation
import Testing
import Traces
import Wire

/// Traces below the processes: `telemetry:` in cluster.yaml (off when absent, clear errors when
/// wrong), the W3C trace context a dispatch carries (only when traces are on, naming the
/// attempt's span, crossing the wire intact), and an exporter whose collector is gone (it drops
/// and counts, never blocks). tools/traces-check.sh checks the spans end to end with a real
/// OTLP decoder.
@Suite struct TraceConfigTests {
    let base = """
        models: [{name: m, price: {input: 1, output: 2}}]
        workers: [{name: w, model: m, backend: {kind: sim}}]

        """

    @Test func telemetryIsOffWithoutTheKeyAndOnWithAnOTLPURL() throws {
        #expect(try Cluster.parse(yaml: base, file: "c.yaml").telemetry == nil)
        let on = try #require(try Cluster.parse(yaml: base + "telemetry: {otlp: \"http://127.0.0.1:4318\"}\n", file: "c.yaml").telemetry)
        #expect(on.tracesURL == "http://127.0.0.1:4318/v1/traces" && on.serviceName == "agentflow")
        let full = try #require(try Cluster.parse(yaml: base + "telemetry: {otlp: \"https://otel.example:4318/v1/traces/\", serviceName: af-prod}\n", file: "c.yaml").telemetry)
        #expect(full.tracesURL == "https://otel.example:4318/v1/traces" && full.serviceName == "af-prod")
    }

    @Test func aBadTelemetrySectionIsRefusedNamingWhatIsWrong() {
        let cases: [(String, String)] = [
            ("telemetry: {otlp: \"grpc://127.0.0.1:4317\"}", "telemetry.otlp must be an http:// or https:// URL"),
            ("telemetry: {otlp: \"http://\"}", "telemetry.otlp must be"),
            ("telemetry: {otlp: \"http://a b:4318\"}", "telemetry.otlp must be"),
            ("telemetry: {otlp: \"http://h:4318/?x=1\"}", "telemetry.otlp must be"),
            ("telemetry: {otlp: \"http://h:4318/\\u0007\"}", "telemetry.otlp must be"),
            ("telemetry: {serviceName: x}", "telemetry needs otlp"),
            ("telemetry: {otlp: \"http://h:4318\", sampler: always}", "sampler"),
            ("telemetry: {otlp: \"http://h:4318\", serviceName: \"a b\"}", "telemetry.serviceName"),
            ("telemetry: http://h:4318", "telemetry"),
        ]
        for (yaml, expected) in cases {
            do {
                _ = try Cluster.parse(yaml: base + yaml + "\n", file: "c.yaml")
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect("\(error)".contains(expected), "\(yaml): \(error)")
            }
        }
    }

    @Test func aTraceparentNamesTheAttemptsSpanAndParsesBack() throws {
        let id = AttemptID(job: "j-1", subtask: "fix", n: 2)
        let header = TraceIDs.traceparent(attempt: id)
        #expect(header.count == 55 && header.hasPrefix("00-") && header.hasSuffix("-01"))
        let parsed = try #require(TraceIDs.parse(traceparent: header))
        #expect(parsed.trace == TraceIDs.trace(job: "j-1") && parsed.parent == TraceIDs.attemptSpan(id) && parsed.sampled)
        // One trace per job; every span of it a different id.
        let other = AttemptID(job: "j-1", subtask: "fix", n: 3)
        #expect(TraceIDs.parse(traceparent: TraceIDs.traceparent(attempt: other))?.trace == parsed.trace)
        let spans = [TraceIDs.jobSpan("j-1"), TraceIDs.subtaskSpan(job: "j-1", subtask: "fix"), TraceIDs.attemptSpan(id), TraceIDs.attemptSpan(other)]
        #expect(Set(spans.map(TraceIDs.hex)).count == 4 && spans.allSatisfy { $0.count == 8 })
        #expect(TraceIDs.trace(job: "j-2") != parsed.trace)
        for bad in ["", "00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                    "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"] {
            #expect(TraceIDs.parse(traceparent: bad) == nil, "accepted \(bad)")
        }
    }

    /// A harness whose core was made with traces on or off, as `Coordinator` makes it.
    func harness(traces: Bool) throws -> CoreHarness {
        let h = try CoreHarness()
        var options = Coordinator.Options(cluster: h.cluster).core(cluster: h.cluster)
        options.traces = traces
        let shell = CoordinatorShell(core: CoordinatorCore(cluster: h.cluster, options: options), store: h.store, board: LiveBoard(),
                                     telemetry: Telemetry(metrics: .shared))
        _ = try shell.start(reader: try h.store.reader(), cluster: h.cluster, at: CoreTime(h.clock), send: { _ in })
        h.shell = shell
        return h
    }

    @Test func aDispatchCarriesTheAttemptsTraceContextOnlyWhenTracesAreOn() throws {
        let off = try harness(traces: false)
        try off.register("w0#1")
        _ = try #require(CoreHarness.submitted(try off.submit(oneTask)))
        #expect(try #require(CoreHarness.dispatches(off.sent).first).spec.trace == nil)

        let on = try harness(traces: true)
        try on.register("w0#1")
        _ = try #require(CoreHarness.submitted(try on.submit(oneTask)))
        let spec = try #require(CoreHarness.dispatches(on.sent).first).spec
        let trace = try #require(spec.trace)
        #expect(trace.traceparent == TraceIDs.traceparent(attempt: spec.id))
        #expect(trace.priceInput == 0.02 && trace.priceOutput == 0.05)
        // It crosses the wire as it left.
        let codec = WireCodec()
        guard case .dispatch(let back) = try codec.decode(CoordinatorMessage.self, from: codec.encode(CoordinatorMessage.dispatch(spec))) else {
            Issue.record("not a dispatch")
            return
        }
        #expect(back.trace == trace)
    }

    @Test func anExporterWhoseCollectorIsGoneDropsAndCountsWithoutBlocking() throws {
        // A port nothing listens on: every post fails at once.
        let exporter = OTLPExporter(url: "http://127.0.0.1:9/v1/traces", resource: [("service.name", .string("t"))])
        let tracer = OTLPTracer(exporter: exporter)
        let started = Date()
        for i in 0..<3 {
            let span = tracer.startSpan("s\(i)", context: .topLevel, ofKind: .internal, at: EpochInstant(seconds: 1000))
            span.attributes["n"] = Int64(i)
            span.end(at: EpochInstant(seconds: 1001))
        }
        #expect(Date().timeIntervalSince(started) < 1, "ending spans waited on the collector")
        #expect(exporter.flush(timeout: 20))
        #expect(exporter.counts.exported == 0 && exporter.counts.dropped == 3)
        exporter.shutdown(timeout: 1)
    }
}
