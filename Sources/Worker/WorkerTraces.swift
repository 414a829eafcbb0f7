import AgentFlowCore
import Foundation
import Tracing
import Traces

/// A worker's spans: for each attempt dispatched with a trace context
/// (``AgentFlowCore/AttemptSpec/trace``), a span per model call (`chat MODEL`, with the
/// OpenTelemetry GenAI attributes: tokens in and out, finish reason, and the call's cost at the
/// model's prices), per action (`agentflow.action`) and per verifier run
/// (`agentflow.verifier`), children of the attempt's span on the coordinator. They are made
/// from the attempt's transcript entries as they arrive (their times are the worker's), so
/// what the transcript says and what the trace shows agree. Texts on spans are cut short (a
/// label, a status, a summary): the transcript holds them whole.
///
/// Not thread-safe: the worker's loop thread uses it.
final class WorkerTraces {
    let tracer: OTLPTracer

    struct Attempt {
        var context: ServiceContext
        var trace: TraceContext
        var model: String
        /// Calls whose request was recorded and whose reply was not yet: when, role, max tokens.
        var calls: [Int: (at: Double, role: String, maxTokens: Int?)] = [:]
    }

    private var attempts: [AttemptID: Attempt] = [:]

    init(tracer: OTLPTracer) {
        self.tracer = tracer
    }

    func started(_ spec: AttemptSpec) {
        guard let trace = spec.trace else { return }
        var context = ServiceContext.topLevel
        tracer.extract(["traceparent": trace.traceparent], into: &context, using: HeaderExtractor())
        guard context.spanIDs != nil else { return }
        attempts[spec.id] = Attempt(context: context, trace: trace, model: spec.model)
    }

    func ended(_ id: AttemptID) {
        attempts[id] = nil
    }

    func recorded(_ id: AttemptID, _ entries: [TranscriptEntry]) {
        guard var a = attempts[id] else { return }
        for e in entries {
            switch e.event {
            case .request(let call, let role, _, let maxTokens):
                a.calls[call] = (e.at, role, maxTokens)
            case .reply(let call, let r):
                let request = a.calls.removeValue(forKey: call)
                // The request is recorded as it is sent (the calibration call's once it is done).
                let start = min(request?.at ?? .infinity, e.at - r.seconds)
                let span = tracer.startSpan("chat \(a.model)", context: a.context, ofKind: .client, at: EpochInstant(seconds: start))
                var attrs = SpanAttributes()
                attrs["gen_ai.operation.name"] = "chat"
                attrs["gen_ai.system"] = "openai"
                attrs["gen_ai.request.model"] = a.model
                if let m = request?.maxTokens { attrs["gen_ai.request.max_tokens"] = Int64(m) }
                attrs["gen_ai.usage.input_tokens"] = Int64(r.tokensIn)
                attrs["gen_ai.usage.output_tokens"] = Int64(r.tokensOut)
                if let f = r.finishReason { attrs["gen_ai.response.finish_reasons"] = [f] }
                attrs["agentflow.role"] = request?.role ?? ""
                attrs["agentflow.attempt"] = id.description
                attrs["agentflow.call"] = Int64(call)
                attrs["agentflow.cost.usd"] = (Double(r.tokensIn) * a.trace.priceInput + Double(r.tokensOut) * a.trace.priceOutput) / 1_000_000
                if let t = r.firstTokenSeconds { attrs["agentflow.first_token.seconds"] = t }
                span.attributes = attrs
                if let error = r.error { span.setStatus(SpanStatus(code: .error, message: String(error.prefix(300)))) }
                span.end(at: EpochInstant(seconds: max(e.at, start + r.seconds)))
            case .action(let action):
                let span = tracer.startSpan("agentflow.action", context: a.context, ofKind: .internal, at: EpochInstant(seconds: e.at - action.seconds))
                var attrs = SpanAttributes()
                attrs["agentflow.attempt"] = id.description
                attrs["agentflow.action.kind"] = String(action.kind.prefix(32))
                attrs["agentflow.action.label"] = String(action.label.prefix(300))
                attrs["agentflow.action.status"] = String(action.status.prefix(300))
                if let code = action.exitCode { attrs["process.exit.code"] = Int64(code) }
                span.attributes = attrs
                if let code = action.exitCode, code != 0 { span.setStatus(SpanStatus(code: .error, message: String(action.status.prefix(300)))) }
                span.end(at: EpochInstant(seconds: e.at))
            case .verifier(let v):
                let span = tracer.startSpan("agentflow.verifier", context: a.context, ofKind: .internal, at: EpochInstant(seconds: e.at - v.seconds))
                var attrs = SpanAttributes()
                attrs["agentflow.attempt"] = id.description
                attrs["agentflow.verifier.passed"] = v.passed
                if !v.summary.isEmpty { attrs["agentflow.verifier.summary"] = String(v.summary.prefix(1000)) }
                span.attributes = attrs
                span.setStatus(v.passed ? SpanStatus(code: .ok) : SpanStatus(code: .error, message: String(v.summary.prefix(300))))
                span.end(at: EpochInstant(seconds: e.at))
            case .message, .note:
                break
            }
        }
        attempts[id] = a
    }
}

/// `traceparent` from a dictionary of header-like strings.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
