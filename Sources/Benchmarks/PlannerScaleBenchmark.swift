import Planner
import Foundation

/// `agentflow bench planner-scale`: live planners on large synthetic DAGs, one job at a time,
/// in virtual time: how long each decision takes and what the job achieves (docs/benchmarks.md).
///
/// A synthetic DAG is layered and random: about √n layers of about √n nodes, each node after the
/// first layer needing 1–3 nodes of the layer before (and, one time in four, one of the layer
/// before that). Each node copies the calibration rows of a node drawn from the pool (every
/// model's rows), so its success rates, latencies and costs are the pool's. Budget and deadline
/// are ratios of the DAG's nominal ones (the pool's definitions, ../shared/bench/README.md §3).
public enum ScaleBenchmark {
    /// A layered random DAG of `nodes` nodes whose rows are drawn from `pool`'s nodes.
    public static func syntheticDAG(nodes count: Int, pool: [PoolDAG], seed: UInt64) -> PoolDAG {
        precondition(count >= 1 && !pool.isEmpty)
        var rng = SplitMix64(seed: seed)
        let source = pool.flatMap { dag in dag.nodes.map { $0.samples } }
        let width = max(1, Int(Double(count).squareRoot().rounded()))
        var layers: [[Int]] = []
        var nodes: [PoolNode] = []
        while nodes.count < count {
            let size = min(count - nodes.count, max(1, width / 2 + rng.below(width + 1)))
            var layer: [Int] = []
            for _ in 0..<size {
                let v = nodes.count
                var parents = Set<Int>()
                if let previous = layers.last {
                    for _ in 0..<(1 + rng.below(3)) { parents.insert(previous[rng.below(previous.count)]) }
                    if layers.count >= 2 && rng.below(4) == 0 {
                        let older = layers[layers.count - 2]
                        parents.insert(older[rng.below(older.count)])
                    }
                }
                nodes.append(PoolNode(id: v, parents: parents.sorted(), samples: source[rng.below(source.count)]))
                layer.append(v)
            }
            layers.append(layer)
        }
        return PoolDAG(index: 0, kind: "synthetic_layered", modelIDs: pool[0].modelIDs, nodes: nodes)
    }


    /// One job run to its end.
    public struct Run: Sendable {
        /// The planner's name as a job reports it.
        public var planner: String
        public var success: Bool
        /// Nodes that passed.
        public var completed: Int
        public var spentUSD: Double
        public var makespan: Double
        /// Milliseconds of each `decide` call.
        public var decisionMillis: [Double]
    }

    /// Runs one job of `dag` with `planner` in virtual time: every attempt reserves its worst
    /// case before it is queued, runs when a slot of its model is free (`slots` per model; `nil`:
    /// unlimited), draws a calibration row of its (node, model) when it starts, and is charged
    /// that row's cost when it ends; a node's other attempts stop (paying the share they ran
    /// for) once one passes; the planner is asked whenever an attempt ends. As the coordinator,
    /// a job whose planner launches nothing while nothing runs gets `keepTrying`'s attempts.
    public static func run(dag: PoolDAG, nodes: [PlanNode], book: EstimateBook, planner: any LivePlanner,
                           budgetUSD: Double, deadline: Double, slots: Int?, seed: UInt64) -> Run {
        struct Attempt {
            var node: Int, model: Int, reserve: Double
            var start = 0.0, end = 0.0, cost = 0.0
            var success = false, running = false, over = false
        }
        let modelCount = dag.modelIDs.count
        let models = dag.modelIDs.indices.map { PlanModel(name: dag.modelIDs[$0], priceInput: 0, priceOutput: dag.price(ofModel: $0)) }
        var rng = SplitMix64(seed: seed)
        var attempts: [Attempt] = []
        var live = [Set<Int>](repeating: [], count: nodes.count)
        var queued = [[Int]](repeating: [], count: modelCount)
        var running = [Int](repeating: 0, count: modelCount)
        var launchedAt: [Int: (model: Int, at: Double)] = [:]
        var done = Set<Int>()
        var spent = 0.0, reserved = 0.0
        var heap = EventHeap<Int>()
        var millis: [Double] = []
        let clock = ContinuousClock()

        func ready() -> [Int] {
            nodes.indices.filter { v in !done.contains(v) && live[v].isEmpty && nodes[v].needs.allSatisfy(done.contains) }
        }
        func stop(_ id: Int, now: Double) {
            var a = attempts[id]
            guard !a.over else { return }
            a.over = true
            reserved -= a.reserve
            if a.running {
                let share = a.end > a.start ? min(1, max(0, (now - a.start) / (a.end - a.start))) : 1
                spent += min(a.cost * share, a.reserve)
                running[a.model] -= 1
                a.running = false
            } else {
                queued[a.model].removeAll { $0 == id }
            }
            attempts[id] = a
            live[a.node].remove(id)
        }
        /// Plans; false when the job cannot go on (nothing runs and nothing can be launched).
        func plan(now: Double) -> Bool {
            let readyNodes = ready()
            guard !readyNodes.isEmpty else { return true }
            var inFlight: [Int: Int] = [:]
            for v in nodes.indices where !live[v].isEmpty { inFlight[v] = live[v].count }
            var state = PlanState(nodes: nodes, models: models, done: done, inFlight: inFlight, remainingTokens: nil,
                                  remainingUSD: max(0, budgetUSD - spent - reserved), remainingSeconds: max(0, deadline - now))
            for (v, l) in launchedAt where !live[v].isEmpty { state.inFlightDetail[v] = InFlightDetail(model: l.model, elapsed: now - l.at) }
            state.estimateBook = book
            if let slots {
                for m in models.indices {
                    let own = queued[m].count + running[m]
                    state.models[m].freeSlots = max(0, slots - own)
                    state.models[m].totalSlots = slots
                }
            }
            let started = clock.now
            var launches = planner.decide(state)
            let elapsed = clock.now - started
            millis.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
            let readySet = Set(readyNodes)
            let nothingLive = live.allSatisfy(\.isEmpty)
            if !launches.contains(where: { readySet.contains($0.node) }) && nothingLive { launches = keepTrying(state) }
            var launched = false
            for l in launches where readySet.contains(l.node) && live[l.node].isEmpty && models.indices.contains(l.model) {
                let worst = models[l.model].worstCaseUSD(tokens: nodes[l.node].tokenCap)
                for _ in 0..<min(max(1, l.samples), 64) {
                    guard spent + reserved + worst <= budgetUSD + 1e-15 else { break }
                    reserved += worst
                    live[l.node].insert(attempts.count)
                    queued[l.model].append(attempts.count)
                    attempts.append(Attempt(node: l.node, model: l.model, reserve: worst))
                    launched = true
                }
                if !live[l.node].isEmpty { launchedAt[l.node] = (l.model, now) }
            }
            return launched || !nothingLive
        }
        func dispatch(now: Double) {
            for m in 0..<modelCount {
                while !queued[m].isEmpty && running[m] < (slots ?? Int.max) {
                    let id = queued[m].removeFirst()
                    var a = attempts[id]
                    let rows = dag.nodes[a.node].samples[a.model]
                    let row = rows[rng.below(rows.count)]
                    a.running = true
                    a.start = now
                    a.end = now + row.latency
                    a.success = row.success
                    a.cost = row.tokens * models[a.model].priceOutput / 1_000_000
                    attempts[id] = a
                    running[m] += 1
                    heap.push(a.end, id)
                }
            }
        }
        func result(_ success: Bool, at now: Double) -> Run {
            Run(planner: planner.name, success: success && spent <= budgetUSD + 1e-12, completed: done.count, spentUSD: spent,
                makespan: now, decisionMillis: millis)
        }

        guard plan(now: 0) else { return result(false, at: 0) }
        dispatch(now: 0)
        var changed = false
        while let (now, id) = heap.pop() {
            if now > deadline {
                for v in nodes.indices { for a in live[v] { stop(a, now: deadline) } }
                return result(false, at: deadline)
            }
            var a = attempts[id]
            if !a.over {  // else: a sibling stopped earlier
                changed = true
                a.over = true
                a.running = false
                attempts[id] = a
                running[a.model] -= 1
                reserved -= a.reserve
                spent += min(a.cost, a.reserve)
                live[a.node].remove(id)
                if a.success && !done.contains(a.node) {
                    done.insert(a.node)
                    launchedAt[a.node] = nil
                    for other in live[a.node] { stop(other, now: now) }
                    if done.count == nodes.count { return result(true, at: now) }
                }
            }
            // Attempts ending at the same instant are all applied before the planner is asked.
            if let next = heap.peekTime, next <= now { continue }
            guard changed else { continue }
            changed = false
            guard plan(now: now) else { return result(false, at: now) }
            dispatch(now: now)
        }
        return result(false, at: deadline)
    }
}
