import AgentFlowCore
import Foundation
import Planner
import Synchronization

/// A worker backend for the benchmarks: an attempt's outcome is one calibration row of its
/// (node, model) from the pool, drawn with the attempt's seed — latency, pass, tokens — as the
/// planner benchmark and the fleet benchmark have always drawn them. It honours the token cap
/// and the deadline and stops early when cancelled (paying the share it ran for), like the
/// `sim` backend, and holds no thread: the outcome is known at once and its delivery delayed.
///
/// Which row and node: the benchmarks' workflows (``PoolWorkflow``) say so, the prompt naming
/// the pool row and the subtask id the node (`n<v>`).
public struct CalibrationBackend: AttemptBackend {
    let dags: [Int: PoolDAG]
    let time: any TimeSource

    /// `dags`: the pool rows the jobs run, by their index in the pool.
    public init(dags: [PoolDAG], time: any TimeSource) {
        self.dags = Dictionary(dags.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        self.time = time
    }

    final class Handle: AttemptHandle {
        let id: AttemptID
        let events: any AttemptEvents
        let started: Double
        let delay: Double
        let tokens: Int
        let time: any TimeSource
        let finished = Atomic<Bool>(false)

        init(id: AttemptID, events: any AttemptEvents, started: Double, delay: Double, tokens: Int, time: any TimeSource) {
            self.id = id
            self.events = events
            self.started = started
            self.delay = delay
            self.tokens = tokens
            self.time = time
        }

        func cancel() {
            guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
            let fraction = delay > 0 ? min(1, max(0, (time.now - started) / delay)) : 1
            let used = Int((Double(tokens) * fraction).rounded())
            events.finish(id, AttemptOutcome(end: .cancelled, usage: [TokenUsage(role: .agent, input: 0, output: used)], detail: "cancelled",
                                             seconds: time.now - started), after: 0)
        }
    }

    /// The pool row a prompt of ``PoolWorkflow/yaml(_:timeScale:)`` names.
    static func row(of prompt: String) -> Int? {
        let words = prompt.split(separator: " ")
        guard words.count >= 3, words[0] == "pool", words[1] == "row" else { return nil }
        return Int(words[2])
    }

    public func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle {
        let now = time.now
        guard let index = Self.row(of: spec.prompt), let dag = dags[index], spec.id.subtask.hasPrefix("n"),
              let v = Int(spec.id.subtask.dropFirst()), dag.nodes.indices.contains(v), let m = dag.modelIDs.firstIndex(of: spec.model) else {
            let outcome = AttemptOutcome(end: .error, usage: [], detail: "not an attempt of a pool row")
            events.finish(spec.id, outcome, after: 0)
            return Handle(id: spec.id, events: events, started: now, delay: 0, tokens: 0, time: time)
        }
        var rng = SplitMix64(seed: spec.seed)
        let rows = dag.nodes[v].samples[m]
        let row = rows[rng.below(rows.count)]
        var end: AttemptEnd = row.success ? .succeeded : .failed
        var used = Int(row.tokens.rounded())
        var delay = row.latency
        if used > spec.tokenCap {
            end = .capReached
            delay *= Double(spec.tokenCap) / Double(max(used, 1))
            used = spec.tokenCap
        }
        let left = spec.deadline - now
        if delay > left {
            end = .deadline
            used = Int((Double(used) * max(0, left) / max(delay, 1e-9)).rounded(.down))
            delay = max(0, left)
        }
        let outcome = AttemptOutcome(end: end, usage: [TokenUsage(role: .agent, input: 0, output: used)],
                                     output: end == .succeeded ? "# pool row \(index) node \(v)\n" : nil, detail: "calibration row", seconds: delay)
        events.finish(spec.id, outcome, after: delay)
        return Handle(id: spec.id, events: events, started: now, delay: delay, tokens: used, time: time)
    }
}
