import AgentFlowCore
import Foundation
import Observability
import Logging
import Store
import Synchronization
import Wire

/// What the coordinator keeps for operators, fed by the core's notes after each commit
/// (``apply(_:)``): a log line per dispatch, result, loss, breaker change, planner decision and
/// job end; a bounded window of events per job (the HTTP events stream reads it through the
/// query service); and its metrics (`CoordinatorMetrics`, writing into a Prometheus registry).
/// Nothing here grows without bound: windows hold `windowSize` events and at most `maxJobs`
/// jobs; metric label sets are models, roles, outcomes, workers, running jobs and at most 100
/// tenants.
///
/// The windows are guarded by a lock (the query service reads them from its thread); the
/// job counts are touched only by the thread that applies notes — the loop's.
public final class Telemetry: @unchecked Sendable {
    static let windowSize = 2048
    static let maxJobs = 256
    /// The spans of ended jobs, when traces are on (`telemetry:` in cluster.yaml).
    public var traces: JobTraces?

    /// An event as recorded on the loop: plain values, turned into a `JobEvent` (ISO times,
    /// `AttemptInfo`) only when a reader asks, so recording costs a struct copy.
    struct Raw {
        var seq: Int
        var kind: String
        var at: WallInstant
        var state: String?
        var reason: String?
        var attempt: AttemptRecord?
        var progress: Int?
        var budget: BudgetReport?

        var event: JobEvent {
            JobEvent(seq: seq, kind: kind, at: isoTime(at), job: "", state: state, reason: reason,
                     attempt: attempt?.info(progress: progress), budget: budget)
        }
    }

    /// The last `limit` events of a job: a ring over `events`, `head` the oldest.
    struct Window {
        var events: [Raw] = []
        var head = 0
        var next = 1
        var first: Int { events.isEmpty ? next : events[head].seq }

        mutating func append(_ raw: Raw, limit: Int) {
            var r = raw
            r.seq = next
            next += 1
            if events.count < limit {
                events.append(r)
            } else {
                events[head] = r
                head = (head + 1) % events.count
            }
        }

        /// Events in order of their sequence numbers.
        var ordered: [Raw] { Array(events[head...] + events[..<head]) }
    }

    /// Every job's window, and the jobs with a window, oldest first (the oldest window goes when
    /// there are too many).
    struct Windows {
        var byJob: [String: Window] = [:]
        var order: [String] = []
    }

    private let events = Mutex(Windows())
    /// A copy of the windows (tests).
    var windows: [String: Window] { events.withLock { $0.byJob } }

    static let logger = Logger(label: "agentflow.coordinator")
    var log: Logger { Self.logger }
    /// The coordinator's Prometheus series (names, labels and help: `MetricCatalogue`).
    let metrics: CoordinatorMetrics
    /// Requests refused for want of a right (any thread may count).
    let refusals: RefusalMetrics
    /// Jobs per state in the store: read once at start, then kept from the notes.
    var jobCounts: [JobState: Int] = [:]

    public init(metrics: MetricsRegistry = .shared) {
        self.metrics = CoordinatorMetrics(registry: metrics)
        refusals = RefusalMetrics(registry: metrics)
    }

    func append(_ job: String, kind: String, at instant: WallInstant, state: String? = nil, reason: String? = nil, attempt: AttemptRecord? = nil,
                budget: BudgetReport? = nil) {
        events.withLock { w in
            if w.byJob[job] == nil {
                w.order.append(job)
                if w.order.count > Self.maxJobs { w.byJob[w.order.removeFirst()] = nil }
            }
            // Mutated in place (a copy of the window would copy its events on every append).
            w.byJob[job, default: Window()].append(Raw(seq: 0, kind: kind, at: instant, state: state, reason: reason, attempt: attempt, budget: budget),
                                                   limit: Self.windowSize)
        }
    }

    func batch(_ job: String, after: Int, live: Bool) -> EventBatch {
        guard let w = events.withLock({ $0.byJob[job] }) else { return EventBatch(job: job, first: 1, next: 1, events: [], live: live) }
        // Sequence numbers are consecutive, so the first event after `after` is found by arithmetic.
        // `after` comes from outside (Last-Event-ID): clamped before any arithmetic.
        let from = min(max(after, 0), Int.max / 2)
        let skip = min(max(0, from + 1 - w.first), w.events.count)
        let ordered = w.ordered
        let events = ordered[skip...].prefix(512).map { raw -> JobEvent in
            var e = raw.event
            e.job = job
            return e
        }
        return EventBatch(job: job, first: w.first, next: w.next, events: events, live: live)
    }

    /// A message on a socket that could not be decoded.
    func noteMalformed(socket: String) {
        metrics.malformedMessage(socket: socket)
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
