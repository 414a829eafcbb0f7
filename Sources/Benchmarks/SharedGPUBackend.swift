import AgentFlowCore
import Foundation
import Synchronization

/// A benchmark worker's GPU, shared by the attempts it runs: `inner` (calibration rows, or the
/// sim backend's draws) says how long an attempt would take alone; here the attempts on this
/// worker share the GPU — processor sharing, each advancing at 1 / ``GPUSharing/factor(_:)``
/// of its speed alone while k attempts run — so an attempt slows when others join and speeds
/// up when they leave. Each change re-times the reports of the attempts still running (a
/// delayed `finish` replaces the one before). An attempt the slowdown pushes past its deadline
/// ends `deadline` there, with the tokens of the share of its work it did; a cancelled one pays
/// for the share it did.
public final class SharedGPUBackend: AttemptBackend {
    let inner: any AttemptBackend
    let sharing: GPUSharing
    let time: any TimeSource
    let gpu = Mutex(GPU())

    /// An attempt on the GPU: its work in seconds alone, what is left, and how it reports.
    struct Running {
        var work: Double
        var left: Double
        var started: Double
        var deadline: Double
        var outcome: AttemptOutcome
        var events: any AttemptEvents
        /// When its report is due, as last scheduled.
        var due: Double
    }

    struct GPU {
        var running: [AttemptID: Running] = [:]
        var updated = 0.0
    }

    public init(_ inner: any AttemptBackend, sharing: GPUSharing, time: any TimeSource) {
        self.inner = inner
        self.sharing = sharing
        self.time = time
    }

    public func start(_ spec: AttemptSpec, events: any AttemptEvents) -> any AttemptHandle {
        inner.start(spec, events: Slowed(events: events, gpu: self, deadline: spec.deadline.seconds))
    }

    /// The inner backend's report of an attempt: delayed, it joins the GPU; at once (cancelled
    /// or refused), it leaves.
    func report(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double, events: any AttemptEvents, deadline: Double) {
        let now = time.monotonic
        var sends: [(id: AttemptID, events: any AttemptEvents, outcome: AttemptOutcome, after: Double)] = []
        gpu.withLock { g in
            advance(&g, to: now)
            if seconds > 0 {
                g.running[id] = Running(work: seconds, left: seconds, started: now, deadline: deadline, outcome: outcome, events: events, due: .infinity)
            } else {
                var outcome = outcome
                if let r = g.running.removeValue(forKey: id) { outcome.usage = Self.share(r.outcome.usage, (r.work - r.left) / max(r.work, 1e-12)) }
                sends.append((id, events, outcome, seconds))
            }
            sends += retime(&g, now: now)
        }
        for s in sends { s.events.finish(s.id, s.outcome, after: s.after) }
    }

    /// Work done up to `now`: every running attempt advances at 1/factor(k), k falling as
    /// attempts leave (their work done, or their report due at a deadline).
    func advance(_ g: inout GPU, to now: Double) {
        while !g.running.isEmpty && g.updated < now {
            let f = sharing.factor(g.running.count)
            let next = g.running.values.map { min(g.updated + $0.left * f, $0.due) }.min()!
            let until = min(max(next, g.updated), now)
            let step = (until - g.updated) / f
            for key in Array(g.running.keys) { g.running[key]!.left -= step }
            g.updated = until
            for (key, r) in g.running where r.left <= 1e-9 || r.due <= until { g.running[key] = nil }
            if until >= now { break }
        }
        g.updated = now
    }

    /// When each running attempt ends if none joins or leaves early (its work done, or its
    /// deadline: it then ends `deadline` with the share it did), and the reports that moved.
    func retime(_ g: inout GPU, now: Double) -> [(id: AttemptID, events: any AttemptEvents, outcome: AttemptOutcome, after: Double)] {
        var left = g.running.mapValues(\.left)
        var t = now
        var ends: [(id: AttemptID, at: Double, atDeadline: Bool, left: Double)] = []
        while !left.isEmpty {
            let f = sharing.factor(left.count)
            // The next departure; ties in a fixed order (the same seed gives the same run).
            let next = left.map { id, l -> (at: Double, atDeadline: Bool, id: AttemptID) in
                let natural = t + l * f, deadline = max(t, g.running[id]!.deadline)
                return natural <= deadline ? (natural, false, id) : (deadline, true, id)
            }.min { ($0.at, $0.id.job, $0.id.subtask, $0.id.n) < ($1.at, $1.id.job, $1.id.subtask, $1.id.n) }!
            let step = (next.at - t) / f
            for id in Array(left.keys) { left[id]! -= step }
            t = next.at
            ends.append((next.id, t, next.atDeadline, max(0, left[next.id]!)))
            left[next.id] = nil
            // Done at the same moment: leave together.
            for (id, l) in left where l <= 1e-9 {
                ends.append((id, t, false, 0))
                left[id] = nil
            }
        }
        var out: [(id: AttemptID, events: any AttemptEvents, outcome: AttemptOutcome, after: Double)] = []
        for e in ends {
            let r = g.running[e.id]!
            guard e.at != r.due else { continue }
            var outcome = r.outcome
            if e.atDeadline {
                let done = r.work - e.left
                outcome.end = .deadline
                outcome.usage = Self.share(r.outcome.usage, done / max(r.work, 1e-12))
                outcome.output = nil
                outcome.outputs = nil
                outcome.judgement = nil
            }
            outcome.seconds = e.at - r.started
            g.running[e.id]!.due = e.at
            out.append((e.id, r.events, outcome, max(e.at - now, 1e-9)))
        }
        return out
    }

    static func share(_ usage: [TokenUsage], _ fraction: Double) -> [TokenUsage] {
        let f = min(max(fraction, 0), 1)
        return usage.map { TokenUsage(role: $0.role, input: Int((Double($0.input) * f).rounded(.down)), output: Int((Double($0.output) * f).rounded(.down))) }
    }

    /// The inner backend's events for one attempt, through the GPU.
    final class Slowed: AttemptEvents {
        let events: any AttemptEvents
        let gpu: SharedGPUBackend
        let deadline: Double

        init(events: any AttemptEvents, gpu: SharedGPUBackend, deadline: Double) {
            self.events = events
            self.gpu = gpu
            self.deadline = deadline
        }

        func progress(_ id: AttemptID, tokens: Int) { events.progress(id, tokens: tokens) }
        func transcript(_ id: AttemptID, _ entries: [TranscriptEntry]) { events.transcript(id, entries) }
        func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) {
            gpu.report(id, outcome, after: seconds, events: events, deadline: deadline)
        }
    }
}
