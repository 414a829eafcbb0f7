import Foundation

/// A batch of attempts that is running at a planning moment.
public struct InFlightBatch: Sendable, Equatable {
    public var node: Int
    public var model: Int
    /// Attempts of the batch still running (their outcome is unknown).
    public var running: Int
    /// An attempt of this batch already passed.
    public var knownPass: Bool
    /// Seconds since the batch was launched.
    public var elapsed: Double
    /// Seconds until the batch's last attempt ends, when the planner may know it (the reference
    /// simulator tells its planner); `nil`: sample it from the pair's latency rows given `elapsed`.
    public var remaining: Double?
    /// Live semantics: the reservation still held for the running attempts (released at the end).
    public var reserved: Double

    public init(node: Int, model: Int, running: Int, knownPass: Bool = false, elapsed: Double = 0,
                remaining: Double? = nil, reserved: Double = 0) {
        self.node = node
        self.model = model
        self.running = running
        self.knownPass = knownPass
        self.elapsed = elapsed
        self.remaining = remaining
        self.reserved = reserved
    }
}

/// What a planner knows at a decision point.
public struct SimState: Sendable {
    /// Completed nodes (bit v = node v).
    public var done: UInt64
    /// Budget left (live: after what is reserved).
    public var budget: Double
    /// Seconds left until the deadline.
    public var horizon: Double
    public var inFlight: [InFlightBatch]
    /// Live capacity: attempts of each model this job may have running at once (`nil`: unlimited).
    public var slots: [Int]?

    public init(done: UInt64, budget: Double, horizon: Double, inFlight: [InFlightBatch] = [], slots: [Int]? = nil) {
        self.done = done
        self.budget = budget
        self.horizon = horizon
        self.inFlight = inFlight
        self.slots = slots
    }

    public var inFlightMask: UInt64 { inFlight.reduce(0) { $0 | (1 << UInt64($1.node)) } }
}

/// One node's part of an action: `ks[kIndex]` attempts of `model`.
public struct Assignment: Sendable, Equatable, Hashable {
    public var node: Int
    public var model: Int
    public var kIndex: Int

    public init(node: Int, model: Int, kIndex: Int) {
        self.node = node
        self.model = model
        self.kIndex = kIndex
    }
}

/// Switches of the simulated continuation.
public struct RolloutOptions: Sendable, Equatable {
    public var semantics: Semantics = .reference
    /// Stop a batch's other attempts as soon as one passes.
    public var cancelSiblings = false
    /// Sample the remaining time of running attempts instead of using what the state says.
    public var sampleInFlight = false
    public var maxSteps = 10_000

    public init(semantics: Semantics = .reference, cancelSiblings: Bool = false, sampleInFlight: Bool = false, maxSteps: Int = 10_000) {
        self.semantics = semantics
        self.cancelSiblings = cancelSiblings
        self.sampleInFlight = sampleInFlight
        self.maxSteps = maxSteps
    }
}

/// Per-thread working memory of the rollout kernel.
final class RolloutScratch {
    let end: UnsafeMutablePointer<Double>
    let pass: UnsafeMutablePointer<Bool>
    let refund: UnsafeMutablePointer<Double>
    let model: UnsafeMutablePointer<Int>
    let count: UnsafeMutablePointer<Int>
    let slotsUsed: UnsafeMutablePointer<Int>
    let models: Int

    init(nodes: Int, models: Int) {
        end = .allocate(capacity: nodes); pass = .allocate(capacity: nodes); refund = .allocate(capacity: nodes)
        model = .allocate(capacity: nodes); count = .allocate(capacity: nodes)
        slotsUsed = .allocate(capacity: max(models, 1))
        self.models = models
    }

    deinit {
        end.deallocate(); pass.deallocate(); refund.deallocate(); model.deallocate(); count.deallocate(); slotsUsed.deallocate()
    }
}

/// A ``SimState`` laid out for the kernel: no reference counting in the hot loop.
struct RootView {
    var done: UInt64
    var budget: Double
    var horizon: Double
    var inFlight: UnsafeBufferPointer<InFlightBatch>
    var slots: UnsafePointer<Int>?
}

extension SimState {
    /// Calls `body` with a kernel view of the state, valid only inside `body`.
    func withRootView<R>(_ body: (RootView) -> R) -> R {
        inFlight.withUnsafeBufferPointer { flights in
            if let slots {
                return slots.withUnsafeBufferPointer { s in
                    body(RootView(done: done, budget: budget, horizon: horizon, inFlight: flights, slots: s.baseAddress))
                }
            }
            return body(RootView(done: done, budget: budget, horizon: horizon, inFlight: flights, slots: nil))
        }
    }
}

extension SimModel {
    /// One Monte Carlo continuation from `state`: launch `action`, then Seq-(contModel, ks[contK])
    /// on every node that becomes dispatchable, until every node is done (true) or the run fails.
    @inline(__always)
    func rollout(
        _ state: RootView, action: UnsafeBufferPointer<Assignment>, contModel: Int, contK: Int,
        options: RolloutOptions, rng: inout SplitMix64, scratch s: RolloutScratch
    ) -> Bool {
        let live = options.semantics == .live
        let cancel = options.cancelSiblings
        var done = state.done
        var inflight: UInt64 = 0
        var budget = state.budget
        let horizon = state.horizon
        var now = 0.0
        let slots = state.slots
        if slots != nil { for m in 0..<modelCount { s.slotsUsed[m] = 0 } }

        for f in state.inFlight {
            let v = f.node
            let p = pair(v, f.model)
            var pass = f.knownPass
            var end: Double
            var refund = 0.0
            if let remaining = f.remaining, !options.sampleInFlight {
                end = remaining
                if !pass && f.running > 0 { pass = rng.unit() >= pow(1 - pairSuccess[p], Double(f.running)) }
                // Live: the reservation comes back at the end, less what the attempts use (on average).
                if live { refund = max(0, f.reserved - Double(f.running) * pairMeanCost[p]) }
            } else {
                var last = 0.0, firstPass = Double.infinity, actual = 0.0
                for _ in 0..<f.running {
                    var row = drawOne(pair: p, rng: &rng)
                    var tries = 0
                    while row.latency <= f.elapsed && tries < 16 { row = drawOne(pair: p, rng: &rng); tries += 1 }
                    let rem = max(row.latency - f.elapsed, 0)
                    last = max(last, rem)
                    actual += row.cost
                    if row.success { firstPass = min(firstPass, rem) }
                }
                pass = pass || firstPass.isFinite
                end = cancel && firstPass.isFinite ? firstPass : last
                if live { refund = max(0, f.reserved - actual) }
            }
            s.end[v] = end; s.pass[v] = pass; s.refund[v] = refund
            s.model[v] = f.model; s.count[v] = f.running
            inflight |= 1 << UInt64(v)
            if slots != nil { s.slotsUsed[f.model] += f.running }
        }

        // Launches one batch per node; returns false when the reference rule fails the run.
        @inline(__always)
        func launch(_ v: Int, _ m: Int, _ kIndex: Int, cost: inout Double, latest: inout Double) {
            var ki = kIndex
            let p = pair(v, m)
            if live {
                var free = Int.max
                if let slots { free = slots[m] - s.slotsUsed[m] }
                let affordable = pairWorstCost[p] > 0 ? Int(min(budget / pairWorstCost[p], 1e9)) : Int.max
                let allowed = min(free, affordable)
                while ki > 0 && kValues[ki] > allowed { ki -= 1 }
                if kValues[ki] > allowed { return }
            }
            let o = drawBatch(pair: p, kIndex: ki, rng: &rng)
            let k = kValues[ki]
            let end = cancel && o.success ? o.firstPassLatency : o.latency
            if live {
                let reserve = Double(k) * pairWorstCost[p]
                budget -= reserve
                s.refund[v] = reserve - (cancel ? o.cancelledCost : o.cost)
            } else {
                cost += o.cost
                s.refund[v] = cancel ? o.cost - o.cancelledCost : 0
            }
            latest = max(latest, end)
            s.end[v] = now + end; s.pass[v] = o.success; s.model[v] = m; s.count[v] = k
            inflight |= 1 << UInt64(v)
            if slots != nil { s.slotsUsed[m] += k }
        }

        var cost = 0.0, latest = 0.0
        for a in action { launch(a.node, a.model, a.kIndex, cost: &cost, latest: &latest) }
        if latest > horizon - now || cost > budget { return false }
        budget -= cost

        var steps = 0
        while true {
            if inflight == 0 { return false }
            var bits = inflight
            var v = bits.trailingZeroBitCount
            var te = s.end[v]
            bits &= bits &- 1
            while bits != 0 {
                let u = bits.trailingZeroBitCount
                bits &= bits &- 1
                if s.end[u] < te { te = s.end[u]; v = u }
            }
            if te > horizon { return false }
            now = te
            inflight &= ~(1 << UInt64(v))
            budget += s.refund[v]
            if slots != nil { s.slotsUsed[s.model[v]] -= s.count[v] }
            if s.pass[v] {
                done |= 1 << UInt64(v)
                if done == allMask { return true }
            }
            steps += 1
            if steps > options.maxSteps { return false }
            cost = 0; latest = 0
            var candidates = allMask & ~done & ~inflight
            while candidates != 0 {
                let u = candidates.trailingZeroBitCount
                candidates &= candidates &- 1
                if parentMask[u] & ~done == 0 {
                    launch(u, pairFallback[u * modelCount + contModel], contK, cost: &cost, latest: &latest)
                }
            }
            if latest > horizon - now || cost > budget { return false }
            budget -= cost
        }
    }
}
