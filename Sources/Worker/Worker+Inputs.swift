import AgentFlowCore
import Foundation
import Wire

/// An attempt accepted but not started: it waits for input blobs it asked the coordinator for.
struct PendingAttempt {
    var spec: AttemptSpec
    var missing: Set<String>
    var askedAt: Double
    var since: Double
}

/// A pending attempt's handle: cancelling it ends the wait.
final class PendingHandle: AttemptHandle {
    let cancelled: @Sendable () -> Void
    init(cancelled: @escaping @Sendable () -> Void) { self.cancelled = cancelled }
    func cancel() { cancelled() }
}

/// The worker's half of content-addressed inputs (``AttemptWork``): bodies that come with a
/// dispatch are kept; ones it lacks are asked for; the attempt starts once it has them all.
extension WorkerProcess {
    /// How long an attempt waits for its inputs before it ends as an error.
    static let inputWait = 30.0
    /// How often a pending request is repeated (a reconnect may have lost it).
    static let inputAskAgain = 3.0

    /// Takes the blobs a dispatch carries; returns the spec with every input's body attached,
    /// or the hashes still missing.
    func resolveInputs(_ spec: AttemptSpec) -> (spec: AttemptSpec, missing: Set<String>) {
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
    func startOrWait(_ spec: AttemptSpec) {
        let (resolved, missing) = resolveInputs(spec)
        guard !missing.isEmpty else {
            running[spec.id] = backend.start(resolved, events: inbox)
            return
        }
        let now = time.now
        pending[spec.id] = PendingAttempt(spec: resolved, missing: missing, askedAt: now, since: now)
        let inbox = self.inbox
        let id = spec.id
        running[spec.id] = PendingHandle { inbox.finish(id, AttemptOutcome(end: .cancelled, usage: [], detail: "cancelled while waiting for inputs"), after: 0) }
        send(.fetchBlobs(attempt: spec.id, sha256s: missing.sorted()))
        logger.info("attempt waits for inputs", metadata: ["attempt": "\(spec.id)", "missing": "\(missing.count)"])
    }

    /// Blobs the coordinator sent: start every pending attempt that now has all of its inputs.
    func received(_ list: [Blob]) {
        for blob in list { blobs.put(blob) }
        for (id, wait) in pending {
            let (resolved, missing) = resolveInputs(wait.spec)
            if missing.isEmpty {
                pending[id] = nil
                running[id] = backend.start(resolved, events: inbox)
            } else {
                pending[id]?.missing = missing
            }
        }
    }

    /// Asks again for what is still missing, and ends attempts that waited too long.
    func checkPending(now: Double) {
        for (id, wait) in pending {
            if now >= wait.spec.deadline {
                pending[id] = nil
                report(id, AttemptOutcome(end: .deadline, usage: [], detail: "deadline reached while waiting for inputs"))
            } else if now - wait.since > Self.inputWait {
                pending[id] = nil
                report(id, AttemptOutcome(end: .error, usage: [],
                                          detail: "inputs never arrived (\(wait.missing.count) blob(s) missing after \(Int(now - wait.since))s)"))
            } else if now - wait.askedAt >= Self.inputAskAgain {
                pending[id]?.askedAt = now
                send(.fetchBlobs(attempt: id, sha256s: wait.missing.sorted()))
            }
        }
    }
}
