import AgentFlowCore

/// What the coordinator has observed of one (subtask, model) pair, kept so a job's estimates
/// sharpen as attempts finish and a rerun of the workflow starts calibrated.
///
/// Success is a Beta posterior: the prior (from the workflow's `estimates`, or 0.5) counts as
/// ``EstimateBook/priorWeight`` attempts. Tokens and seconds are the empirical distribution of
/// the last ``EstimateBook/window`` attempts, blended with the prior while few are known.
public struct PairObservations: Sendable, Equatable, Codable {
    public var passes: Int = 0
    public var failures: Int = 0
    /// Most recent attempts: (tokens, seconds, passed).
    public var tokens: [Double] = []
    public var seconds: [Double] = []
    public var passed: [Bool] = []

    public init() {}

    public var attempts: Int { passes + failures }

    /// One more attempt, keeping the last `window`.
    mutating func record(passed: Bool, tokens: Int, seconds: Double, window: Int) {
        if passed { self.passes += 1 } else { self.failures += 1 }
        self.tokens.append(Double(max(tokens, 0)))
        self.seconds.append(max(seconds, 0))
        self.passed.append(passed)
        if self.tokens.count > window {
            self.tokens.removeFirst(self.tokens.count - window)
            self.seconds.removeFirst(self.seconds.count - window)
            self.passed.removeFirst(self.passed.count - window)
        }
    }
}

/// Estimates per (subtask id, model name) from priors and observed attempts. A value type: the
/// coordinator keeps one per job (or per workflow), calls ``record(subtask:model:passed:tokens:seconds:)``
/// for every finished attempt, and ``apply(to:models:)`` before each planning call. `Codable`,
/// so it can be persisted per subtask.
public struct EstimateBook: Sendable, Equatable, Codable {
    /// Weight of the prior, in attempts.
    public var priorWeight: Double = 2
    /// Attempts kept per pair for the empirical distribution.
    public var window: Int = 32
    /// Used when a pair has neither a prior nor an observation.
    public var defaultPrior = Estimate(success: 0.5, tokens: 1_000, seconds: 30)
    /// Observations by subtask id, then model name: a node with none costs one lookup, and no
    /// lookup builds a key string (``apply(to:models:)`` runs over every node of a job at each
    /// fleet outlook refresh — a concatenated key per node and model was 42% of a dispatch round).
    public private(set) var pairs: [String: [String: PairObservations]] = [:]

    public init(priorWeight: Double = 2, window: Int = 32) {
        self.priorWeight = priorWeight
        self.window = window
    }

    public func observations(subtask: String, model: String) -> PairObservations? { pairs[subtask]?[model] }

    /// Records one finished attempt (a lost attempt counts as a failure with its full cap).
    public mutating func record(subtask: String, model: String, passed: Bool, tokens: Int, seconds: Double) {
        // In place: a copy taken out and stored back made every append copy the three arrays.
        let window = self.window
        pairs[subtask, default: [:]][model, default: PairObservations()].record(passed: passed, tokens: tokens, seconds: seconds, window: window)
    }

    /// Posterior estimate of a pair: Beta mean for success, prior-weighted means for tokens and seconds.
    public func estimate(subtask: String, model: String, prior: Estimate?) -> Estimate {
        posterior(pairs[subtask]?[model], prior: prior ?? defaultPrior)
    }

    /// `o` blended with the prior `p` (just `p` without observations).
    func posterior(_ o: PairObservations?, prior p: Estimate) -> Estimate {
        guard let o, o.attempts > 0 else { return p }
        let n = Double(o.tokens.count)
        let w = priorWeight
        let success = (p.success * w + Double(o.passes)) / (w + Double(o.attempts))
        let tokens = (p.tokens * w + o.tokens.reduce(0, +)) / (w + n)
        let seconds = (p.seconds * w + o.seconds.reduce(0, +)) / (w + n)
        return Estimate(success: success, tokens: tokens, seconds: seconds)
    }

    /// The nodes with every candidate pair's estimate replaced by its posterior (the node's own
    /// estimate is the prior). Pairs that are `nil` (not candidates) stay `nil`.
    public func apply(to nodes: [PlanNode], models: [PlanModel]) -> [PlanNode] {
        nodes.map { apply(to: $0, models: models) }
    }

    /// One node with its candidate pairs' posteriors (``apply(to:models:)`` for a single node:
    /// what a caller that keeps the applied nodes redoes for a subtask whose observations changed).
    public func apply(to node: PlanNode, models: [PlanModel]) -> PlanNode {
        guard let observed = pairs[node.id] else { return node }
        var node = node
        node.estimates = node.estimates.enumerated().map { m, prior in
            prior.map { posterior(observed[models[m].name], prior: $0) }
        }
        return node
    }

    /// `node` becomes ``apply(to:models:)`` of `prior` (the same subtask's unlearned node),
    /// written into its own estimates where it can: what a caller that keeps the applied nodes
    /// does for a subtask recorded since, without a new estimates array per node.
    public func reapply(_ prior: PlanNode, into node: inout PlanNode, models: [PlanModel]) {
        guard let observed = pairs[prior.id], node.id == prior.id, node.needs == prior.needs, node.tokenCap == prior.tokenCap,
              node.estimates.count == prior.estimates.count else {
            node = apply(to: prior, models: models)
            return
        }
        for m in prior.estimates.indices {
            node.estimates[m] = prior.estimates[m].map { posterior(observed[models[m].name], prior: $0) }
        }
    }

    /// Rows the simulator resamples for a pair: the observed attempts, plus rows spread around
    /// the posterior for the prior's weight, so rare outcomes keep some probability.
    public func rows(subtask: String, model: String, prior: Estimate?, tokenCap: Int) -> [(tokens: Double, seconds: Double, passed: Bool)] {
        var out = syntheticRows(prior ?? defaultPrior, tokenCap: tokenCap, count: 16)
        if let o = pairs[subtask]?[model], !o.tokens.isEmpty {
            let observed = o.tokens.indices.map { (min(o.tokens[$0], Double(tokenCap)), o.seconds[$0], o.passed[$0]) }
            // Keep the prior's share: 16 synthetic rows weigh `priorWeight` attempts.
            let repeats = max(1, Int((16 / max(priorWeight, 0.5)).rounded()))
            for _ in 0..<repeats { out.append(contentsOf: observed) }
        }
        return out
    }

    /// `count` rows whose pass fraction is the estimate's success (rounded, at least one pass when
    /// success > 0) and whose latencies spread ±40% around the mean, tokens proportional.
    func syntheticRows(_ e: Estimate, tokenCap: Int, count: Int) -> [(tokens: Double, seconds: Double, passed: Bool)] {
        let passes = e.success <= 0 ? 0 : max(1, min(count, Int((e.success * Double(count)).rounded())))
        return (0..<count).map { i in
            let spread = 0.6 + 0.8 * (Double(i) + 0.5) / Double(count)
            // Interleave passes so that pass/fail is not tied to latency.
            let passed = (i * passes) / count != ((i + 1) * passes) / count
            return (min(e.tokens * spread, Double(tokenCap)), e.seconds * spread, passed)
        }
    }
}
