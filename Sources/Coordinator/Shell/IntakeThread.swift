import AgentFlowCore
import Foundation
import Planner
import Store
import Synchronization
import Wire
import ZeroMQ

/// Prepares submissions off the loop: the workflow parsed once (a large one takes Yams a
/// while, and the loop must keep answering heartbeats meanwhile) and, the first time a
/// workflow's name is seen, its estimate book read from the store. Prepared submissions come
/// back through a queue and a wake-up pipe; the loop hands them to the core.
final class IntakeThread: Sendable {
    private let queue = DispatchQueue(label: "agentflow.intake", qos: .userInitiated)
    private let done = Mutex<[ParsedSubmission]>([])
    private let preparer: Mutex<SubmissionPreparer>
    /// Submissions handed to the thread and not yet taken back by the loop.
    private let inHand = Atomic<Int>(0)
    let wake = WakeupPipe()

    init(preparer: SubmissionPreparer) {
        self.preparer = Mutex(preparer)
    }

    /// A text this size or smaller may be looked up on the loop (hashing it is cheap; parsing is not).
    static let atOnceBytes = 64 * 1024

    /// The submission prepared at once, on the caller's thread, when its workflow text was
    /// parsed lately and the core has its book — a lookup, no parse and no store read; nil
    /// when it needs the thread, or when the thread holds submissions (none overtakes another).
    /// Each submission otherwise costs the loop a second wake-up (intake thread and back),
    /// which at a steady stream of the same workflow was most of what a submission waited for.
    func prepareAtOnce(_ request: SubmitRequest, route: [Data], received: WallInstant) -> ParsedSubmission? {
        guard inHand.load(ordering: .acquiring) == 0, request.yaml.utf8.count <= Self.atOnceBytes else { return nil }
        return preparer.withLock { $0.preparedIfKnown(request, route: route, received: received) }
    }

    func parse(_ request: SubmitRequest, route: [Data], received: WallInstant) {
        inHand.add(1, ordering: .releasing)
        queue.async { [self] in
            let parsed = preparer.withLock { $0.prepare(request, route: route, received: received) }
            done.withLock { $0.append(parsed) }
            wake.signal()
        }
    }

    func take() -> [ParsedSubmission] {
        let taken = done.withLock { d in
            let out = d
            d.removeAll()
            return out
        }
        if !taken.isEmpty { inHand.subtract(taken.count, ordering: .releasing) }
        return taken
    }
}

/// Parses a submission's workflow and, once per workflow name, reads its estimate book: the
/// intake thread's work, done on the caller's thread (the simulator calls it directly).
public struct SubmissionPreparer: @unchecked Sendable {
    // The reader is a SQLite connection: used by one thread at a time (the intake's serial
    // queue, under its lock; or the simulator's one thread).
    let reader: Store
    let knownModels: Set<String>
    /// Workflow names whose book the core already has.
    private var booked: Set<String>
    /// Books known beforehand, by workflow name, for workflows the store has no history of
    /// (the benchmarks' calibration rows).
    let priors: [String: EstimateBook]
    /// The last few workflows parsed, by their exact text and file name: a client submitting
    /// the same workflow again and again (a service, a sweep) has it parsed once.
    private var parsed: [ParseKey: Result<Workflow, ConfigError>] = [:]
    private var parsedOrder: [ParseKey] = []
    static let parsedKept = 32

    struct ParseKey: Hashable {
        var yaml: String
        var file: String
    }

    public init(reader: Store, knownModels: Set<String>, booked: Set<String>, priors: [String: EstimateBook] = [:]) {
        self.reader = reader
        self.knownModels = knownModels
        self.booked = booked
        self.priors = priors
    }

    public mutating func prepare(_ request: SubmitRequest, route: [Data], received: WallInstant) -> ParsedSubmission {
        let workflow = parse(request)
        var book: EstimateBook?
        if case .success(let w) = workflow, !booked.contains(w.name) {
            // Unreadable history starts the workflow uncalibrated rather than refusing the job.
            let history = try? reader.estimateBook(workflow: w.name)
            book = history.flatMap { $0.pairs.isEmpty ? nil : $0 } ?? priors[w.name] ?? EstimateBook()
            booked.insert(w.name)
        }
        return ParsedSubmission(request: request, workflow: workflow, received: received, route: route, book: book)
    }

    /// The submission, when its text is among the last parsed and its workflow's book was
    /// handed over already (nothing to parse or read); nil otherwise.
    public func preparedIfKnown(_ request: SubmitRequest, route: [Data], received: WallInstant) -> ParsedSubmission? {
        guard let workflow = parsed[ParseKey(yaml: request.yaml, file: request.file)] else { return nil }
        if case .success(let w) = workflow, !booked.contains(w.name) { return nil }
        return ParsedSubmission(request: request, workflow: workflow, received: received, route: route, book: nil)
    }

    /// The workflow of `request`, parsed once per text and file name among the last
    /// ``parsedKept`` (the oldest is forgotten first).
    mutating func parse(_ request: SubmitRequest) -> Result<Workflow, ConfigError> {
        let key = ParseKey(yaml: request.yaml, file: request.file)
        if let known = parsed[key] { return known }
        let knownModels = knownModels
        let result = Result { () throws(ConfigError) -> Workflow in
            do {
                return try Workflow.parse(yaml: request.yaml, file: request.file, knownModels: knownModels)
            } catch let e as ConfigError {
                throw e
            } catch {
                throw ConfigError(file: request.file, "\(error)")
            }
        }
        parsed[key] = result
        parsedOrder.append(key)
        if parsedOrder.count > Self.parsedKept { parsed[parsedOrder.removeFirst()] = nil }
        return result
    }
}
