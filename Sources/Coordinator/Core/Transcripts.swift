import AgentFlowCore
import Foundation
import Store
import Wire

/// Who ran the attempts that ended lately: a worker sends an attempt's transcript again after
/// every welcome until its result is acknowledged, so entries of an attempt that just ended
/// (its result arrived with the registration) are still its worker's to send. Bounded: the
/// oldest are forgotten first.
struct RecentOwners {
    private var owners: [AttemptID: String] = [:]
    private var order: [AttemptID] = []
    private var next = 0
    static let capacity = 65_536

    mutating func remember(_ id: AttemptID, worker: String) {
        // One lookup for the common case (an id not seen before), not a test and then a store.
        guard owners.updateValue(worker, forKey: id) == nil else { return }
        if order.count < Self.capacity {
            order.append(id)
        } else {
            owners[order[next]] = nil
            order[next] = id
            next = (next + 1) % Self.capacity
        }
    }

    func owner(of id: AttemptID) -> String? { owners[id] }
}

/// Transcripts streamed by workers (``AgentFlowCore/TranscriptEntry``): accepted from the worker
/// the attempt was dispatched to — while it runs, and after it ended — checked, redacted again
/// with what this coordinator knows (its HTTP tokens, the backend keys it can read), and stored
/// with the batch (``Store/StoreWrite/transcript(_:_:limits:at:)``), within the caps.
extension CoordinatorCore {
    /// Most entries taken from one message; a worker sends them as they happen, a few at a time.
    static let maxTranscriptEntriesPerMessage = 1024

    mutating func transcript(_ id: AttemptID, _ entries: [TranscriptEntry], from worker: String) {
        let limits = options.transcripts
        guard limits.perAttempt > 0, !entries.isEmpty else { return }
        var owner = endedOwners.owner(of: id)
        if let a = jobs[id.job]?.live[id], a.record.state == .dispatched { owner = a.record.worker }
        guard owner == worker else {
            // Not this peer's attempt (another worker's, or one never dispatched).
            stats.refusedRequests += 1
            return
        }
        var kept: [TranscriptEntry] = []
        for e in entries.prefix(Self.maxTranscriptEntriesPerMessage) {
            if let c = e.checked(redactor: options.redactor, now: now.wall.secondsSince1970), c.bytes <= limits.storedCap { kept.append(c) }
        }
        if !kept.isEmpty { persist(.transcript(id, kept, limits: limits, at: now.wall)) }
    }

    /// An attempt ended: its worker may still send what it recorded.
    mutating func rememberOwner(_ a: LiveAttempt) {
        if let worker = a.record.worker { endedOwners.remember(a.record.id, worker: worker) }
    }
}
