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
    var running: Set<AttemptID>
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
    var free: Int { alive && !draining && breaker.suspendedUntil == nil ? max(0, record.slots - running.count) : 0 }

    /// What `agentflow workers` and the API say it is.
    var state: WorkerState { !alive ? .dead : draining ? .draining : breaker.suspendedUntil != nil ? .suspended : .alive }
}
