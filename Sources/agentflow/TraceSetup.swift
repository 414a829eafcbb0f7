import AgentFlowCore
import Traces

/// The tracer of a coordinator or worker process when the cluster file turns traces on
/// (`telemetry: {otlp: URL}`), else nil: no spans are made and dispatches carry no trace context.
/// `instance` names the process in the spans' resource (`service.instance.id`); problems
/// reaching the collector are said on stderr, at most once a minute, and never stop the process.
func makeTracer(_ telemetry: TelemetrySpec?, instance: String) -> OTLPTracer? {
    guard let telemetry else { return nil }
    let exporter = OTLPExporter(url: telemetry.tracesURL, resource: [
        ("service.name", .string(telemetry.serviceName)), ("service.instance.id", .string(instance)),
    ], onProblem: { printError("\(instance): traces: \($0)") })
    return OTLPTracer(exporter: exporter)
}
