import Prometheus

/// The coordinator's metrics: every series of ``MetricCatalogue`` written into a
/// ``MetricsRegistry``, each family with its `# HELP` and `# TYPE`.
///
/// The coordinator hands plain values here (an attempt ended, the running jobs now, the
/// workers now); this type owns the series, their labels and their bounds. Series of running
/// jobs and of tenants past ``tenantLimit`` never pile up: a job's series go when it is no longer
/// in the list, and tenants beyond the limit are counted under `tenant="other"`.
///
/// Not thread-safe: one coordinator loop owns it. Rendering (`MetricsRegistry.render`) is safe
/// from any thread.
public final class CoordinatorMetrics {
    /// Most distinct tenants labelled by name; later ones are counted as `other`.
    public static let tenantLimit = 100
    public static let otherTenant = "other"
    /// Queue waits are milliseconds to minutes; planner decisions microseconds to seconds.
    static let secondsBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]

    /// A running job's gauges, as the coordinator sees it now.
    public struct RunningJob: Sendable {
        public var id: String
        public var tenant: String
        public var remainingUSD: Double?
        public var remainingTokens: Int?
        /// Spent plus reserved over the limit, the larger axis; nil without a limit.
        public var budgetUsedRatio: Double?
        public var deadlineRemainingSeconds: Double
        public var deadlineTotalSeconds: Double
        public var successEstimate: Double?

        public init(id: String, tenant: String, remainingUSD: Double?, remainingTokens: Int?, budgetUsedRatio: Double?,
                    deadlineRemainingSeconds: Double, deadlineTotalSeconds: Double, successEstimate: Double?) {
            self.id = id
            self.tenant = tenant
            self.remainingUSD = remainingUSD
            self.remainingTokens = remainingTokens
            self.budgetUsedRatio = budgetUsedRatio
            self.deadlineRemainingSeconds = deadlineRemainingSeconds
            self.deadlineTotalSeconds = deadlineTotalSeconds
            self.successEstimate = successEstimate
        }
    }

    /// A worker's gauges, as the coordinator sees it now.
    public struct WorkerGauges: Sendable {
        public var name: String
        public var model: String
        public var busy: Int
        public var free: Int
        public var unavailable: Int
        public var up: Bool
        /// The breaker's cause when it is open (``BreakerCause``), nil when closed.
        public var breakerOpen: BreakerCause?
        /// Attempts it holds prefetched, not started (they hold no slot).
        public var queued: Int

        public init(name: String, model: String, busy: Int, free: Int, unavailable: Int, up: Bool, breakerOpen: BreakerCause?, queued: Int = 0) {
            self.queued = queued
            self.name = name
            self.model = model
            self.busy = busy
            self.free = free
            self.unavailable = unavailable
            self.up = up
            self.breakerOpen = breakerOpen
        }
    }

    /// Why a worker's breaker is open, as the `cause` label says it.
    public enum BreakerCause: String, Sendable, CaseIterable {
        case unreachable
        case refusedKey = "refused_key"
        case errors
    }

    public let registry: MetricsRegistry
    private var counters: [String: Counter] = [:]
    private var attemptSeries: [AttemptSeriesKey: AttemptSeries] = [:]
    var gauges: [String: Gauge] = [:]
    private var jobSeries: [String: [String]] = [:]
    private var tenants: Set<String> = []
    private let queueWait: DurationHistogram
    private let plannerDecision: DurationHistogram

    public init(registry: MetricsRegistry = .shared) {
        self.registry = registry
        let buckets = Self.secondsBuckets.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        queueWait = registry.registry.makeDurationHistogram(descriptor: MetricCatalogue.queueWait.descriptor, labels: [], buckets: buckets)
        plannerDecision = registry.registry.makeDurationHistogram(descriptor: MetricCatalogue.plannerDecision.descriptor, labels: [], buckets: buckets)
        // Families that should read 0 rather than be absent before anything happens.
        for socket in ["workers", "clients"] { _ = counter(MetricCatalogue.malformedMessages, [socket]) }
        _ = counter(MetricCatalogue.jobsQuarantined, [])
    }

    /// `tenant` as a label value: its name for the first ``tenantLimit`` tenants seen, then `other`.
    public func tenantLabel(_ tenant: String) -> String {
        if tenants.contains(tenant) { return tenant }
        guard tenants.count < Self.tenantLimit else { return Self.otherTenant }
        tenants.insert(tenant)
        return tenant
    }

    // MARK: Events

    /// An attempt ended (or was lost): counted by outcome; its tokens by role and its dollars
    /// charged to the tenant. `roleTokens` is what was charged, per role.
    public func attemptEnded(model: String, outcome: String, tenant: String, usd: Double, roleTokens: [(role: String, tokens: Int)]) {
        let t = tenantLabel(tenant)
        let key = AttemptSeriesKey(model: model, outcome: outcome, tenant: t)
        let s: AttemptSeries
        if let known = attemptSeries[key] {
            s = known
        } else {
            s = AttemptSeries(attempts: counter(MetricCatalogue.attempts, [model, outcome]))
            attemptSeries[key] = s
        }
        s.attempts.increment()
        for (role, tokens) in roleTokens where tokens > 0 {
            let c: Counter
            if let known = s.tokens[role] {
                c = known
            } else {
                c = counter(MetricCatalogue.spentTokens, [model, role, t])
                s.tokens[role] = c
            }
            c.increment(by: Int64(tokens))
        }
        if usd > 0 && usd.isFinite {
            let c = s.usd ?? counter(MetricCatalogue.spentUSD, [model, t])
            s.usd = c
            c.increment(by: usd)
        }
    }

    /// An ended attempt's series, by model, outcome and tenant label: found with one lookup of
    /// three short strings per attempt instead of a joined key built and hashed per series
    /// (four per attempt). The same series as ``counter(_:_:)`` makes (it makes them, on first
    /// use), each created only when first incremented, as before.
    private struct AttemptSeriesKey: Hashable {
        var model: String
        var outcome: String
        var tenant: String
    }

    private final class AttemptSeries {
        let attempts: Counter
        /// Tokens by role, and dollars; nil until first charged.
        var tokens: [String: Counter] = [:]
        var usd: Counter?

        init(attempts: Counter) { self.attempts = attempts }
    }

    public func jobEnded(state: String, tenant: String) {
        counter(MetricCatalogue.jobsEnded, [state, tenantLabel(tenant)]).increment()
    }

    public func malformedMessage(socket: String) {
        counter(MetricCatalogue.malformedMessages, [socket]).increment()
    }

    public func jobQuarantined() {
        counter(MetricCatalogue.jobsQuarantined, []).increment()
    }

    public func preempted(model: String) {
        counter(MetricCatalogue.preemptions, [model]).increment()
    }

    /// An attempt went to a worker this long after it was reserved (the caller makes the span
    /// safe from raw seconds with `Duration.clampedSeconds`).
    public func dispatched(queueWait: Duration) {
        self.queueWait.record(queueWait)
    }

    /// A planner decision took this long.
    public func plannerDecided(_ took: Duration) {
        plannerDecision.record(took)
    }

    // MARK: Snapshots (the coordinator refreshes them about once a second)

    /// Jobs in the store by state; states missing from `counts` read 0.
    public func jobCounts(_ counts: [String: Int], states: [String]) {
        for state in states { gauge(MetricCatalogue.jobs, [state]).set(to: Double(counts[state] ?? 0)) }
    }

    /// The running jobs now: their gauges are set, and those of jobs no longer listed removed.
    public func runningJobs(_ jobs: [RunningJob]) {
        var seen: Set<String> = []
        for job in jobs {
            seen.insert(job.id)
            var keys: [String] = []
            let labels = [job.id, tenantLabel(job.tenant)]
            func set(_ family: MetricFamily, _ value: Double?) {
                guard let value, value.isFinite else { return }
                let key = Self.key(family, labels)
                keys.append(key)
                gauge(family, labels).set(to: value)
            }
            set(MetricCatalogue.budgetRemainingUSD, job.remainingUSD.map { max(0, $0) })
            set(MetricCatalogue.budgetRemainingTokens, job.remainingTokens.map { Double(max(0, $0)) })
            set(MetricCatalogue.budgetUsedRatio, job.budgetUsedRatio.map { min(max($0, 0), 1) })
            set(MetricCatalogue.deadlineRemaining, job.deadlineRemainingSeconds)
            set(MetricCatalogue.deadlineTotal, job.deadlineTotalSeconds)
            set(MetricCatalogue.successEstimate, job.successEstimate.map { min(max($0, 0), 1) })
            for stale in Set(jobSeries[job.id] ?? []).subtracting(keys) { removeGauge(stale) }
            jobSeries[job.id] = keys
        }
        for (id, keys) in jobSeries where !seen.contains(id) {
            for key in keys { removeGauge(key) }
            jobSeries[id] = nil
        }
    }

    /// Every known worker now (dead ones included, `up: false`).
    public func workers(_ workers: [WorkerGauges]) {
        for w in workers {
            for (state, value) in [("busy", w.busy), ("free", w.free), ("unavailable", w.unavailable)] {
                gauge(MetricCatalogue.workerSlots, [w.name, w.model, state]).set(to: Double(value))
            }
            gauge(MetricCatalogue.workerQueued, [w.name, w.model]).set(to: Double(w.queued))
            gauge(MetricCatalogue.workerUp, [w.name, w.model]).set(to: w.up ? 1 : 0)
            for cause in BreakerCause.allCases {
                gauge(MetricCatalogue.breakerOpen, [w.name, w.model, cause.rawValue]).set(to: w.breakerOpen == cause ? 1 : 0)
            }
        }
    }

    // MARK: Series

    static func key(_ family: MetricFamily, _ values: [String]) -> String {
        ([family.name] + values).joined(separator: "\u{0}")
    }

    private func labels(_ family: MetricFamily, _ values: [String]) -> [(String, String)] {
        precondition(values.count == family.labels.count, "\(family.name) takes labels \(family.labels), got \(values.count) values")
        return Array(zip(family.labels, values))
    }

    func counter(_ family: MetricFamily, _ values: [String]) -> Counter {
        series(family, .counter, values, in: &counters) { registry.registry.makeCounter(descriptor: family.descriptor, labels: $0) }
    }

    func gauge(_ family: MetricFamily, _ values: [String]) -> Gauge {
        series(family, .gauge, values, in: &gauges) { registry.registry.makeGauge(descriptor: family.descriptor, labels: $0) }
    }

    /// The series of `family` with label `values`: the one made before, else a new one.
    private func series<Metric>(_ family: MetricFamily, _ kind: MetricFamily.Kind, _ values: [String], in cache: inout [String: Metric],
                                make: ([(String, String)]) -> Metric) -> Metric {
        precondition(family.kind == kind, "\(family.name) is a \(family.kind)")
        let key = Self.key(family, values)
        if let m = cache[key] { return m }
        let m = make(labels(family, values))
        cache[key] = m
        return m
    }

    func removeGauge(_ key: String) {
        if let g = gauges.removeValue(forKey: key) { registry.registry.unregisterGauge(g) }
    }
}

extension MetricFamily {
    /// The family's name and help as swift-prometheus takes them (no namespace or unit parts:
    /// the catalogue's name is the whole name).
    var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }
}
