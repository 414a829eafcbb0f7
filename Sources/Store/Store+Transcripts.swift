import AgentFlowCore
import Foundation

/// An attempt's transcript as stored: its entries in order, what its totals row says, and, for a
/// job whose transcripts were deleted under the total cap, when and why.
public struct StoredTranscript: Sendable, Equatable {
    public var entries: [TranscriptEntry]
    /// Bytes counted against the caps (``AgentFlowCore/TranscriptEntry/bytes``).
    public var bytes: Int
    /// Entries that arrived but were not stored: past the attempt's cap, or past the total cap
    /// while only running jobs held transcripts.
    public var refused: Int
    public var pruned: Pruned?

    public struct Pruned: Sendable, Equatable {
        public var at: Double
        public var entries: Int
        public var bytes: Int
        public var reason: String
    }
}

/// Transcripts (``AgentFlowCore/TranscriptEntry``): appended as workers stream them, each
/// sequence number once, within the attempt's cap and the total cap
/// (``AgentFlowCore/TranscriptLimits``). Crossing the total cap deletes the transcripts of the
/// jobs that ended first, whole jobs, until they take at most 90% of it; each such job keeps a
/// line in `transcripts_pruned`. Transcripts of jobs still queued or running are never deleted:
/// when they alone fill the cap, new entries are refused (and counted) instead.
extension Store {
    /// Stores what is new in `entries` (in the open transaction).
    public func appendTranscript(_ id: AttemptID, _ entries: [TranscriptEntry], limits: TranscriptLimits, at now: WallInstant) throws {
        guard !entries.isEmpty, limits.perAttempt > 0 else { return }
        if try !connection.query("SELECT 1 FROM transcripts_pruned WHERE job = ?", id.job).isEmpty { return }
        let row = try connection.query("SELECT entries, bytes, refused FROM transcripts WHERE job = ? AND subtask = ? AND n = ?",
                                       id.job, id.subtask, id.n).first
        var count = row?.int(0) ?? 0
        var bytes = row?.int(1) ?? 0
        var refused = row?.int(2) ?? 0
        var total = try transcriptTotal()
        let encoder = JSONEncoder()
        for e in entries {
            let size = e.bytes
            if count >= TranscriptLimits.maxEntries || bytes + size > limits.storedCap {
                refused += 1
                continue
            }
            if total + size > limits.total {
                total = try pruneTranscripts(total: total, limits: limits, sparing: id.job, at: now)
                if total + size > limits.total {
                    refused += 1
                    continue
                }
            }
            let body = String(decoding: try encoder.encode(e.event), as: UTF8.self)
            try connection.run("INSERT INTO transcript_entries (job, subtask, n, seq, at, bytes, body) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                               id.job, id.subtask, id.n, e.seq, e.at, size, body)
            if try connection.changes == 1 {
                count += 1
                bytes += size
                total += size
            }
        }
        try connection.run(
            """
            INSERT INTO transcripts (job, subtask, n, entries, bytes, refused) VALUES (?,?,?,?,?,?)
            ON CONFLICT(job, subtask, n) DO UPDATE SET entries=excluded.entries, bytes=excluded.bytes, refused=excluded.refused
            """, id.job, id.subtask, id.n, count, bytes, refused)
        try connection.run("UPDATE transcripts_total SET bytes = ? WHERE id = 0", total)
    }

    /// Bytes all stored transcripts count.
    public func transcriptTotal() throws -> Int {
        try connection.query("SELECT bytes FROM transcripts_total WHERE id = 0").first?.int(0) ?? 0
    }

    /// Deletes the transcripts of the jobs that ended first until all (`total` bytes now) take at
    /// most 90% of the total cap (never `sparing`'s, never a running job's); returns the new total.
    func pruneTranscripts(total: Int, limits: TranscriptLimits, sparing: String, at now: WallInstant) throws -> Int {
        var total = total
        let target = limits.total / 10 * 9
        while total > target {
            let oldest = try connection.query(
                """
                SELECT t.job, SUM(t.bytes), SUM(t.entries) FROM transcripts t JOIN jobs j ON j.id = t.job
                WHERE j.state NOT IN ('queued', 'running') AND t.job != ?
                GROUP BY t.job, j.ended_at ORDER BY j.ended_at, t.job LIMIT 64
                """, sparing)
            if oldest.isEmpty { break }
            for r in oldest where total > target {
                let job = r.string(0)
                try connection.run("DELETE FROM transcript_entries WHERE job = ?", job)
                try connection.run("DELETE FROM transcripts WHERE job = ?", job)
                try connection.run(
                    """
                    INSERT INTO transcripts_pruned (job, at, entries, bytes, reason) VALUES (?,?,?,?,?)
                    ON CONFLICT(job) DO UPDATE SET at = excluded.at, entries = excluded.entries, bytes = excluded.bytes, reason = excluded.reason
                    """, job, now.secondsSince1970, r.int(2), r.int(1),
                    "deleted to keep all transcripts within coordinator.transcripts.total (\(limits.total) bytes): the transcripts of the jobs that ended first go first")
                total -= r.int(1)
            }
        }
        return max(0, total)
    }

    /// An attempt's transcript; nil when nothing was ever stored for it.
    public func transcript(of id: AttemptID) throws -> StoredTranscript? {
        let decoder = JSONDecoder()
        let entries = try connection.query(
            "SELECT seq, at, body FROM transcript_entries WHERE job = ? AND subtask = ? AND n = ? ORDER BY seq", id.job, id.subtask, id.n
        ).compactMap { r -> TranscriptEntry? in
            guard let event = try? decoder.decode(TranscriptEvent.self, from: Data(r.string(2).utf8)) else { return nil }
            return TranscriptEntry(seq: r.int(0), at: r.double(1), event: event)
        }
        let totals = try connection.query("SELECT bytes, refused FROM transcripts WHERE job = ? AND subtask = ? AND n = ?",
                                          id.job, id.subtask, id.n).first
        let pruned = try connection.query("SELECT at, entries, bytes, reason FROM transcripts_pruned WHERE job = ?", id.job).first.map {
            StoredTranscript.Pruned(at: $0.double(0), entries: $0.int(1), bytes: $0.int(2), reason: $0.string(3))
        }
        guard totals != nil || pruned != nil else { return nil }
        return StoredTranscript(entries: entries, bytes: totals?.int(0) ?? 0, refused: totals?.int(1) ?? 0, pruned: pruned)
    }
}
