/// One metric family as `/metrics` shows it: its name, type, label names and help text.
///
/// Every family the coordinator exports is declared once in ``MetricCatalogue``; the emitter
/// (``CoordinatorMetrics``) refuses anything else, and the dashboards and alert rules in
/// `tools/grafana` and `tools/prometheus` are checked against the catalogue by the tests.
public struct MetricFamily: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public let name: String
    public let kind: Kind
    /// Label names, in the order the values are given. Never `job` or `instance`: Prometheus
    /// sets those on every scraped series and would rename ours to `exported_job`.
    public let labels: [String]
    public let help: String

    public init(_ name: String, _ kind: Kind, labels: [String] = [], help: String) {
        self.name = name
        self.kind = kind
        self.labels = labels
        self.help = help
    }
}

/// The names, labels and help texts of every metric the coordinator exports (README "Metrics").
///
/// Label sets stay bounded: models, roles, outcomes and workers come from the cluster file,
/// `job_id` only for running jobs, `tenant` capped by ``CoordinatorMetrics/tenantLimit``.
public enum MetricCatalogue {
    public static let jobs = MetricFamily(
        "agentflow_jobs", .gauge, labels: ["state"],
        help: "Jobs in the coordinator's database by state (queued, running, or how they ended).")
    public static let jobsEnded = MetricFamily(
        "agentflow_jobs_ended_total", .counter, labels: ["state", "tenant"],
        help: "Jobs that ended since the coordinator started, by final state and tenant; succeeded means every subtask passed within budget and deadline.")
    public static let attempts = MetricFamily(
        "agentflow_attempts_total", .counter, labels: ["model", "outcome"],
        help: "Attempts that ended, by model and outcome (succeeded, failed, cap_reached, deadline, cancelled, error, lost).")
    public static let spentTokens = MetricFamily(
        "agentflow_spent_tokens_total", .counter, labels: ["model", "role", "tenant"],
        help: "Tokens charged to job budgets, prompt and completion, by model, scaffold role and tenant.")
    public static let spentUSD = MetricFamily(
        "agentflow_spent_usd_total", .counter, labels: ["model", "tenant"],
        help: "US dollars charged to job budgets, by model and tenant.")
    public static let budgetRemainingUSD = MetricFamily(
        "agentflow_budget_remaining_usd", .gauge, labels: ["job_id", "tenant"],
        help: "What is left of a running job's dollar budget: limit minus spent minus reserved.")
    public static let budgetRemainingTokens = MetricFamily(
        "agentflow_budget_remaining_tokens", .gauge, labels: ["job_id", "tenant"],
        help: "What is left of a running job's token budget: limit minus spent minus reserved.")
    public static let budgetUsedRatio = MetricFamily(
        "agentflow_job_budget_used_ratio", .gauge, labels: ["job_id", "tenant"],
        help: "Spent plus reserved over the limit of a running job's budget, the larger of the token and dollar axes (0 to 1).")
    public static let deadlineRemaining = MetricFamily(
        "agentflow_job_deadline_remaining_seconds", .gauge, labels: ["job_id", "tenant"],
        help: "Seconds until a running job's deadline (negative once it has passed).")
    public static let deadlineTotal = MetricFamily(
        "agentflow_job_deadline_total_seconds", .gauge, labels: ["job_id", "tenant"],
        help: "Seconds from a running job's submission to its deadline.")
    public static let successEstimate = MetricFamily(
        "agentflow_job_success_estimate", .gauge, labels: ["job_id", "tenant"],
        help: "A running job's estimated probability of finishing within budget and deadline under the current load (0 to 1).")
    public static let workerSlots = MetricFamily(
        "agentflow_worker_slots", .gauge, labels: ["worker", "model", "state"],
        help: "A worker's attempt slots by state: busy, free, or unavailable (worker dead or its breaker open).")
    public static let workerQueued = MetricFamily(
        "agentflow_worker_queued_attempts", .gauge, labels: ["worker", "model"],
        help: "Attempts a worker holds prefetched behind its busy slots, not started yet (coordinator.prefetch); they hold budget, not slots.")
    public static let workerUp = MetricFamily(
        "agentflow_worker_up", .gauge, labels: ["worker", "model"],
        help: "1 while a registered worker heartbeats, 0 once it is declared dead.")
    public static let breakerOpen = MetricFamily(
        "agentflow_worker_breaker_open", .gauge, labels: ["worker", "model", "cause"],
        help: "1 while a worker's circuit breaker keeps attempts off its model server, by cause: unreachable (the server refuses or drops connections or does not answer), refused_key (HTTP 401/403), errors (any other failure).")
    public static let queueWait = MetricFamily(
        "agentflow_dispatch_latency_seconds", .histogram,
        help: "Seconds from an attempt's reservation to its dispatch to a worker: the wait for a slot.")
    public static let plannerDecision = MetricFamily(
        "agentflow_planner_decision_seconds", .histogram,
        help: "Seconds one planner decision took.")
    public static let malformedMessages = MetricFamily(
        "agentflow_malformed_messages_total", .counter, labels: ["socket"],
        help: "Messages dropped as malformed or hostile, by socket (workers, clients).")
    public static let preemptions = MetricFamily(
        "agentflow_preemptions_total", .counter, labels: ["model"],
        help: "Running attempts cancelled to give their slot to a job whose deadline is at risk, by model.")

    public static let jobsQuarantined = MetricFamily(
        "agentflow_jobs_quarantined_total", .counter,
        help: "Jobs ended failed on restart instead of resumed: their stored rows failed a check, or the coordinator died while handling them.")
    public static let httpConnections = MetricFamily(
        "agentflow_http_connections", .gauge,
        help: "Open HTTP connections admitted under coordinator.httpLimits.")
    public static let httpStreams = MetricFamily(
        "agentflow_http_streams", .gauge,
        help: "Open Server-Sent Event streams.")
    public static let httpRefused = MetricFamily(
        "agentflow_http_refused_total", .counter, labels: ["limit"],
        help: "HTTP connections and event streams answered 503 at a cap, by the cap reached: connections, connections_per_source, streams, streams_per_source.")
    public static let httpTimedOut = MetricFamily(
        "agentflow_http_timed_out_total", .counter, labels: ["phase"],
        help: "HTTP connections closed for being too slow, by phase: header (no whole request head in time), body, idle (kept alive without a request).")

    /// Every family, in the order `/metrics` documents them.
    public static let all: [MetricFamily] = [
        jobs, jobsEnded, attempts, spentTokens, spentUSD, budgetRemainingUSD, budgetRemainingTokens, budgetUsedRatio,
        deadlineRemaining, deadlineTotal, successEstimate, workerSlots, workerQueued, workerUp, breakerOpen, queueWait, plannerDecision,
        malformedMessages, preemptions, jobsQuarantined, httpConnections, httpStreams, httpRefused, httpTimedOut,
    ] + tenancy

    /// Label names Prometheus attaches to every scraped series; a family using one would have
    /// it renamed (`exported_job`).
    public static let reservedLabels: Set<String> = ["job", "instance"]

    /// The family called `name`, if the catalogue has one.
    public static func family(named name: String) -> MetricFamily? { all.first { $0.name == name } }
}
