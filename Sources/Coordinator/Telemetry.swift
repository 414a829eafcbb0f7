import AgentFlowCore
import CoreMetrics
import Foundation
import Observability
import Store
import Wire

/// What the coordinator keeps for operators, owned by its loop thread: a bounded window of
/// events per job (the HTTP events stream reads it through client requests) and its metrics
/// (swift-metrics objects writing into a Prometheus registry). Nothing here grows without bound:
/// windows hold `windowSize` events and at most `maxJobs` jobs; metric label sets are models,
/// roles, outcomes, workers and running jobs.
final class Telemetry {
    static let windowSize = 2048
    static let maxJobs = 256

    struct Window {
        var events: [JobEvent] = []
        var next = 1
        var first: Int { events.first?.seq ?? next }
    }

    var windows: [String: Window] = [:]
    /// Jobs with a window, oldest first (the oldest window goes when there are too many).
    var order: [String] = []

    let metrics: MetricsRegistry
    var attemptsTotal: [String: Counter] = [:]
    var tokensTotal: [String: Counter] = [:]
    var usdTotal: [String: FloatingPointCounter] = [:]
    var malformed: [String: Counter] = [:]
    var jobGauges: [String: Gauge] = [:]
    var remainingUSD: [String: Gauge] = [:]
    var remainingTokens: [String: Gauge] = [:]
    var slotGauges: [String: Gauge] = [:]
    let dispatchLatency: CoreMetrics.Timer
    let plannerDecision: CoreMetrics.Timer
    var nextRefresh = 0.0

    init(metrics: MetricsRegistry = .shared) {
        self.metrics = metrics
        dispatchLatency = CoreMetrics.Timer(label: "agentflow_dispatch_latency_seconds", dimensions: [], factory: metrics.factory)
        plannerDecision = CoreMetrics.Timer(label: "agentflow_planner_decision_seconds", dimensions: [], factory: metrics.factory)
        for socket in ["workers", "clients"] {
            malformed[socket] = Counter(label: "agentflow_malformed_messages_total", dimensions: [("socket", socket)], factory: metrics.factory)
        }
        for state in JobState.allCases {
            jobGauges[state.rawValue] = Gauge(label: "agentflow_jobs", dimensions: [("state", state.rawValue)], factory: metrics.factory)
        }
    }

    func append(_ job: String, kind: String, at: Double, state: String? = nil, reason: String? = nil, attempt: AttemptInfo? = nil,
                budget: BudgetReport? = nil) {
        if windows[job] == nil {
            order.append(job)
            if order.count > Self.maxJobs { windows[order.removeFirst()] = nil }
        }
        var w = windows[job] ?? Window()
        w.events.append(JobEvent(seq: w.next, kind: kind, at: isoTime(at), job: job, state: state, reason: reason, attempt: attempt, budget: budget))
        w.next += 1
        if w.events.count > Self.windowSize { w.events.removeFirst(w.events.count - Self.windowSize) }
        windows[job] = w
    }

    func batch(_ job: String, after: Int, live: Bool) -> EventBatch {
        guard let w = windows[job] else { return EventBatch(job: job, first: 1, next: 1, events: [], live: live) }
        let start = w.events.firstIndex { $0.seq > after } ?? w.events.count
        return EventBatch(job: job, first: w.first, next: w.next, events: Array(w.events[start...].prefix(512)), live: live)
    }

    func counter(_ cache: inout [String: Counter], _ label: String, _ dims: [(String, String)]) -> Counter {
        let key = dims.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        if let c = cache[key] { return c }
        let c = Counter(label: label, dimensions: dims, factory: metrics.factory)
        cache[key] = c
        return c
    }
}

extension AttemptRecord {
    /// The record as the API shows it; `progress` is what a running attempt has used so far.
    func info(progress: Int? = nil) -> AttemptInfo {
        let used = tokensIn + tokensOut
        return AttemptInfo(
            id: id.description, job: id.job, subtask: id.subtask, n: id.n, model: model, worker: worker, state: state.rawValue,
            tokenCap: tokenCap, tokens: state == .dispatched ? max(used, progress ?? 0) : used, tokensIn: tokensIn, tokensOut: tokensOut,
            usd: usd.usd, reservedTokens: reserved.tokens, reservedUSD: reserved.usd.usd, createdAt: isoTime(createdAt),
            dispatchedAt: dispatchedAt.map(isoTime), endedAt: endedAt.map(isoTime), detail: detail)
    }
}
