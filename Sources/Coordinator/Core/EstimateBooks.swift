import Planner

/// The coordinator's estimate books, one per workflow name, and for each the subtasks whose
/// observations were recorded since the book was taken on, in order. A job keeps its plan nodes
/// with the book applied (``learnedNodes(_:models:)``) and redoes only the nodes of the subtasks
/// recorded since, not every node at each outlook refresh: with 5,000-node jobs the whole
/// `EstimateBook.apply` was about 8% of the loop's time in `bench dispatch` (a copy of every
/// node, ~2 ms per refresh, in the round that refreshed it).
struct EstimateBooks {
    private var books: [String: EstimateBook] = [:]
    private var logs: [String: ChangeLog] = [:]
    /// Numbers the logs, so nodes learned from a book never meet another book's log.
    private var generations = 0

    /// Subtasks recorded into one book, oldest first; past ``limit`` the older half is dropped
    /// (a job whose nodes were learned before what is kept learns them all again).
    struct ChangeLog {
        let generation: Int
        /// Position of `subtasks.first` among every subtask recorded into the book.
        private(set) var base = 0
        private(set) var subtasks: [String] = []
        static let limit = 1 << 16

        init(generation: Int) { self.generation = generation }

        /// Position after the last subtask recorded.
        var end: Int { base + subtasks.count }

        mutating func note(_ subtask: String) {
            subtasks.append(subtask)
            if subtasks.count > 2 * Self.limit {
                let drop = subtasks.count - Self.limit
                subtasks.removeFirst(drop)
                base += drop
            }
        }

        /// The subtasks recorded from `position` on; nil when some were dropped.
        func since(_ position: Int) -> ArraySlice<String>? {
            position >= base && position <= end ? subtasks[(position - base)...] : nil
        }
    }

    /// A job's plan nodes with its workflow's book applied for the models named, and how far
    /// into that book's log they are up to date.
    struct Learned {
        var nodes: [PlanNode]
        var models: [String]
        var generation: Int
        var position: Int
    }

    subscript(workflow: String) -> EstimateBook? { books[workflow] }

    /// Workflows with a book.
    var names: [String] { Array(books.keys) }

    /// Takes on `book` for `workflow` unless one is held already (the intake's or the restart's
    /// copy, read from the store).
    mutating func adopt(_ book: EstimateBook, for workflow: String) {
        guard books[workflow] == nil else { return }
        books[workflow] = book
        startLog(workflow)
    }

    /// Records one finished attempt into its workflow's book (``EstimateBook/record(subtask:model:passed:tokens:seconds:)``).
    mutating func record(workflow: String, subtask: String, model: String, passed: Bool, tokens: Int, seconds: Double) {
        // Mutated in place: the book is shared by every job of the workflow and never copied here.
        books[workflow, default: EstimateBook()].record(subtask: subtask, model: model, passed: passed, tokens: tokens, seconds: seconds)
        if logs[workflow] == nil { startLog(workflow) }
        logs[workflow]!.note(subtask)
    }

    private mutating func startLog(_ workflow: String) {
        generations += 1
        logs[workflow] = ChangeLog(generation: generations)
    }

    /// `job`'s plan nodes with its workflow's book applied for `models`: the same nodes as
    /// `book.apply(to: job.planNodes, models: models)` wherever the job's node is not done (a
    /// done node may keep older estimates: its only reader, the outlook, skips done nodes), kept
    /// in the job and redone only for the subtasks recorded since they were last asked for
    /// (every change to a book is a record).
    func learnedNodes(_ job: JobRun, models: [PlanModel]) -> [PlanNode] {
        let workflow = job.workflow.name
        guard let book = books[workflow], let log = logs[workflow] else { return job.planNodes }
        let names = models.map(\.name)
        if var kept = job.learned, kept.generation == log.generation, kept.models == names, let recorded = log.since(kept.position) {
            // The job's copy is the only one while it is updated, so the nodes change in place.
            job.learned = nil
            // A subtask recorded several times since (the same workflow's jobs share subtask
            // ids) is redone once: the book is what it is now for every one of them. A node this
            // job has done is not redone at all: nothing reads a done node's estimates (the
            // outlook skips done nodes, and a node never stops being done), and with the
            // workflow's other jobs recording the same subtasks it was most of the redoing.
            var redone = Set<Int>(minimumCapacity: Swift.min(recorded.count, job.planNodes.count))
            for subtask in recorded {
                guard let i = job.nodeIndex[subtask], !job.done.contains(i), redone.insert(i).inserted else { continue }
                book.reapply(job.planNodes[i], into: &kept.nodes[i], models: models)
            }
            kept.position = log.end
            job.learned = kept
            return kept.nodes
        }
        let nodes = book.apply(to: job.planNodes, models: models)
        job.learned = Learned(nodes: nodes, models: names, generation: log.generation, position: log.end)
        return nodes
    }
}
