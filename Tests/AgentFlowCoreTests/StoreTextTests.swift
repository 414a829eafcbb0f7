import AgentFlowCore
import Foundation
@testable import Store
import Testing

/// Text with NULs inside (a model's output may hold U+0000) is stored whole: SQLite binds text
/// by byte length and reads it by `sqlite3_column_bytes` (it used to be cut at the first NUL);
/// PostgreSQL's text cannot hold NUL, so it is escaped reversibly (`PostgresText`; the round trip
/// on a real PostgreSQL is in PostgresStoreTests).
@Suite struct StoreTextTests {
    static let texts = [
        "a\u{0}b", "\u{0}", "\u{0}\u{0}leading", "trailing\u{0}", "print('\u{0}')\n\u{0}ünï € \u{1}\u{7f}",
        "\u{FFFF}", "\u{FFFF}0", "x\u{FFFF}\u{FFFF}\u{0}\u{FFFF}", "", "plain", String(repeating: "\u{0}é", count: 5_000),
    ]

    static func job(_ id: String, reason: String) -> JobRecord {
        JobRecord(id: id, workflowName: "w", yaml: "name: w\n# \(reason)", file: "w.yaml", state: .running, reason: reason, planner: "seq:1",
                  seed: 1, priority: 0, limitTokens: 100, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: 10, deadline: 70,
                  startedAt: nil, endedAt: nil, minSuccess: nil)
    }

    @Test func textWithNULsRoundTripsWholeOnSQLite() throws {
        let store = try Store(path: ":memory:")
        var writes: [StoreWrite] = []
        for (i, text) in Self.texts.enumerated() {
            let id = "j\(i)"
            writes.append(.insertJob(Self.job(id, reason: text)))
            writes.append(.subtask(SubtaskRecord(job: id, id: "s", state: .succeeded, model: "m", attempts: 1, output: text)))
            writes.append(.attempt(AttemptRecord(id: AttemptID(job: id, subtask: "s", n: 1), model: "m", worker: "w", state: .succeeded,
                                                 tokenCap: 10, reserved: .zero, deadline: 70, createdAt: 11, detail: text)))
        }
        try store.applyAndCommit(writes)
        for (i, text) in Self.texts.enumerated() {
            let id = "j\(i)"
            let job = try #require(try store.job(id))
            #expect(job.reason == text, "job \(i)'s reason")
            #expect(job.yaml == "name: w\n# \(text)", "job \(i)'s workflow text")
            #expect(try store.subtasks(of: id).first?.output == text, "subtask \(i)'s output")
            #expect(try store.attempts(of: id).first?.detail == text, "attempt \(i)'s detail")
        }
        // An empty text stays empty, not NULL.
        #expect(try store.subtasks(of: "j\(Self.texts.firstIndex(of: "")!)").first?.output == "")
    }

    /// Ids that differ only after a NUL are different rows (cut at the NUL, they were one).
    @Test func idsThatDifferAfterANULAreDifferentRows() throws {
        let store = try Store(path: ":memory:")
        try store.begin()
        try store.save(Self.job("j\u{0}one", reason: "first"))
        try store.save(Self.job("j\u{0}two", reason: "second"))
        try store.commit()
        #expect(try store.job("j\u{0}one")?.reason == "first")
        #expect(try store.job("j\u{0}two")?.reason == "second")
        #expect(try store.job("j") == nil)
    }

    @Test func postgresEscapeIsReversibleAndHoldsNoNUL() {
        var rng = SystemRandomNumberGenerator()
        let alphabet: [Unicode.Scalar] = ["\u{0}", "\u{FFFF}", "0", "a", "é", "\u{1F600}", "\u{FFFE}", "\u{EFFF}"]
        var samples = Self.texts
        for _ in 0..<2_000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0...12, using: &rng) { s.append(alphabet.randomElement(using: &rng)!) }
            samples.append(String(s))
        }
        for text in samples {
            let stored = PostgresText.escape(text)
            #expect(!stored.unicodeScalars.contains("\u{0}"), "\(text.debugDescription) stored with a NUL")
            #expect(PostgresText.unescape(stored) == text, "\(text.debugDescription) did not come back")
        }
        // Text without NUL or U+FFFF (nearly all) is stored as is, so older rows read the same.
        for text in ["plain", "ünï € \u{1}", "\u{EFFF}\u{FFFE}"] { #expect(PostgresText.escape(text) == text) }
        // A U+FFFF stored before the escape, not followed by "0" or U+FFFF, reads as itself.
        #expect(PostgresText.unescape("a\u{FFFF}b") == "a\u{FFFF}b")
        #expect(PostgresText.unescape("end\u{FFFF}") == "end\u{FFFF}")
    }
}
