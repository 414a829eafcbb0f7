import AgentFlowCore
import Foundation
import Store
import Synchronization
import Tracing
import Traces

/// The coordinator's spans of a job: `agentflow.job` (the root), an `agentflow.subtask` per
/// subtask that had attempts, an `agentflow.attempt` per dispatched attempt — made when the job
/// ends, from what the store says (times, tokens, cost, how each ended), so a coordinator that
/// restarted mid-job still exports the whole job. The ids come from the job's, subtasks' and
/// attempts' ids (``AgentFlowCore/TraceIDs``): one trace per job, and the worker's spans (model
/// calls, actions, verifier runs, parented through the dispatch's `traceparent`) land under
/// their attempt's span.
///
/// The spans are made on a serial queue of their own with its own read connection, a few
/// seconds after the job ends (``settle``): attempts cancelled at the end have reported by then.
/// Attempts still unreported are exported as they stand (`agentflow.attempt.state` dispatched).
public final class JobTraces: @unchecked Sendable {
    // `reader` is used only on `queue` (serial).
    let tracer: OTLPTracer
    private let reader: Store
    private let queue = DispatchQueue(label: "agentflow.traces", qos: .utility)
    let settle: Duration
    /// The coordinator's clock: when spans are due (monotonic) and what an unended span's end says (wall).
    let time: any TimeSource

    /// `reader`: a read connection to the coordinator's database, used only on this object's queue.
    public init(tracer: OTLPTracer, reader: Store, settle: Duration, time: any TimeSource = SystemTime()) {
        self.tracer = tracer
        self.reader = reader
        self.settle = settle
        self.time = time
    }

    /// Jobs that ended, and when their spans are due.
    private let pending = Mutex<[(job: String, due: MonotonicInstant)]>([])

    /// A job ended (or was quarantined): its spans go out once it settled.
    func ended(_ job: String) {
        pending.withLock { $0.append((job, time.instant + settle)) }
        queue.asyncAfter(deadline: .now() + settle.seconds) { [self] in exportDue(all: false) }
    }

    /// The coordinator stops: the spans of every job that ended are made now and posted (at
    /// most `timeout` seconds).
    public func finish(timeout: Double) {
        queue.sync { exportDue(all: true) }
        tracer.exporter.flush(timeout: timeout)
    }

    private func exportDue(all: Bool) {
        let clock = time.instant
        let due = pending.withLock { list -> [String] in
            let ready = list.filter { all || $0.due <= clock }.map(\.job)
            list.removeAll { all || $0.due <= clock }
            return ready
        }
        // Wall time only for what the spans say (their end, for people).
        let now = time.wallInstant
        // A read that fails costs that job its spans, nothing else.
        for job in due { try? export(job, now: now) }
    }

    func export(_ id: String, now: WallInstant) throws {
        guard let job = try reader.job(id) else { return }
        let subtasks = try reader.subtasks(of: id)
        let attempts = try reader.attempts(of: id)
        let trace = TraceIDs.trace(job: id)
        let jobSpanID = TraceIDs.jobSpan(id)
        let jobEnd = job.endedAt ?? now
        let bySubtask = Dictionary(grouping: attempts, by: \.id.subtask)

        for a in attempts {
            guard let dispatched = a.dispatchedAt else { continue }
            let span = tracer.startSpan(
                "agentflow.attempt", context: .span(trace: trace, id: TraceIDs.attemptSpan(a.id), parent: TraceIDs.subtaskSpan(job: id, subtask: a.id.subtask)),
                ofKind: .internal, at: EpochInstant(seconds: dispatched.secondsSince1970))
            var attrs = SpanAttributes()
            attrs["agentflow.job"] = id
            attrs["agentflow.subtask"] = a.id.subtask
            attrs["agentflow.attempt"] = a.id.description
            attrs["agentflow.attempt.n"] = Int64(a.id.n)
            attrs["agentflow.attempt.state"] = a.state.rawValue
            attrs["agentflow.model"] = a.model
            attrs["gen_ai.request.model"] = a.model
            attrs["agentflow.worker"] = a.worker ?? ""
            attrs["agentflow.tokens.input"] = Int64(a.tokensIn)
            attrs["agentflow.tokens.output"] = Int64(a.tokensOut)
            attrs["agentflow.tokens.cap"] = Int64(a.tokenCap)
            attrs["agentflow.cost.usd"] = a.usd.usd
            attrs["agentflow.queue.seconds"] = max(0, dispatched.seconds(since: a.createdAt))
            if !a.detail.isEmpty { attrs["agentflow.detail"] = String(a.detail.prefix(1000)) }
            span.attributes = attrs
            switch a.state {
            case .succeeded: span.setStatus(SpanStatus(code: .ok))
            case .failed, .lost: span.setStatus(SpanStatus(code: .error, message: String(a.detail.prefix(300))))
            default: break
            }
            span.end(at: EpochInstant(seconds: (a.endedAt ?? now).secondsSince1970))
        }

        for s in subtasks {
            guard let list = bySubtask[s.id], let first = list.map(\.createdAt).min() else { continue }
            let span = tracer.startSpan("agentflow.subtask", context: .span(trace: trace, id: TraceIDs.subtaskSpan(job: id, subtask: s.id), parent: jobSpanID),
                                        ofKind: .internal, at: EpochInstant(seconds: first.secondsSince1970))
            var attrs = SpanAttributes()
            attrs["agentflow.job"] = id
            attrs["agentflow.subtask"] = s.id
            attrs["agentflow.subtask.state"] = s.state.rawValue
            attrs["agentflow.attempts"] = Int64(list.count)
            attrs["agentflow.tokens"] = Int64(s.tokens)
            attrs["agentflow.cost.usd"] = s.usd.usd
            if let m = s.model { attrs["agentflow.model"] = m }
            span.attributes = attrs
            span.setStatus(SpanStatus(code: s.state == .succeeded ? .ok : .error, message: s.state == .succeeded ? nil : "subtask \(s.state.rawValue)"))
            span.end(at: EpochInstant(seconds: (list.compactMap(\.endedAt).max() ?? jobEnd).secondsSince1970))
        }

        let span = tracer.startSpan("agentflow.job", context: .span(trace: trace, id: jobSpanID, parent: nil), ofKind: .internal,
                                    at: EpochInstant(seconds: job.submittedAt.secondsSince1970))
        var attrs = SpanAttributes()
        attrs["agentflow.job"] = id
        attrs["agentflow.workflow"] = job.workflowName
        attrs["agentflow.tenant"] = job.tenant
        attrs["agentflow.planner"] = job.planner
        attrs["agentflow.job.state"] = job.state.rawValue
        attrs["agentflow.job.reason"] = String(job.reason.prefix(1000))
        attrs["agentflow.tokens"] = Int64(job.spentTokens)
        attrs["agentflow.cost.usd"] = job.spentUSD.usd
        if let t = job.limitTokens { attrs["agentflow.budget.tokens"] = Int64(t) }
        if let u = job.limitUSD { attrs["agentflow.budget.usd"] = u.usd }
        attrs["agentflow.deadline.seconds"] = job.deadline.seconds(since: job.submittedAt)
        attrs["agentflow.subtasks"] = Int64(subtasks.count)
        attrs["agentflow.subtasks.succeeded"] = Int64(subtasks.filter { $0.state == .succeeded }.count)
        attrs["agentflow.attempts"] = Int64(attempts.count)
        span.attributes = attrs
        span.setStatus(SpanStatus(code: job.state == .succeeded ? .ok : .error, message: job.state == .succeeded ? nil : "\(job.state.rawValue): \(job.reason.prefix(300))"))
        span.end(at: EpochInstant(seconds: jobEnd.secondsSince1970))
    }
}
