import AgentFlowCore
import Foundation
import Observability
import Wire

/// What happens to a worker: its connection came up, a message arrived, a backend reported,
/// time passed, it was told to stop.
public enum WorkerEvent: Sendable {
    /// A fresh connection to the coordinator is up (the shell connected, or reconnected).
    case connected
    case message(CoordinatorMessage)
    /// Tokens a running attempt has used so far (its backend says).
    case progress(AttemptID, tokens: Int)
    /// Transcript entries a running attempt recorded (its backend says).
    case transcript(AttemptID, [TranscriptEntry])
    /// An attempt is over; `after` > 0 delays the report (the simulated backend's latency), and
    /// replaces a delayed report of the same attempt not yet due.
    case finished(AttemptID, AttemptOutcome, after: Duration)
    /// Timers: heartbeats, delayed reports, the coordinator's silence, draining.
    case tick
    /// SIGTERM/SIGINT (or the embedded run ending).
    case stop
    /// What the model server last said about its load (nil: it says nothing, or not lately);
    /// sent with each heartbeat from then on.
    case serverLoad(ServerLoad?)
}

/// What the worker decided, for its shell to carry out in order: start and cancel attempts on
/// the backend, send messages, drop the connection and connect again at `reconnectAt`.
public struct WorkerActions: Sendable {
    public var sends: [WorkerMessage] = []
    /// Attempts to start, each with its deadline on this worker's clock.
    public var starts: [AttemptSpec] = []
    public var cancels: [AttemptID] = []
    /// Close the connection; open a new one at ``WorkerCore/reconnectAt``.
    public var disconnect = false
    public var notes: [WorkerNote] = []
    /// The worker is done (goodbye sent): the shell closes and returns.
    public var done = false

    public init() {}
}

/// What happened, for the worker's log.
public enum WorkerNote: Sendable {
    case attemptStarted(AttemptSpec)
    case attemptEnded(AttemptID, AttemptOutcome)
    /// Registered again after a rejection or a link problem.
    case registered
    /// The coordinator refused the registration (said when the reason changes, or every 30 s).
    case rejected(reason: String)
    case coordinatorSilent(for: Duration)
    case draining(running: Int, grace: Duration)
    case drainGraceOver(cancelling: Int)
}

/// A worker's protocol as a value: register with what it runs and the results it holds,
/// heartbeat, notice the coordinator's silence and reconnect with exponential backoff (1 s →
/// 32 s; with several coordinator endpoints, the next one at once and at most 2 s between
/// passes over the list), never run an attempt id twice, keep results until they are acknowledged, drain on
/// SIGTERM. No socket, thread, backend or clock: events go in with the time
/// (``handle(_:at:)``), ``WorkerActions`` come out. ``WorkerProcess`` runs it over ZeroMQ;
/// the simulator runs the same core over its simulated network and clock.
public struct WorkerCore: Sendable {
    public struct Options: Sendable {
        public var heartbeat: Duration = .seconds(1)
        public var liveness: Int = 3
        public var backoffStart: Duration = .seconds(1)
        public var backoffMax: Duration = .seconds(32)
        /// The coordinator endpoints the shell can connect to (`coordinator.workers` as a list:
        /// one leads, the others stand by), in the order to try them. With more than one, a lost
        /// or unwelcoming coordinator sends the worker to the next endpoint at once, and a whole
        /// pass over the list without a welcome waits `listBackoffMax` at most before the next
        /// (DESIGN §8). Empty or one: that endpoint, with the 1 s → `backoffMax` backoff.
        public var coordinators: [String] = []
        public var listBackoffMax: Duration = .seconds(2)
        /// What stopping means: nil, cancel what runs at once (embedded mode); else drain — tell
        /// the coordinator, take no new attempts, let running ones finish for up to this long,
        /// cancel the rest (they report what they used), then say goodbye.
        public var drainGrace: Duration?
        /// How many attempts per slot it holds queued behind busy slots at most (the
        /// coordinator's `prefetch` decides how many it sends; more are refused, "no free slot").
        public var queuePerSlot = WorkerCore.maxQueuePerSlot

        public init() {}
    }

    /// The most attempts per slot a worker holds queued (`coordinator.prefetch` is at most this).
    public static let maxQueuePerSlot = Limits.maxPrefetch

    public let info: WorkerInfo
    let options: Options
    /// Attempts running on the backend (or waiting there for their inputs): each holds a slot.
    public private(set) var running: Set<AttemptID> = []
    /// Attempts accepted but not started (prefetched while every slot was busy), in arrival
    /// order: the next one starts the moment a slot frees, its deadline counted from then.
    public private(set) var queued: [AttemptSpec] = []
    /// When each slot that is free now went free (ended attempts, oldest first), and the gap from
    /// then to the next attempt's start on it: a slot's idle time between attempts.
    var freedAt: [MonotonicInstant] = []
    public private(set) var slotIdle = LatencyHistogram()
    /// The instant of the event being handled.
    var clock = MonotonicInstant(sinceOrigin: .zero)
    /// Results sent but not yet acknowledged; re-sent on re-registration.
    public private(set) var unacked: [AttemptID: AttemptReport] = [:]
    /// Every attempt id this process has accepted: an attempt never runs twice.
    private(set) var seen: Set<AttemptID> = []
    /// Delayed reports (the simulated backend's latency), by due time.
    private(set) var scheduled: [(at: MonotonicInstant, id: AttemptID, outcome: AttemptOutcome)] = []
    var lastHeard = MonotonicInstant(sinceOrigin: .zero)
    var nextHeartbeat = MonotonicInstant(sinceOrigin: .zero)
    var lastProgress: [AttemptID: MonotonicInstant] = [:]
    /// The coordinator's heartbeat and liveness (its welcome overrides the options').
    public private(set) var heartbeat: Duration
    public private(set) var liveness: Int
    /// Registered: the coordinator welcomed this connection.
    public private(set) var welcomed = false
    var lastRejection: (reason: String, at: MonotonicInstant)?
    public private(set) var rejectedAt: MonotonicInstant?
    /// The link had trouble (a rejection, or the shell reported a problem): say when it is fine again.
    public var troubleReported = false
    /// When to connect again after the coordinator went silent (nil: connected).
    public private(set) var reconnectAt: MonotonicInstant?
    /// Which of the shell's endpoints to connect to (next); moves on when one is lost or does
    /// not lead.
    public private(set) var endpoint = 0
    /// Endpoints tried since the last welcome: a full pass over the list backs off.
    var triedSinceWelcome = 0
    /// The endpoint of the last welcome (a welcome elsewhere is said in the log).
    var welcomedBy: Int?
    var backoff: Duration
    var stopRequested = false
    /// When draining began, and whether its grace ran out (running attempts cancelled).
    var drainingSince: MonotonicInstant?
    var drainCancelled = false
    /// Shutting down: what runs was cancelled; the goodbye goes once it reported, or by then.
    var shutdownBy: MonotonicInstant?
    var finished = false
    var out = WorkerActions()
    /// Input blobs received (``AttemptWork``), and attempts waiting for ones not yet here.
    var blobs = BlobCache()
    var pending: [AttemptID: PendingAttempt] = [:]
    /// Transcript entries of attempts whose results are not acknowledged yet (WorkerCore+Transcripts.swift).
    var transcripts: [AttemptID: [TranscriptEntry]] = [:]
    /// The model server's load as last polled, reported with each heartbeat.
    public private(set) var serverLoad: ServerLoad?

    public init(info: WorkerInfo, options: Options) {
        self.info = info
        self.options = options
        heartbeat = options.heartbeat
        liveness = options.liveness
        backoff = options.backoffStart
    }

    /// Handles one event at `now` (an instant on this worker's monotonic clock, ``AgentFlowCore/TimeSource/instant``)
    /// and returns what to do.
    public mutating func handle(_ event: WorkerEvent, at now: MonotonicInstant) -> WorkerActions {
        guard !finished else { return WorkerActions() }
        clock = now
        switch event {
        case .connected:
            reconnectAt = nil
            welcomed = false
            lastHeard = now
            nextHeartbeat = now + heartbeat
            out.sends.append(registration)
        case .message(let m):
            lastHeard = now
            backoff = options.backoffStart
            receive(m, now: now)
        case .progress(let id, let tokens):
            if running.contains(id), lastProgress[id].map({ now - $0 >= .milliseconds(200) }) ?? true {
                lastProgress[id] = now
                out.sends.append(.progress(id: id, tokens: tokens))
            }
        case .transcript(let id, let entries):
            recorded(id, entries)
        case .finished(let id, let outcome, let after):
            if after <= .zero {
                // Immediate: overrides any delayed report of the same attempt (a cancel).
                scheduled.removeAll { $0.id == id }
                report(id, outcome)
            } else {
                // A later delayed report replaces an earlier one of the same attempt: a backend
                // may re-time an attempt (the benchmarks' shared GPU, as attempts come and go).
                scheduled.removeAll { $0.id == id }
                let at = now + after
                let i = scheduled.firstIndex { $0.at > at } ?? scheduled.count
                scheduled.insert((at, id, outcome), at: i)
            }
        case .tick:
            tick(now: now)
        case .stop:
            stopRequested = true
            tick(now: now)
        case .serverLoad(let load):
            serverLoad = load?.clamped
        }
        if !queued.isEmpty { startQueued(now: now) }
        defer { out = WorkerActions() }
        return out
    }

    /// When the worker next needs a tick.
    public func wakeAt(now: MonotonicInstant) -> MonotonicInstant {
        if let r = reconnectAt { return min(r, now + .milliseconds(250)) }
        var at = nextHeartbeat
        if let first = scheduled.first { at = min(at, first.at) }
        for spec in queued { if let by = spec.startBy { at = min(at, by) } }
        if !welcomed || drainingSince != nil || shutdownBy != nil || !pending.isEmpty { at = min(at, now + .milliseconds(250)) }
        return at
    }

    var registration: WorkerMessage {
        .register(info: info, running: running.sorted { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) },
                  finished: unacked.values.sorted { ($0.id.job, $0.id.subtask, $0.id.n) < ($1.id.job, $1.id.subtask, $1.id.n) },
                  queued: queued.isEmpty ? nil : queued.map(\.id))
    }

    mutating func receive(_ message: CoordinatorMessage, now: MonotonicInstant) {
        switch message {
        case .welcome(let hb, let lv):
            heartbeat = .clampedSeconds(hb)
            liveness = lv
            triedSinceWelcome = 0
            let elsewhere = welcomedBy.map { $0 != endpoint } ?? false
            welcomedBy = endpoint
            if !welcomed && (troubleReported || lastRejection != nil || elsewhere) { out.notes.append(.registered) }
            welcomed = true
            troubleReported = false
            lastRejection = nil
            rejectedAt = nil
            if drainingSince != nil { out.sends.append(.draining) }
            resendTranscripts()
        case .heartbeat:
            break
        case .rejected(let reason):
            // Said when it changes or every 30 s; registering again is tried every 5 s (an
            // operator may enrol the key and reload the coordinator meanwhile).
            if lastRejection?.reason != reason || lastRejection.map({ now - $0.at >= .seconds(30) }) ?? true {
                out.notes.append(.rejected(reason: reason))
                lastRejection = (reason, now)
            }
            welcomed = false
            rejectedAt = now
        case .reregister:
            if let r = rejectedAt, now - r < .seconds(5) { return }
            out.sends.append(registration)
        case .dispatch(var spec):
            guard !seen.contains(spec.id) else { return }
            // A refused attempt is over here for good: a duplicate of its dispatch (the network
            // may deliver one twice) must not start it after the coordinator settled its refusal.
            if drainingSince != nil || stopRequested {
                report(spec.id, AttemptOutcome(end: .cancelled, usage: [], detail: "worker \(info.worker.name) is draining"))
                seen.insert(spec.id)
                return
            }
            // Only an attempt that says how long its job has left may wait for a slot (a
            // coordinator that prefetches sends that); any other is refused without a free slot.
            let slots = info.worker.slots
            guard running.count < slots || (spec.jobTTL != nil && queued.count < slots * max(0, options.queuePerSlot)) else {
                report(spec.id, AttemptOutcome(end: .error, usage: [], detail: "worker \(info.worker.name) has no free slot"))
                seen.insert(spec.id)
                return
            }
            seen.insert(spec.id)
            // The job's remaining time becomes an instant on this clock now; the attempt's own
            // ttl only when it starts (at once if a slot is free, else when one frees).
            spec.received(at: now)
            queued.append(spec)
            startQueued(now: now)
        case .cancel(let id):
            if let i = queued.firstIndex(where: { $0.id == id }) {
                notStarted(i, detail: "cancelled before it started (queued at worker \(info.worker.name))")
            } else if running.contains(id) && !cancelPending(id, reason: "cancelled while waiting for inputs") {
                out.cancels.append(id)
            }
        case .ack(let ids):
            for id in ids {
                unacked[id] = nil
                transcripts[id] = nil
            }
        case .blobs(let list):
            received(list, now: now)
        case .notLeader(let leader):
            // A standby coordinator: go where it says the leader is, else to the next endpoint.
            welcomed = false
            if stopRequested {
                beginShutdown(now: now)
                return
            }
            moveOn(now: now, to: options.coordinators.firstIndex(of: leader))
        }
    }

    /// Drops the connection and picks the endpoint to connect to next: `leader` (an index in
    /// the list) when the standby named one, else the next one; a single endpoint, or a pass
    /// over the whole list with no welcome, waits for the backoff first.
    mutating func moveOn(now: MonotonicInstant, to leader: Int? = nil) {
        out.disconnect = true
        triedSinceWelcome += 1
        let count = options.coordinators.count
        guard count > 1 else {
            reconnectAt = now + backoff
            backoff = min(backoff * 2, options.backoffMax)
            return
        }
        endpoint = leader ?? (endpoint + 1) % count
        if triedSinceWelcome >= count {
            triedSinceWelcome = 0
            reconnectAt = now + backoff
            backoff = min(backoff * 2, options.listBackoffMax)
        } else {
            reconnectAt = now
        }
    }

    /// Starts queued attempts, oldest first, while a slot is free (none while draining or
    /// stopping). One whose job's deadline has passed meanwhile never starts: it ends
    /// cancelled, having used nothing.
    mutating func startQueued(now: MonotonicInstant) {
        while running.count < info.worker.slots, !queued.isEmpty, drainingSince == nil, !stopRequested {
            if let by = queued[0].startBy, now >= by {
                notStarted(0, detail: "not started: its job's deadline passed while it waited for a slot at worker \(info.worker.name)")
                continue
            }
            var spec = queued.removeFirst()
            // The one conversion of the attempt's deadline: the relative ttl becomes an instant
            // on this worker's monotonic clock when the attempt starts, so neither the wait for a
            // slot nor skew between hosts or wall-clock steps shortens or stretches it.
            // Everything after (scaffold, LLM, sandbox) checks it.
            spec.started(at: now)
            running.insert(spec.id)
            if !freedAt.isEmpty { slotIdle.record((now - freedAt.removeFirst()).seconds) }
            out.notes.append(.attemptStarted(spec))
            startOrWait(spec, now: now)
        }
    }

    /// Ends the queued attempt at `index` without starting it: reported cancelled, no usage.
    mutating func notStarted(_ index: Int, detail: String) {
        let id = queued.remove(at: index).id
        out.notes.append(.attemptEnded(id, AttemptOutcome(end: .cancelled, usage: [], detail: detail)))
        let r = AttemptReport(id: id, outcome: AttemptOutcome(end: .cancelled, usage: [], detail: detail))
        unacked[id] = r
        out.sends.append(.result(r))
    }

    /// Ends every queued attempt unstarted (draining, stopping): the coordinator plans them again.
    mutating func dropQueued(_ why: String) {
        while !queued.isEmpty { notStarted(0, detail: "not started: worker \(info.worker.name) \(why)") }
    }

    /// Sends a result once: for an attempt still running, or one refused before it started.
    /// A second outcome for the same attempt (a delayed delivery after a cancel) is dropped.
    mutating func report(_ id: AttemptID, _ outcome: AttemptOutcome) {
        let wasRunning = running.remove(id) != nil
        pending[id] = nil
        guard wasRunning || !seen.contains(id) else { return }
        if wasRunning {
            freedAt.append(clock)
            if freedAt.count > info.worker.slots { freedAt.removeFirst() }
        }
        lastProgress[id] = nil
        out.notes.append(.attemptEnded(id, outcome))
        let r = AttemptReport(id: id, outcome: outcome)
        unacked[id] = r
        out.sends.append(.result(r))
    }

    mutating func tick(now: MonotonicInstant) {
        while let first = scheduled.first, first.at <= now {
            scheduled.removeFirst()
            report(first.id, first.outcome)
        }
        // A queued attempt whose job's deadline passed while every slot stayed busy.
        while let i = queued.firstIndex(where: { $0.startBy.map { now >= $0 } ?? false }) {
            notStarted(i, detail: "not started: its job's deadline passed while it waited for a slot at worker \(info.worker.name)")
        }
        if !pending.isEmpty { checkPending(now: now) }
        if shutdownBy != nil {
            finishShutdown(now: now)
            return
        }
        if stopRequested {
            if let grace = options.drainGrace, welcomed, reconnectAt == nil {
                if drainStep(now: now, grace: grace) { beginShutdown(now: now) }
            } else {
                beginShutdown(now: now)
            }
            if shutdownBy != nil { return }
        }
        if let r = reconnectAt {
            guard now >= r else { return }
            // The shell connects and tells the core (`.connected`), which registers again.
            return
        }
        if now >= nextHeartbeat {
            out.sends.append(.heartbeat)
            if let serverLoad { out.sends.append(.serverLoad(serverLoad)) }
            nextHeartbeat = now + heartbeat
        }
        // Deadlines are the backends' to honour; this is the backstop if one does not.
        // With other endpoints to try, a connection that was never welcomed is given up after
        // one heartbeat: a live coordinator welcomes (or redirects) at once.
        let patience = options.coordinators.count > 1 && !welcomed ? heartbeat : heartbeat * liveness
        if now - lastHeard > patience {
            // The coordinator is gone: back off, reconnect, register again.
            if welcomed { out.notes.append(.coordinatorSilent(for: now - lastHeard)) }
            welcomed = false
            if stopRequested {
                beginShutdown(now: now)
                return
            }
            moveOn(now: now)
        }
    }

    /// SIGTERM: no new attempts, running ones finish within the grace period, then are
    /// cancelled; true once nothing is left to wait for.
    mutating func drainStep(now: MonotonicInstant, grace: Duration) -> Bool {
        if drainingSince == nil {
            drainingSince = now
            dropQueued("is draining")
            out.sends.append(.draining)
            out.notes.append(.draining(running: running.count, grace: grace))
        }
        let since = drainingSince!
        if now - since >= grace && !running.isEmpty && !drainCancelled {
            drainCancelled = true
            out.notes.append(.drainGraceOver(cancelling: running.count))
            for id in running.sorted(by: { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) }) where !cancelPending(id, reason: "worker draining") {
                out.cancels.append(id)
            }
        }
        if !running.isEmpty { return now - since >= grace + .seconds(10) }
        // Results sent but not acknowledged would be lost with the connection: wait for the acks.
        return unacked.isEmpty || !welcomed || now - since >= grace + .seconds(10)
    }

    /// Stopping: what still runs is cancelled; cancelled attempts report what they used before
    /// the goodbye (bounded wait), so the coordinator charges that instead of their whole
    /// reservations.
    mutating func beginShutdown(now: MonotonicInstant) {
        shutdownBy = now + .seconds(2)
        dropQueued("is stopping")
        for id in running.sorted(by: { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) }) where !cancelPending(id, reason: "worker stopping") {
            out.cancels.append(id)
        }
        finishShutdown(now: now)
    }

    mutating func finishShutdown(now: MonotonicInstant) {
        guard let by = shutdownBy, (running.isEmpty && scheduled.isEmpty) || now >= by else { return }
        out.sends.append(.goodbye)
        out.done = true
        finished = true
    }
}
