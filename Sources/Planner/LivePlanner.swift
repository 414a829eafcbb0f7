import AgentFlowCore

/// What the live planner sees of one model the job may use.
public struct PlanModel: TokenPriced, Sendable, Equatable {
    public var name: String
    /// USD per 1M input tokens and per 1M output tokens.
    public var priceInput: Double
    public var priceOutput: Double
    /// Worker slots serving this model that are free right now (`nil`: unknown / unlimited).
    public var freeSlots: Int?
    /// All worker slots serving this model (`nil`: unknown / unlimited).
    public var totalSlots: Int?

    public init(name: String, priceInput: Double, priceOutput: Double, freeSlots: Int? = nil, totalSlots: Int? = nil) {
        self.name = name
        self.priceInput = priceInput
        self.priceOutput = priceOutput
        self.freeSlots = freeSlots
        self.totalSlots = totalSlots
    }
}

/// One subtask as the live planner sees it.
public struct PlanNode: Sendable, Equatable {
    public var id: String
    /// Indices of the nodes this one needs.
    public var needs: [Int]
    /// Per model index; `nil` where the model is not a candidate for this node.
    public var estimates: [Estimate?]
    /// Token cap of one attempt (what is reserved before dispatch).
    public var tokenCap: Int

    public init(id: String, needs: [Int], estimates: [Estimate?], tokenCap: Int) {
        self.id = id
        self.needs = needs
        self.estimates = estimates
        self.tokenCap = tokenCap
    }
}

/// The state of a job at a planning moment.
public struct PlanState: Sendable {
    public var nodes: [PlanNode]
    public var models: [PlanModel]
    public var done: Set<Int>
    /// Node index → samples in flight (queued or running).
    public var inFlight: [Int: Int]
    /// What is left of the budget after spent and reserved; `nil` = no limit on that axis.
    public var remainingTokens: Int?
    public var remainingUSD: Double?
    /// Seconds until the job's deadline.
    public var remainingSeconds: Double
    /// Optional: for in-flight nodes, the model their attempts run on and how long they have run.
    /// Without it the planner assumes the attempts just started on the node's likeliest model.
    public var inFlightDetail: [Int: InFlightDetail] = [:]
    /// Optional: observed attempts; when present the planner resamples them (``EstimateBook``).
    public var estimateBook: EstimateBook?
    /// Optional, per model: seconds an attempt of this job is expected to wait for a slot before
    /// it starts (other jobs' attempts ahead of it under the cross-job policy). The planner's
    /// simulations add it to every attempt's latency.
    public var queueWait: [Double] = []

    public init(
        nodes: [PlanNode], models: [PlanModel], done: Set<Int>, inFlight: [Int: Int],
        remainingTokens: Int?, remainingUSD: Double?, remainingSeconds: Double
    ) {
        self.nodes = nodes
        self.models = models
        self.done = done
        self.inFlight = inFlight
        self.remainingTokens = remainingTokens
        self.remainingUSD = remainingUSD
        self.remainingSeconds = remainingSeconds
    }

    /// Nodes whose needs are done, that are not done, and have nothing in flight.
    public var ready: [Int] {
        nodes.indices.filter { i in
            !done.contains(i) && (inFlight[i] ?? 0) == 0 && nodes[i].needs.allSatisfy(done.contains)
        }
    }
}

/// What is running for one node of a ``PlanState``.
public struct InFlightDetail: Sendable, Equatable {
    public var model: Int
    /// Seconds since the node's running attempts were launched.
    public var elapsed: Double

    public init(model: Int, elapsed: Double) {
        self.model = model
        self.elapsed = elapsed
    }
}

/// A decision: launch `samples` parallel attempts of `node` on `model` (pass@k).
public struct Launch: Sendable, Equatable {
    public var node: Int
    public var model: Int
    public var samples: Int

    public init(node: Int, model: Int, samples: Int) {
        self.node = node
        self.model = model
        self.samples = samples
    }
}

/// A planner the coordinator calls whenever an attempt ends, a worker appears or dies, or a job starts.
public protocol LivePlanner: Sendable {
    var name: String { get }
    /// What to launch now, for ready nodes. May return nothing (wait for running attempts).
    func decide(_ state: PlanState) -> [Launch]
    /// An estimate of the probability that the job completes within budget and deadline (`nil`: no idea).
    func completionProbability(_ state: PlanState) -> Double?
}

extension LivePlanner {
    public func completionProbability(_ state: PlanState) -> Double? { nil }
}

/// `seq:K[:MODEL]`: every ready node gets K samples of one model — the given one, or else the
/// candidate with the best estimated success (the cheaper on ties).
public struct SequentialPlanner: LivePlanner {
    public var samples: Int
    public var model: String?

    public init(samples: Int, model: String? = nil) {
        self.samples = samples
        self.model = model
    }

    public var name: String { model.map { "seq:\(samples):\($0)" } ?? "seq:\(samples)" }

    public func decide(_ state: PlanState) -> [Launch] {
        state.ready.compactMap { node in
            chooseModel(for: state.nodes[node], in: state.models).map { Launch(node: node, model: $0, samples: samples) }
        }
    }

    func chooseModel(for node: PlanNode, in models: [PlanModel]) -> Int? {
        if let model {
            guard let m = models.firstIndex(where: { $0.name == model }), node.estimates[m] != nil else { return nil }
            return m
        }
        var best: (index: Int, success: Double, price: Double)?
        for (m, estimate) in node.estimates.enumerated() {
            guard let estimate else { continue }
            let price = models[m].worstCaseUSD(tokens: node.tokenCap)
            if let b = best, estimate.success < b.success || (estimate.success == b.success && price >= b.price) { continue }
            best = (m, estimate.success, price)
        }
        return best?.index
    }
}

/// What a job launches when its planner launched nothing and nothing of it runs: one attempt of
/// each ready node on the likeliest of its models whose worst case fits what is left of the
/// budget (the cheaper on ties). A planner that expects nothing to help (often because the queue
/// ahead of the job eats its time) must not drop the job: without `--min-success`, only its
/// deadline or its budget ends it. Empty when no attempt fits the budget.
public func keepTrying(_ state: PlanState) -> [Launch] {
    var usd = state.remainingUSD, tokens = state.remainingTokens
    var launches: [Launch] = []
    for v in state.ready {
        let node = state.nodes[v]
        var best: (m: Int, success: Double, price: Double)?
        for (m, e) in node.estimates.enumerated() {
            guard let e, m < state.models.count else { continue }
            let price = state.models[m].worstCaseUSD(tokens: node.tokenCap)
            if let usd, price > usd { continue }
            if let tokens, node.tokenCap > tokens { continue }
            if let b = best, e.success < b.success || (e.success == b.success && price >= b.price) { continue }
            best = (m, e.success, price)
        }
        guard let best else { continue }
        usd = usd.map { $0 - best.price }
        tokens = tokens.map { $0 - node.tokenCap }
        launches.append(Launch(node: v, model: best.m, samples: 1))
    }
    return launches
}
