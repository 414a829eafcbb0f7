import AgentFlowCore
import Foundation

/// What a simulated worker process does with an attempt, as the checkers see it.
public enum WorkerObservation {
    /// A dispatch reached the process's core at this instant (read, not merely delivered: a
    /// frozen process reads what queued up when it wakes).
    case received(AttemptSpec, by: Data, at: MonotonicInstant)
    case started(AttemptSpec, by: Data, at: MonotonicInstant)
    /// The process sent a result for it (ended, refused, cancelled or dropped unstarted).
    case reported(AttemptID, by: Data)
}

/// Attempts a worker holds queued behind busy slots (prefetch): one never starts twice in one
/// process (across processes: ``ExactlyOnceChecker``), never after that process reported it (a
/// queued attempt cancelled, dropped while draining, or past its job's time is over for good),
/// and never once its job's time is spent — the `jobTTL` its dispatch carried, counted from
/// when the process read the dispatch, the one conversion the worker makes of it. It also
/// counts the attempts that waited queued before they started.
struct QueuedAttemptChecker {
    private struct Key: Hashable {
        var identity: Data
        var id: AttemptID
    }
    private var arrived: [Key: (at: MonotonicInstant, jobTTL: Duration?)] = [:]
    private var reported: Set<Key> = []
    private var started: Set<Key> = []
    /// Attempts that started later than they were read (they waited for a slot).
    private(set) var waitedStarts = 0

    mutating func observe(_ o: WorkerObservation) -> String? {
        switch o {
        case .received(let spec, let identity, let now):
            let key = Key(identity: identity, id: spec.id)
            if arrived[key] == nil { arrived[key] = (now, spec.jobTTL) }
        case .reported(let id, let identity):
            reported.insert(Key(identity: identity, id: id))
        case .started(let spec, let identity, let now):
            let key = Key(identity: identity, id: spec.id)
            let who = String(decoding: identity, as: UTF8.self)
            guard started.insert(key).inserted else { return "attempt \(spec.id) started twice by \(who)" }
            if reported.contains(key) { return "attempt \(spec.id) started by \(who) after it reported the attempt ended" }
            guard let arrival = arrived[key] else { return "attempt \(spec.id) started by \(who) without a dispatch it read" }
            if now > arrival.at { waitedStarts += 1 }
            if let ttl = arrival.jobTTL, now > arrival.at + min(ttl, .seconds(Limits.maxSeconds)) {
                return "attempt \(spec.id) started by \(who) \(String(format: "%.3f", (now - arrival.at - ttl).seconds)) s after its job's time "
                    + "(\(ttl.seconds) s from the dispatch's arrival) was spent"
            }
            if let ttl = arrival.jobTTL, spec.deadline > arrival.at + ttl {
                return "attempt \(spec.id) at \(who) may run past its job's time: its deadline is \((spec.deadline - arrival.at - ttl).seconds) s after it"
            }
        }
        return nil
    }
}
