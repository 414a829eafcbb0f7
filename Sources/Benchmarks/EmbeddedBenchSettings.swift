/// The shape of a run on an ``EmbeddedBenchCluster`` that `bench dispatch` and `bench memory`
/// share: how many sim workers with how many slots each, how many jobs, and the database. What
/// only one bench varies (dispatch's subtasks per job; memory's warm-up, clients and settle time)
/// is an argument of that bench's `run`. `bench intake` keeps its own settings: its cluster is
/// fixed by design (one slot, held, so every job queues) and it measures at several depths.
public struct EmbeddedBenchSettings: Sendable {
    /// Worker processes (threads here, each with its own ZeroMQ socket), and slots per worker.
    public var workers: Int
    public var slots: Int
    /// Jobs run (timed).
    public var jobs: Int
    /// The SQLite file or PostgreSQL URL (nil: a fresh temporary SQLite file, removed afterwards).
    public var database: String?

    public init(workers: Int, slots: Int, jobs: Int, database: String? = nil) {
        self.workers = workers
        self.slots = slots
        self.jobs = jobs
        self.database = database
    }
}
