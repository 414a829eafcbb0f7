import AgentFlowCore
import Foundation
import Planner
import Worker

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

    /// The whole attempt is the agent's: a calibration row counts output tokens only.
    static func usage(_ tokens: Int) -> [TokenUsage] { [TokenUsage(role: .agent, input: 0, output: tokens)] }

    /// The pool row a prompt of ``PoolWorkflow/yaml(_:timeScale:)`` names.
    static func row(of prompt: String) -> Int? {
        let words = prompt.split(separator: " ")
        guard words.count >= 3, words[0] == "pool", words[1] == "row" else { return nil }
        return Int(words[2])
    }

    public func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle {
        let now = time.monotonic
        guard let index = Self.row(of: spec.prompt), let dag = dags[index], spec.id.subtask.hasPrefix("n"),
              let v = Int(spec.id.subtask.dropFirst()), dag.nodes.indices.contains(v), let m = dag.modelIDs.firstIndex(of: spec.model) else {
            let outcome = AttemptOutcome(end: .error, usage: [], detail: "not an attempt of a pool row")
            events.finish(spec.id, outcome, after: 0)
            return SimulatedAttempt.Handle(id: spec.id, events: events, started: now, delay: 0, tokens: 0, time: time, usage: Self.usage)
        }
        var rng = SplitMix64(seed: spec.seed)
        let rows = dag.nodes[v].samples[m]
        let row = rows[rng.below(rows.count)]
        let (end, used, delay) = SimulatedAttempt.limited(end: row.success ? .succeeded : .failed, tokens: Int(row.tokens.rounded()),
                                                          delay: row.latency, cap: spec.tokenCap, left: spec.deadline.seconds - now)
        let outcome = AttemptOutcome(end: end, usage: Self.usage(used),
                                     output: end == .succeeded ? "# pool row \(index) node \(v)\n" : nil, detail: "calibration row", seconds: delay)
        events.finish(spec.id, outcome, after: delay)
        return SimulatedAttempt.Handle(id: spec.id, events: events, started: now, delay: delay, tokens: used, time: time, usage: Self.usage)
    }
}
