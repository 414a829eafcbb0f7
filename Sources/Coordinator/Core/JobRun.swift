import AgentFlowCore
import Foundation
import Planner
import Store

/// A live attempt: reserved, then queued for a slot, then dispatched to a worker.
struct LiveAttempt {
    var record: AttemptRecord
    var spec: AttemptSpec
    /// Node and model indices in the job's plan.
    var node: Int
    var model: Int
    /// Set while the coordinator waits for a worker to claim it after a restart.
    var claimBy: MonotonicInstant?
    /// Tokens the worker says it has used so far.
    var progressTokens: Int = 0
    /// Monotonic time its worker last said something about it (dispatch, progress, claim).
    var heardAt = MonotonicInstant.origin
    /// How long it may run, from dispatch (what the worker is told, measured on its own clock).
    var ttl: Duration = .zero
    /// The job it is being preempted for (a cancel was sent; its slot goes back when it reports).
    var preemptedBy: String?
    /// When it started at its worker, as far as the coordinator can tell (its dispatch, or the
    /// end of the attempt whose slot it took); nil while it waits queued at the worker. Its
    /// time — the planner's latency observations — counts from here, not from its dispatch.
    var startedAt: WallInstant?

    /// Dispatched, and silent for its whole time-to-live plus `grace`.
    func unclaimedAfter(now: MonotonicInstant, grace: Duration) -> Bool {
        claimBy == nil && now - heardAt > ttl + grace
    }
}

/// The planner's view of a workflow: its DAG, an estimate per (subtask, model) — the workflow's
/// or ``AgentFlowCore/Estimate/prior`` — and each subtask's largest token cap over the models; a
/// judged subtask's estimates and cap include its judge's (``JudgePlanning``), whose model is
/// looked up in `models`, then in `judges` (`usd`: the job has a USD limit). Jobs and `agentflow
/// plan` both use it, so a plan and a run see the same problem.
public func workflowPlanNodes(_ workflow: Workflow, models: [ModelSpec], judges: [ModelSpec] = [], usd: Bool = false) -> [PlanNode] {
    let index = Dictionary(uniqueKeysWithValues: workflow.subtasks.enumerated().map { ($1.id, $0) })
    return workflow.subtasks.map { s in
        let judge = s.judge.flatMap { j in models.first { $0.name == j.model } ?? judges.first { $0.name == j.model } }
        return PlanNode(
            id: s.id, needs: s.needs.compactMap { index[$0] },
            estimates: models.map { m in
                let e = s.estimate(for: m.name)
                return s.judge == nil ? e : JudgePlanning.estimate(e, judge: judge, judged: m, usd: usd)
            },
            tokenCap: models.map { m in
                s.judge == nil ? s.tokenCap(on: m)
                    : JudgePlanning.tokenCap(s.tokenCap(on: m), expected: s.estimate(for: m.name).tokens, judge: judge, judged: m, usd: usd)
            }.max() ?? 1024)
    }
}

/// The coordinator's in-memory view of one job. All mutation happens on the coordinator's
/// loop thread; every change is written through to the store in the same loop iteration.
final class JobRun {
    var record: JobRecord
    let workflow: Workflow
    var ledger: BudgetLedger
    var subtasks: [String: SubtaskRecord]
    var live: [AttemptID: LiveAttempt] = [:]
    /// Live attempts per subtask (to cancel siblings without scanning every attempt).
    var liveBySubtask: [String: Set<AttemptID>] = [:]
    /// Queued attempts in creation order; `queueHead` indexes the oldest not yet dispatched.
    /// Entries that were cancelled or dispatched meanwhile are skipped.
    var queue: [AttemptID] = []
    var queueHead = 0
    /// Attempts waiting to be claimed by a re-registering worker after a restart.
    var unclaimed: Set<AttemptID> = []
    /// Subtask id → the subtasks that need it.
    let dependents: [String: [String]]
    /// Nodes whose needs are done, not done themselves, with nothing in flight: what the
    /// planner can act on. Kept as attempts come and go, so a job with nothing ready is not
    /// replanned at all.
    var ready: Set<Int> = []
    let planner: any LivePlanner
    /// Candidate models (cluster specs), indexed as in the plan.
    let models: [ModelSpec]
    let nodeIndex: [String: Int]
    /// Static part of the plan state: nodes with needs, estimates and caps.
    var planNodes: [PlanNode]
    var done: Set<Int> = []
    var inFlight: [Int: Int] = [:]
    /// The packed outputs of succeeded subtasks, by subtask: dependants get them as inputs
    /// (in memory while the job lives; stored, and read back on a restart).
    var outputBundles: [String: Blob] = [:]
    /// Live judge attempts and the result each judges (``Judging``).
    var judging: [AttemptID: Judging] = [:]
    /// Judge attempts per subtask: not counted against its `maxAttempts`.
    var judgeAttempts: [String: Int] = [:]
    /// Indices in `models` of judge models that are not candidates for the agent work.
    var judgeOnlyModels: Set<Int> = []
    /// Something changed that the planner should see. Set through the core's `touch` or
    /// `markForPlanning` (a new job too), which also list the job in `planCandidates`.
    var needsPlanning = false
    /// Bumped on every change the planner should see; a decision made on an older version is
    /// applied only where it is still valid.
    var version = 0
    /// A planning request is out with the planning thread.
    var planning = false
    /// The fleet policy's last outlook of this job and the monotonic time it was computed
    /// (an O(nodes) estimate: recomputed at most every `Coordinator.outlookMaxAge` seconds).
    var outlookCache: (at: MonotonicInstant, outlook: FleetOutlook)?
    /// Its plan nodes with its workflow's estimate book applied (``EstimateBooks/learnedNodes(_:models:)``).
    var learned: EstimateBooks.Learned?
    /// Its nodes in topological order, for every outlook of it (the needs never change; any
    /// nodes derived from `planNodes` — learned, masked — have the same).
    private(set) lazy var topologicalOrder: [Int] = FleetOutlook.topologicalOrder(planNodes)
    /// When the current batch of each in-flight node was launched, and on which model; from its
    /// first dispatch on, when it started running (queueing is not run time).
    var launchedAt: [Int: (model: Int, at: WallInstant)] = [:]
    /// Nodes whose current batch has had an attempt dispatched.
    var batchRunning: Set<Int> = []
    /// Whose share of the fleet this job counts against (`agentflow submit --tenant`; stored).
    var tenant: String {
        get { record.tenant }
        set { record.tenant = newValue }
    }
    /// Why the job's attempts wait (shown as its reason while it is not over).
    var waitReason: String?
    /// Nothing could be launched because every slot was busy: plan again when one frees.
    var waitingForSlot = false
    /// ``CoordinatorCore/slotsFreed`` when it began waiting: it plans again once a slot frees after that.
    var waitingSince = 0
    /// When one of its attempts was last preempted (it neither preempts nor is preempted for a while).
    var preemptedAt: WallInstant?
    /// Subtasks that lost an attempt to preemption (their later attempts are never preempted), and
    /// per subtask the preempted attempts that ended cancelled (not counted against `maxAttempts`).
    var preemptedSubtasks: Set<String> = []
    var preemptedAttempts: [String: Int] = [:]
    /// The record's spend changed since the jobs row was last written; the row is written once
    /// per loop iteration (before the commit, and before anything reads the jobs table) instead
    /// of once per finished attempt.
    var rowDirty = false
    let scaffold: ScaffoldOptions
    /// Queued attempts per model name, and the ids of dispatched ones: kept as attempts are
    /// added, dispatched and removed, so dispatch and the fleet policy read them without
    /// walking every live attempt (20,000 queued ones at the start of `bench dispatch`) on
    /// every loop iteration.
    private(set) var queuedByModel: [String: Int] = [:]
    private(set) var dispatchedIDs: Set<AttemptID> = []
    /// The oldest queued attempt's creation time and how many queued attempts have it; looked
    /// up again (one walk) only after the last of those leaves the queue.
    private var oldestQueued: (at: WallInstant, count: Int)?
    private var oldestQueuedStale = false
    /// The core's fleet-wide counts this job adds to while it is unfinished (`FleetTally`).
    var tally: FleetTally?
    /// The core's set of jobs with a dispatched attempt, which this job is in while it has one
    /// (ended or not, until the core drops it).
    var holding: HoldingJobs?

    init(record: JobRecord, workflow: Workflow, cluster: Cluster, planner: any LivePlanner) {
        self.record = record
        self.workflow = workflow
        self.planner = planner
        self.ledger = BudgetLedger(limitTokens: record.limitTokens, limitUSD: record.limitUSD,
                                   spent: Amount(tokens: record.spentTokens, usd: record.spentUSD))
        let candidateNames = workflow.models ?? cluster.models.map(\.name)
        var models = candidateNames.compactMap { cluster.model($0) }
        // Judge models come after the candidates; the planner never picks them for agent work.
        var judgeOnly: Set<Int> = []
        for name in Self.judgeModels(workflow) where !models.contains(where: { $0.name == name }) {
            guard let m = cluster.model(name) else { continue }
            judgeOnly.insert(models.count)
            models.append(m)
        }
        self.models = models
        self.judgeOnlyModels = judgeOnly
        self.nodeIndex = Dictionary(uniqueKeysWithValues: workflow.subtasks.enumerated().map { ($1.id, $0) })
        self.scaffold = workflow.scaffold ?? cluster.scaffold ?? ScaffoldOptions()
        var subtasks: [String: SubtaskRecord] = [:]
        for s in workflow.subtasks {
            subtasks[s.id] = SubtaskRecord(job: record.id, id: s.id, state: s.needs.isEmpty ? .ready : .pending)
        }
        self.subtasks = subtasks
        var dependents: [String: [String]] = [:]
        for s in workflow.subtasks { for n in s.needs { dependents[n, default: []].append(s.id) } }
        self.dependents = dependents
        var nodes = workflowPlanNodes(workflow, models: models, usd: record.limitUSD != nil)
        for i in nodes.indices { for m in judgeOnly { nodes[i].estimates[m] = nil } }
        self.planNodes = nodes
        recomputeReady()
    }

    /// The models a workflow's judges name, in order.
    static func judgeModels(_ workflow: Workflow) -> [String] {
        var names: [String] = []
        for s in workflow.subtasks { if let m = s.judge?.model, !names.contains(m) { names.append(m) } }
        return names
    }

    func isReady(_ node: Int) -> Bool {
        !done.contains(node) && inFlight[node] == nil && planNodes[node].needs.allSatisfy(done.contains)
    }

    func recomputeReady() {
        ready = Set(planNodes.indices.filter(isReady))
    }

    /// A node passed: it leaves the ready set and its dependents may enter it.
    func markDone(_ node: Int) {
        done.insert(node)
        launchedAt[node] = nil
        ready.remove(node)
        for d in dependents[planNodes[node].id] ?? [] {
            if let i = nodeIndex[d], isReady(i) { ready.insert(i) }
        }
    }

    var isTerminal: Bool { record.state.isTerminal }

    /// What a worker needs to run an attempt: the subtask, the outputs of its needs, the cap the
    /// attempt was reserved for, and a seed derived from the job's (its `ttl` is set at dispatch).
    func spec(for a: AttemptRecord) -> AttemptSpec {
        let subtask = workflow.subtasks[nodeIndex[a.id.subtask]!]
        if let j = judging[a.id] { return judgeSpec(for: a, subtask: subtask, judging: j) }
        var spec = AttemptSpec(
            id: a.id, model: a.model, prompt: subtask.prompt, verify: subtask.verify,
            inputs: Dictionary(subtask.needs.map { ($0, subtasks[$0]?.output ?? "") }, uniquingKeysWith: { a, _ in a }),
            tokenCap: a.tokenCap, scaffold: scaffold, simulated: subtask.estimate(for: a.model),
            seed: attemptSeed(a.id))
        spec.priority = record.priority == 0 ? nil : record.priority
        // Kind, actions, inputs and outputs of agent work (nil for a plain code subtask).
        spec.work = workflow.work(for: subtask, needOutputs: outputBundles)
        spec.sandbox = subtask.sandbox
        return spec
    }

    func attemptSeed(_ id: AttemptID) -> UInt64 {
        var h: UInt64 = record.seed &+ 0x9E37_79B9_7F4A_7C15
        for b in "\(id.subtask)#\(id.n)".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Something changed that the planner should see.
    func touch() {
        needsPlanning = true
        version &+= 1
    }

    private var maskedNodes: (served: Set<Int>, nodes: [PlanNode])?

    /// Plan nodes with estimates only for the models in `served` (models nobody serves are not
    /// candidates). Cached: it only changes when workers come and go.
    func nodes(servedBy served: Set<Int>) -> [PlanNode] {
        if served.count == models.count { return planNodes }
        if let m = maskedNodes, m.served == served { return m.nodes }
        var nodes = planNodes
        for i in nodes.indices {
            for m in models.indices where !served.contains(m) { nodes[i].estimates[m] = nil }
        }
        maskedNodes = (served, nodes)
        return nodes
    }

    /// Adds a new live attempt (queued, or dispatched when resuming).
    func add(_ a: LiveAttempt) {
        let id = a.record.id
        live[id] = a
        liveBySubtask[id.subtask, default: []].insert(id)
        inFlight[a.node, default: 0] += 1
        ready.remove(a.node)
        if a.record.state == .queued {
            queue.append(id)
            enterQueue(a)
        } else if a.record.state == .dispatched {
            dispatchedIDs.insert(id)
            if dispatchedIDs.count == 1 { holding?.update(self, holding: true) }
        }
    }

    /// A queued attempt was sent to a worker (`a` as it is now, dispatched).
    func dispatched(_ a: LiveAttempt) {
        leaveQueue(a)
        dispatchedIDs.insert(a.record.id)
        if dispatchedIDs.count == 1 { holding?.update(self, holding: true) }
    }

    private func enterQueue(_ a: LiveAttempt) {
        if queuedByModel.isEmpty, let tally { tally.enteredQueue.append(self) }
        if queuedByModel[a.spec.model] == nil { tally?.startsWaiting(self, for: a.spec.model) }
        queuedByModel[a.spec.model, default: 0] += 1
        tally?.add(a.spec.model, 1, for: self)
        guard !oldestQueuedStale else { return }
        let at = a.record.createdAt
        if let o = oldestQueued, !(at < o.at) {
            if at == o.at { oldestQueued = (at, o.count + 1) }
        } else {
            oldestQueued = (at, 1)
        }
    }

    private func leaveQueue(_ a: LiveAttempt) {
        let model = a.spec.model
        if let n = queuedByModel[model] {
            queuedByModel[model] = n > 1 ? n - 1 : nil
            tally?.add(model, -1, for: self)
            if n == 1 { tally?.stopsWaiting(self, for: model) }
            if queuedByModel.isEmpty { tally?.leftQueue.append(self) }
        }
        guard !oldestQueuedStale, let o = oldestQueued, a.record.createdAt == o.at else { return }
        if o.count > 1 {
            oldestQueued = (o.at, o.count - 1)
        } else {
            oldestQueued = nil
            oldestQueuedStale = true
        }
    }

    /// The creation time of the oldest queued attempt (nil: none is queued).
    var oldestQueuedAt: WallInstant? {
        if oldestQueuedStale {
            oldestQueuedStale = false
            oldestQueued = nil
            for a in live.values where a.record.state == .queued {
                let at = a.record.createdAt
                if let o = oldestQueued, !(at < o.at) {
                    if at == o.at { oldestQueued = (at, o.count + 1) }
                } else {
                    oldestQueued = (at, 1)
                }
            }
        }
        return oldestQueued?.at
    }

    /// The incremental counts agree with a walk over every live attempt (checked in debug builds).
    var queueCountsAreConsistent: Bool {
        var queued: [String: Int] = [:]
        var dispatched: Set<AttemptID> = []
        var oldest: WallInstant?
        for a in live.values {
            if a.record.state == .queued {
                queued[a.spec.model, default: 0] += 1
                oldest = Swift.min(oldest ?? a.record.createdAt, a.record.createdAt)
            } else if a.record.state == .dispatched {
                dispatched.insert(a.record.id)
            }
        }
        return queued == queuedByModel && dispatched == dispatchedIDs && oldest == oldestQueuedAt
    }

    /// Removes an attempt that ended, however it ended.
    func remove(_ id: AttemptID) {
        guard let a = live.removeValue(forKey: id) else { return }
        if a.record.state == .queued {
            leaveQueue(a)
        } else if a.record.state == .dispatched, dispatchedIDs.remove(id) != nil, dispatchedIDs.isEmpty {
            holding?.update(self, holding: false)
        }
        // One lookup per table (each AttemptID lookup hashes two strings), and none in the
        // tables that are empty but after a restart or with judges.
        if let i = liveBySubtask.index(forKey: id.subtask) {
            liveBySubtask.values[i].remove(id)
            if liveBySubtask.values[i].isEmpty { liveBySubtask.remove(at: i) }
        }
        if !unclaimed.isEmpty { unclaimed.remove(id) }
        if !judging.isEmpty { judging[id] = nil }
        if let i = inFlight.index(forKey: a.node) {
            if inFlight.values[i] != 1 {
                inFlight.values[i] -= 1
            } else {
                inFlight.remove(at: i)
                if isReady(a.node) { ready.insert(a.node) }
            }
        } else {
            // As before: a count that was missing would have gone to 1 - 1 = 0 and been dropped.
            if isReady(a.node) { ready.insert(a.node) }
        }
    }

    /// Whether `id` is live and queued, read in place (`live[id]` copies the whole attempt out).
    func isQueued(_ id: AttemptID) -> Bool {
        guard let i = live.index(forKey: id) else { return false }
        return live.values[i].record.state == .queued
    }

    var hasQueued: Bool {
        while queueHead < queue.count, !isQueued(queue[queueHead]) { queueHead += 1 }
        if queueHead > 1024 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
        return queueHead < queue.count
    }

    func planState(now: WallInstant, models liveModels: [PlanModel]) -> PlanState {
        let available = ledger.available
        return PlanState(
            nodes: planNodes, models: liveModels, done: done, inFlight: inFlight,
            remainingTokens: record.limitTokens == nil ? nil : available.tokens,
            remainingUSD: record.limitUSD == nil ? nil : available.usd.usd,
            remainingSeconds: max(0, record.deadline.seconds(since: now)))
    }

    /// Attempts of a subtask that count against its `maxAttempts` (preempted ones do not).
    func attemptsCounted(_ sub: SubtaskRecord) -> Int {
        sub.attempts - (preemptedAttempts[sub.id] ?? 0) - (judgeAttempts[sub.id] ?? 0)
    }

    /// Subtasks whose needs are all done and that are not done themselves.
    var succeededCount: Int { subtasks.values.filter { $0.state == .succeeded }.count }
}
