import Observability

/// Counters about the coordinator's sockets and decisions, for `agentflow coordinator`'s exit
/// line and the benchmarks. The core keeps the ones about decisions; the socket shell adds its own.
public struct CoordinatorStats: Sendable {
    public init() {}
    public var malformedMessages = 0
    /// Requests, registrations and results refused for out-of-range or hostile values.
    public var refusedRequests = 0
    /// Jobs ended `failed` on resume instead of resumed (rows failing a check, or a crash on them).
    public var quarantinedJobs = 0
    /// Connection attempts the CURVE allowlist refused.
    public var curveDenied = 0
    public var curveDeniedKeys: [String] = []
    public var ignoredResults = 0
    public var dispatched = 0
    public var results = 0
    /// Running attempts cancelled so that a job at risk gets their slot.
    public var preemptions = 0
    /// Seconds from sending a dispatch to recording its result (benchmarks; bounded buckets).
    public var roundTrips = LatencyHistogram()
    /// Seconds from when the loop began reading the events of a dispatch's batch (the result
    /// that freed its slot, at the latest) to the dispatch's hand-off to ZeroMQ, after its
    /// commit (benchmarks).
    public var dispatchLatency = LatencyHistogram()
    /// Where the dispatch latency goes, per batch that dispatched (benchmarks).
    public var commitStages = CommitStages()
    /// Seconds per decision of planners.
    public var planning = LatencyHistogram()
    /// Loop iterations, and seconds the loop spent working (not waiting in poll).
    public var loops = 0
    /// Transactions the loop committed while it ran (SQLite and PostgreSQL alike).
    public var commits = 0
    public var busySeconds = 0.0
    /// PostgreSQL only: the leader's round trips to the database and its commits (0 on SQLite).
    public var databaseRoundTrips = 0
    public var databaseCommits = 0
    /// Seconds the leader's loop waited on the database in its transactions.
    public var databaseWaitSeconds = 0.0

    /// The parts of a dispatching batch's time in the socket loop's ``CommitPipeline``, one sample
    /// per batch: `gathering` — from its first event to the loop iteration that decided it (the
    /// wait for the commit in flight and for the group commit's linger, while the loop reads
    /// more events); `decide` — the tick and taking its actions out of the core; `writerWake` —
    /// from the hand-off to the writer thread to its start; `apply` — its writes there; `commit` —
    /// COMMIT (the WAL's write and fsync on SQLite); `loopWake` — from the commit's end to the hand-off of its messages to ZeroMQ.
    public struct CommitStages: Sendable, Equatable {
        public init() {}
        public var gathering = LatencyHistogram()
        public var decide = LatencyHistogram()
        public var writerWake = LatencyHistogram()
        public var apply = LatencyHistogram()
        public var commit = LatencyHistogram()
        public var loopWake = LatencyHistogram()
    }
}
