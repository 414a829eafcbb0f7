import AgentFlowCore
import Coordinator
import Foundation
import Store
import Testing
import Wire

/// Transcripts below the processes: what is redacted and what is left verbatim, how a hostile
/// worker's entries are checked, how the store keeps each entry once within the caps and prunes
/// the jobs that ended first, and which worker the core takes an attempt's transcript from.
@Suite struct TranscriptStoreTests {
    // MARK: - Redaction

    @Test func knownSecretsAndKeyFormatsAreRedactedAndNothingElse() {
        let r = SecretRedactor(secrets: ["hunter2-backend-key", "tok"])
        let text = """
            key hunter2-backend-key, header Authorization: Bearer abc123def456ghi, \
            openai sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123 and sk-ant-api03-abcdefghijklmnopqrstuv.
            Left alone: sk-learn, task-1234567890abcdefghijklmno, the Bearer of bad news, Bearer tokens, \
            mask-AbCdEfGhIjKlMnOpQrStUvWx, tok (too short to be a secret), "sk-" at the end sk-
            """
        let out = r.redact(text)
        #expect(!out.contains("hunter2-backend-key"))
        #expect(!out.contains("abc123def456ghi"))
        #expect(!out.contains("AbCdEfGhIjKlMnOpQrStUvWx0123"))
        #expect(!out.contains("api03-abcdefghijklmnopqrstuv"))
        #expect(out.contains("key [redacted], header Authorization: Bearer [redacted], openai sk-[redacted] and sk-[redacted]."), "\(out)")
        for kept in ["sk-learn", "task-1234567890abcdefghijklmno", "the Bearer of bad news", "Bearer tokens", "mask-AbCdEfGhIjKlMnOpQrStUvWx",
                     "tok (too short", "at the end sk-"] {
            #expect(out.contains(kept), "\(kept) was changed: \(out)")
        }
        // A 24-character token without a digit is still a token; a text without any is returned as is.
        #expect(r.redact("Bearer abcdefghijklmnopqrstuvwxyz") == "Bearer [redacted]")
        #expect(r.redact("plain text, nothing to see") == "plain text, nothing to see")
        #expect(r.redact("ünïcödé sk-ÄÖÜ \u{0}Bearer 12345678") == "ünïcödé sk-ÄÖÜ \u{0}Bearer [redacted]")
    }

    // MARK: - Entries from a peer

    @Test func hostileEntriesAreClampedRedactedOrDropped() throws {
        let r = SecretRedactor(secrets: ["the-http-token-0123"])
        let now = 1_800_000_000.0
        #expect(TranscriptEntry(seq: -1, at: now, event: .note("x")).checked(redactor: r, now: now) == nil)
        #expect(TranscriptEntry(seq: TranscriptLimits.maxEntries, at: now, event: .note("x")).checked(redactor: r, now: now) == nil)
        let reply = ModelReply(text: "uses the-http-token-0123", tokensIn: -5, tokensOut: Int.max, seconds: .nan, firstTokenSeconds: -.infinity,
                               finishReason: String(repeating: "x", count: 10_000), error: nil, omitted: -3)
        let c = try #require(TranscriptEntry(seq: 3, at: .infinity, event: .reply(call: -2, reply)).checked(redactor: r, now: now))
        #expect(c.at == now)
        guard case .reply(let call, let m) = c.event else { Issue.record("\(c)"); return }
        #expect(call == 0 && m.tokensIn == 0 && m.tokensOut == 1 << 40 && m.seconds == 0 && m.firstTokenSeconds == 0 && m.omitted == 0)
        #expect(m.text == "uses [redacted]" && (m.finishReason?.count ?? 0) == 200)
        let action = ActionRecord(kind: "sh", label: "```sh (block 1)", status: "exit 1", exitCode: 99_999, seconds: 1e300, input: "echo sk-abcdefghijklmnopqrstuvwxyz",
                                  output: "", omitted: 0)
        guard case .action(let a) = try #require(TranscriptEntry(seq: 0, at: now, event: .action(action)).checked(redactor: r, now: now)).event else {
            Issue.record("not an action")
            return
        }
        #expect(a.exitCode == 255 && a.seconds == Limits.maxSeconds && a.input == "echo sk-[redacted]")
    }

    @Test func transcriptsTravelInTheWireFormat() throws {
        let entries = [
            TranscriptEntry(seq: 0, at: 1.5, event: .message(index: 0, role: "system", content: "be brief\u{0}\u{1B}[31m", omitted: 0)),
            TranscriptEntry(seq: 1, at: 2, event: .request(call: 1, role: "agent", messages: [0], maxTokens: nil)),
            TranscriptEntry(seq: 2, at: 3, event: .reply(call: 1, ModelReply(text: "ok", tokensIn: 3, tokensOut: 1, seconds: 0.5, finishReason: "stop"))),
            TranscriptEntry(seq: 3, at: 4, event: .verifier(VerifierRecord(passed: false, summary: "exit 1", seconds: 0.1, output: "AssertionError"))),
        ]
        let codec = WireCodec()
        let id = AttemptID(job: "j-1", subtask: "a[0]", n: 2)
        guard case .transcript(let back, let decoded) = try codec.decode(WorkerMessage.self, from: codec.encode(WorkerMessage.transcript(id: id, entries: entries))) else {
            Issue.record("not a transcript")
            return
        }
        #expect(back == id && decoded == entries)
    }

    // MARK: - The store

    func endedJob(_ store: Store, _ id: String, endedAt: Double, state: JobState = .failed) throws {
        var j = JobRecord(id: id, workflowName: "w", yaml: "", file: "w.yaml", state: state, reason: "", planner: "seq:1", seed: 1, priority: 0,
                          limitTokens: nil, limitUSD: nil, spentTokens: 0, spentUSD: .zero, submittedAt: WallInstant(secondsSince1970: endedAt - 10), deadline: WallInstant(secondsSince1970: endedAt + 100),
                          startedAt: WallInstant(secondsSince1970: endedAt - 10), endedAt: state.isTerminal ? WallInstant(secondsSince1970: endedAt) : nil, minSuccess: nil)
        j.tenant = "default"
        try store.save(j)
    }

    func notes(_ count: Int, bytes: Int, from: Int = 0) -> [TranscriptEntry] {
        (from..<(from + count)).map { TranscriptEntry(seq: $0, at: Double($0), event: .note(String(repeating: "n", count: bytes - TranscriptEntry.overhead))) }
    }

    @Test func eachEntryIsStoredOnceWithinTheAttemptsCap() throws {
        let store = try Store(path: ":memory:")
        try endedJob(store, "j-a", endedAt: 100, state: .running)
        let id = AttemptID(job: "j-a", subtask: "s", n: 1)
        let limits = TranscriptLimits(perAttempt: 1000, total: 1 << 20)
        try store.begin()
        try store.appendTranscript(id, notes(3, bytes: 100), limits: limits, at: 1)
        // Sent again after a reconnect, with one more: stored once.
        try store.appendTranscript(id, notes(4, bytes: 100), limits: limits, at: 2)
        try store.commit()
        var t = try #require(try store.transcript(of: id))
        #expect(t.entries.map(\.seq) == [0, 1, 2, 3] && t.bytes == 400 && t.refused == 0)
        #expect(try store.transcriptTotal() == 400)
        // The stored cap is the text cap plus the listing allowance; past it, entries are refused and counted.
        let big = TranscriptEntry(seq: 4, at: 5, event: .note(String(repeating: "x", count: limits.storedCap)))
        try store.appendTranscript(id, [big] + notes(2, bytes: 100, from: 5), limits: limits, at: 3)
        t = try #require(try store.transcript(of: id))
        #expect(t.entries.map(\.seq) == [0, 1, 2, 3, 5, 6] && t.refused == 1)
        #expect(try store.transcript(of: AttemptID(job: "j-a", subtask: "s", n: 2)) == nil, "each attempt number has its own")
    }

    @Test func theJobsThatEndedFirstArePrunedUnderTheTotalCapNeverRunningOnes() throws {
        let store = try Store(path: ":memory:")
        let limits = TranscriptLimits(perAttempt: 600_000, total: 1 << 20)
        try endedJob(store, "j-old", endedAt: 100)
        try endedJob(store, "j-mid", endedAt: 200, state: .succeeded)
        try endedJob(store, "j-run", endedAt: 300, state: .running)
        try endedJob(store, "j-new", endedAt: 400, state: .cancelled)
        for job in ["j-old", "j-mid", "j-run"] {
            try store.appendTranscript(AttemptID(job: job, subtask: "s", n: 1), notes(30, bytes: 10_000), limits: limits, at: 1)
        }
        #expect(try store.transcriptTotal() == 900_000)
        // 300 KB more passes the 1 MiB cap: j-old goes (that brings it under 90%), j-mid and j-run stay.
        try store.appendTranscript(AttemptID(job: "j-new", subtask: "s", n: 1), notes(30, bytes: 10_000), limits: limits, at: 500)
        let old = try #require(try store.transcript(of: AttemptID(job: "j-old", subtask: "s", n: 1)))
        #expect(old.entries.isEmpty && old.pruned?.entries == 30 && old.pruned?.bytes == 300_000 && old.pruned?.at == 500)
        #expect(old.pruned?.reason.contains("coordinator.transcripts.total (1048576 bytes)") == true, "\(String(describing: old.pruned))")
        #expect(try store.transcript(of: AttemptID(job: "j-mid", subtask: "s", n: 1))?.entries.count == 30)
        #expect(try store.transcript(of: AttemptID(job: "j-run", subtask: "s", n: 1))?.entries.count == 30)
        #expect(try store.transcript(of: AttemptID(job: "j-new", subtask: "s", n: 1))?.entries.count == 30)
        #expect(try store.transcriptTotal() == 900_000)
        // Late entries of a pruned job are not stored again.
        try store.appendTranscript(AttemptID(job: "j-old", subtask: "s", n: 1), notes(1, bytes: 100, from: 30), limits: limits, at: 600)
        #expect(try store.transcript(of: AttemptID(job: "j-old", subtask: "s", n: 1))?.entries.isEmpty == true)
        // When running jobs alone fill the cap, new entries are refused, not stored past it.
        try endedJob(store, "j-run2", endedAt: 700, state: .running)
        try endedJob(store, "j-new", endedAt: 400, state: .running)
        try store.appendTranscript(AttemptID(job: "j-run2", subtask: "s", n: 1), notes(50, bytes: 10_000), limits: limits, at: 800)
        let run2 = try #require(try store.transcript(of: AttemptID(job: "j-run2", subtask: "s", n: 1)))
        #expect(run2.refused > 0 && run2.pruned == nil)
        #expect(try store.transcriptTotal() <= limits.total)
    }

    @Test func aReportJoinsRepliesToTheirCallsAndCountsWhatIsMissing() {
        let info = AttemptInfo(id: "j/a#1", job: "j", subtask: "a", n: 1, model: "m", worker: "w", state: "lost", tokenCap: 100, tokens: 0, tokensIn: 0,
                               tokensOut: 0, usd: 0, reservedTokens: 0, reservedUSD: 0, createdAt: "", dispatchedAt: nil, endedAt: nil, detail: "lost: worker died")
        let entries = [
            TranscriptEntry(seq: 0, at: 1, event: .message(index: 0, role: "user", content: "task", omitted: 0)),
            TranscriptEntry(seq: 1, at: 1, event: .request(call: 1, role: "agent", messages: [0], maxTokens: 50)),
            TranscriptEntry(seq: 2, at: 2, event: .reply(call: 1, ModelReply(text: "```python\nx\n```", tokensIn: 5, tokensOut: 4, seconds: 1))),
            TranscriptEntry(seq: 5, at: 3, event: .request(call: 2, role: "corrector", messages: [0], maxTokens: nil)),
        ]
        let t = TranscriptReport(attempt: info, entries: entries, bytes: 10, refused: 0, note: nil)
        #expect(t.events.map(\.type) == ["call", "call"])
        #expect(t.events[0].reply?.text == "```python\nx\n```" && t.events[1].reply == nil && t.events[1].role == "corrector")
        #expect(t.missing == 2 && !t.complete && t.messages.map(\.content) == ["task"])
    }

    // MARK: - The core

    @Test func theCoreTakesAnAttemptsTranscriptFromItsWorkerOnlyAndAfterItEnded() throws {
        let h = try CoreHarness()
        try h.register("w0#1")
        try h.register("rogue#1")
        _ = try #require(CoreHarness.submitted(try h.submit(oneTask)))
        let d = try #require(CoreHarness.dispatches(h.sent).first)
        #expect(d.spec.transcriptBytes == TranscriptLimits.defaultPerAttempt)
        let owner = Data(d.to.utf8)
        let rogue = Data((d.to == "w0#1" ? "rogue#1" : "w0#1").utf8)
        try h.iterate([.worker(.transcript(id: d.spec.id, entries: [TranscriptEntry(seq: 0, at: 1, event: .note("forged"))]), from: rogue)])
        #expect(try h.store.transcript(of: d.spec.id) == nil)
        try h.iterate([.worker(.transcript(id: d.spec.id, entries: [TranscriptEntry(seq: 0, at: 1, event: .note("first"))]), from: owner)])
        let result = AttemptReport(id: d.spec.id, outcome: AttemptOutcome(end: .failed, usage: [TokenUsage(role: .agent, input: 5, output: 5)]))
        try h.iterate([.worker(.result(result), from: owner)])
        // Re-sent after a welcome, with what was in flight: still its worker's, after the end.
        try h.iterate([.worker(.transcript(id: d.spec.id, entries: [TranscriptEntry(seq: 0, at: 1, event: .note("first")),
                                                                   TranscriptEntry(seq: 1, at: 2, event: .note("attempt ended failed: x"))]), from: owner)])
        try h.iterate([.worker(.transcript(id: d.spec.id, entries: [TranscriptEntry(seq: 2, at: 3, event: .note("forged late"))]), from: rogue)])
        let t = try #require(try h.store.transcript(of: d.spec.id))
        #expect(t.entries.map(\.event) == [.note("first"), .note("attempt ended failed: x")])
        // An attempt id no one was dispatched is nobody's.
        let unknown = AttemptID(job: d.spec.id.job, subtask: "a", n: 99)
        try h.iterate([.worker(.transcript(id: unknown, entries: [TranscriptEntry(seq: 0, at: 1, event: .note("x"))]), from: owner)])
        #expect(try h.store.transcript(of: unknown) == nil)
    }
}
