import AgentFlowCore
import Foundation
import Wire

/// An attempt accepted but not started: it waits for input blobs it asked the coordinator for.
struct PendingAttempt: Sendable {
    var spec: AttemptSpec
    var missing: Set<String>
    var askedAt: MonotonicInstant
    var since: MonotonicInstant
}

/// The worker's half of content-addressed inputs (``AttemptWork``): bodies that come with a
/// dispatch are kept in the cache; ones it lacks are asked for (`fetchBlobs`), again every few
/// seconds (a reconnect may lose the request); the attempt starts once it has them all, or
/// ends at its deadline (or after ``inputWait``) saying what never came.
extension WorkerCore {
    /// How long an attempt waits for its inputs before it ends as an error.
    static let inputWait: Duration = .seconds(30)
    /// How often a pending request is repeated.
    static let inputAskAgain: Duration = .seconds(3)

    /// The spec with every input's body attached from the cache, and the hashes still missing.
    mutating func resolveInputs(_ spec: AttemptSpec) -> (spec: AttemptSpec, missing: Set<String>) {
        guard var work = spec.work, !work.inputs.isEmpty else { return (spec, []) }
        for blob in work.blobs { blobs.put(blob) }
        var attached: [Blob] = []
        var missing: Set<String> = []
        for input in work.inputs {
            if let blob = blobs.get(input.sha256) {
                if !attached.contains(blob) { attached.append(blob) }
            } else {
                missing.insert(input.sha256)
            }
        }
        work.blobs = attached
        var resolved = spec
        resolved.work = work
        return (resolved, missing)
    }

    /// Starts `spec` now, or parks it until its inputs arrive.
    mutating func startOrWait(_ spec: AttemptSpec, now: MonotonicInstant) {
        let (resolved, missing) = resolveInputs(spec)
        guard !missing.isEmpty else {
            out.starts.append(resolved)
            return
        }
        pending[spec.id] = PendingAttempt(spec: resolved, missing: missing, askedAt: now, since: now)
        out.sends.append(.fetchBlobs(attempt: spec.id, sha256s: missing.sorted()))
    }

    /// Blobs the coordinator sent: every pending attempt that now has all of its inputs starts;
    /// one still missing some asks for them at once (one message carries what fits).
    mutating func received(_ list: [Blob], now: MonotonicInstant) {
        for blob in list { blobs.put(blob) }
        for id in pending.keys.sorted(by: { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) }) {
            let (resolved, missing) = resolveInputs(pending[id]!.spec)
            if missing.isEmpty {
                pending[id] = nil
                out.starts.append(resolved)
            } else if missing != pending[id]?.missing {
                pending[id]?.missing = missing
                pending[id]?.askedAt = now
                out.sends.append(.fetchBlobs(attempt: id, sha256s: missing.sorted()))
            }
        }
    }

    /// Asks again for what is still missing; ends attempts whose deadline or wait ran out.
    mutating func checkPending(now: MonotonicInstant) {
        for id in pending.keys.sorted(by: { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) }) {
            let wait = pending[id]!
            if now >= wait.spec.deadline {
                pending[id] = nil
                report(id, AttemptOutcome(end: .deadline, usage: [], detail: "deadline reached while waiting for inputs"))
            } else if now - wait.since > Self.inputWait {
                pending[id] = nil
                report(id, AttemptOutcome(end: .error, usage: [],
                                          detail: "inputs never arrived (\(wait.missing.count) blob(s) missing after \(Int((now - wait.since).seconds))s)"))
            } else if now - wait.askedAt >= Self.inputAskAgain {
                pending[id]?.askedAt = now
                out.sends.append(.fetchBlobs(attempt: id, sha256s: wait.missing.sorted()))
            }
        }
    }

    /// Cancels an attempt that never started: it reports that it used nothing.
    mutating func cancelPending(_ id: AttemptID, reason: String) -> Bool {
        guard pending.removeValue(forKey: id) != nil else { return false }
        report(id, AttemptOutcome(end: .cancelled, usage: [], detail: reason))
        return true
    }
}
