import AgentFlowCore
import Wire

/// The worker's half of transcripts (``AgentFlowCore/TranscriptEntry``): entries go to the
/// coordinator as they are recorded, and are kept until the attempt's result is acknowledged;
/// after every welcome (a reconnect, a coordinator that restarted and may have lost what was in
/// flight) the kept entries are sent again — the coordinator stores each sequence number once.
/// So a worker that dies loses at most what was in flight, and nothing is lost across a
/// coordinator restart. Memory: each attempt's entries are bounded by its transcript cap.
extension WorkerCore {
    /// Most entries, and bytes, in one message (a ZeroMQ frame carries at most 16 MiB).
    static let transcriptBatchEntries = 512
    static let transcriptBatchBytes = 1 << 20

    mutating func recorded(_ id: AttemptID, _ entries: [TranscriptEntry]) {
        // An attempt this worker runs or has just finished (a late delivery of its last entries).
        guard running.contains(id) || unacked[id] != nil else { return }
        transcripts[id, default: []] += entries
        if welcomed { sendTranscript(id, entries) }
    }

    /// Everything kept, again, in order (after a welcome).
    mutating func resendTranscripts() {
        for id in transcripts.keys.sorted(by: { ($0.job, $0.subtask, $0.n) < ($1.job, $1.subtask, $1.n) }) {
            guard running.contains(id) || unacked[id] != nil else {
                transcripts[id] = nil
                continue
            }
            sendTranscript(id, transcripts[id] ?? [])
        }
    }

    mutating func sendTranscript(_ id: AttemptID, _ entries: [TranscriptEntry]) {
        var batch: [TranscriptEntry] = []
        var bytes = 0
        for e in entries {
            if !batch.isEmpty && (batch.count >= Self.transcriptBatchEntries || bytes + e.bytes > Self.transcriptBatchBytes) {
                out.sends.append(.transcript(id: id, entries: batch))
                batch = []
                bytes = 0
            }
            batch.append(e)
            bytes += e.bytes
        }
        if !batch.isEmpty { out.sends.append(.transcript(id: id, entries: batch)) }
    }
}
