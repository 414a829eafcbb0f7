import AgentFlowCore
import Foundation
import Planner
import Store
import Wire

/// A worker as the core tracks it: its record (what it registered) and its live state.
struct WorkerEntry {
    var record: WorkerRecord
    /// The routing id of the connection it registered from (`name#suffix`).
    var identity: Data
    /// When it was last heard from: monotonic (liveness), and the wall clock (for display and the store).
    var lastSeen: MonotonicInstant
    var lastSeenWall: WallInstant
    var alive: Bool
    /// Attempts that hold its slots: started, as far as the coordinator can tell (a worker starts
    /// its queued attempts in the order they came, whenever a slot frees; see ``release(_:)``).
    var running: Set<AttemptID>
    /// Attempts sent beyond its free slots (`prefetch`) and not started yet, in dispatch order:
    /// they hold their budget reservations but no slot.
    var queued: [AttemptID] = []
    var breaker = BackendBreaker()
    /// The CURVE public key it registered with (nil without CURVE).
    var key: String? = nil
    /// No new attempts: the worker is shutting down, or `agentflow drain` said so.
    var draining = false
    /// Its model server's load as last reported (with a heartbeat), and when (monotonic);
    /// placement counts it while fresh (Placement.swift).
    var serverLoad: ServerLoad?
    var serverLoadAt = MonotonicInstant.origin
    /// The dispatch sequence number of its last attempt (0: none yet): placement's tie-break.
    var lastDispatch = 0
    /// Whether it takes new attempts.
    var available: Bool { alive && !draining && breaker.suspendedUntil == nil }
    /// Slots free to run an attempt now (what the planner and the fleet policy count).
    var free: Int { available ? max(0, record.slots - running.count - queued.count) : 0 }
    /// Attempts it can be sent now: its free slots, and `prefetch` per slot to hold queued.
    func room(prefetch: Int) -> Int { available ? max(0, record.slots * (1 + prefetch) - running.count - queued.count) : 0 }
    /// Everything it holds (running and queued).
    var holds: Int { running.count + queued.count }

    /// Takes `id` (dispatch number `sequence`): on a free slot (started), else queued. Returns
    /// whether it started, and the room left (``room(prefetch:)``).
    mutating func assign(_ id: AttemptID, sequence: Int, prefetch: Int) -> (started: Bool, left: Int) {
        let started = running.count + queued.count < record.slots
        if started { running.insert(id) } else { queued.append(id) }
        lastDispatch = sequence
        return (started, room(prefetch: prefetch))
    }

    /// `id` no longer holds anything here. If it held a slot, the oldest queued attempt takes
    /// it (the worker starts that one the moment the slot frees) and is returned.
    mutating func release(_ id: AttemptID) -> AttemptID? {
        if running.remove(id) != nil {
            guard running.count < record.slots, !queued.isEmpty else { return nil }
            let next = queued.removeFirst()
            running.insert(next)
            return next
        }
        if let i = queued.firstIndex(of: id) { queued.remove(at: i) }
        return nil
    }

    /// What `agentflow workers` and the API say it is.
    var state: WorkerState { !alive ? .dead : draining ? .draining : breaker.suspendedUntil != nil ? .suspended : .alive }
}
