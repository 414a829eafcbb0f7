import AgentFlowCore
import Foundation
import LLM
import Synchronization
import Testing

@testable import Scaffold

/// What the scaffold records of an attempt: every model call (role, messages, reply, tokens,
/// times, finish reason), every action and verifier run, in order, redacted, within its cap.
@Suite struct TranscriptRecorderTests {
    final class Collected: Sendable {
        let entries = Mutex<[TranscriptEntry]>([])
        func add(_ e: [TranscriptEntry]) { entries.withLock { $0 += e } }
        var all: [TranscriptEntry] { entries.withLock { $0 } }
    }

    func calls(_ entries: [TranscriptEntry]) -> [(role: String, messages: [Int])] {
        entries.compactMap { if case .request(_, let role, let m, _) = $0.event { return (role, m) } else { return nil } }
    }

    func replies(_ entries: [TranscriptEntry]) -> [ModelReply] {
        entries.compactMap { if case .reply(_, let r) = $0.event { return r } else { return nil } }
    }

    @Test func aFailedAttemptRecordsEveryCallActionAndCheckInOrder() throws {
        let model = ScriptedModel(agent: [crashing, wrong], corrector: [wrong])
        let collected = Collected()
        var s = spec(options: ScaffoldOptions(summarizer: false, corrector: true, maxTurns: 2))
        s.transcriptBytes = 1 << 20
        let outcome = backend(model).run(s, transcript: collected.add)
        #expect(outcome.end == .failed, "\(outcome.detail)")
        let entries = collected.all
        #expect(entries.map(\.seq) == Array(0..<entries.count), "numbered from 0 without gaps")
        // One request per model call, in the order the model saw them, with what it charged.
        #expect(calls(entries).map(\.role) == model.calls.map(\.role.rawValue))
        #expect(replies(entries).map { $0.tokensIn + $0.tokensOut } == model.calls.map(\.charged.total))
        #expect(replies(entries).map(\.text).contains(crashing))
        // Each message is recorded once: the second agent call names the task message of the first.
        let messages = entries.compactMap { if case .message(let i, let role, let content, _) = $0.event { return (i, role, content) } else { return nil } }
        #expect(Set(messages.map(\.0)).count == messages.count)
        let agentCalls = calls(entries).filter { $0.role == "agent" }
        #expect(agentCalls.count == 2 && agentCalls[1].messages.contains(agentCalls[0].messages.last!))
        let task = try #require(messages.first { $0.2.contains("Write add(a, b)") })
        #expect(task.1 == "user")
        // Each module run with its code and exit status, and each verifier run with its output:
        // the agent's crash, then the corrector's and the agent's wrong answers.
        let runs = entries.compactMap { if case .action(let a) = $0.event { return a } else { return nil } }
        #expect(runs.map(\.kind) == ["solution", "solution", "solution"] && runs.allSatisfy { $0.exitCode == 0 }, "\(runs)")
        #expect(runs.map(\.input) == ["def add(a, b):\n    return a + c\n", "def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a - b\n"])
        let checks = entries.compactMap { if case .verifier(let v) = $0.event { return v } else { return nil } }
        #expect(checks.count == 3 && checks.allSatisfy { !$0.passed && $0.summary == "exit code 1" }, "\(checks)")
        #expect(checks[0].output.contains("NameError: name 'c' is not defined") && checks[1].output.contains("AssertionError"))
        guard case .note(let last) = entries.last?.event else { Issue.record("no closing note"); return }
        #expect(last.hasPrefix("attempt ended failed: no verified solution in 2 turn(s)"), "\(last)")
    }

    @Test func agentWorkRecordsEachBlockWithItsObservation() throws {
        // One block a turn: the stream stops at the first complete block.
        let model = ScriptedModel(agent: ["```sh\necho hello from sh\nexit 3\n```", "```file:notes/a.txt\nsome text\n```",
                                          "```file:../escape.txt\nno\n```", "```answer\nForty-two.\n```"])
        let collected = Collected()
        var s = workSpec("Answer.", kind: .answer, actions: [.python, .shell])
        s.transcriptBytes = 1 << 20
        let outcome = backend(model).run(s, transcript: collected.add)
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let actions = collected.all.compactMap { if case .action(let a) = $0.event { return a } else { return nil } }
        #expect(actions.map(\.kind) == ["sh", "file", "file", "answer"], "\(actions)")
        #expect(actions[0].exitCode == 3 && actions[0].output.contains("hello from sh") && actions[0].input.hasPrefix("echo hello"))
        #expect(actions[1].status.hasPrefix("wrote notes/a.txt") && actions[1].input.hasPrefix("some text"))
        #expect(actions[2].status.hasPrefix("refused"), "\(actions[2])")
        #expect(actions[3].status.hasPrefix("saved as answer.md") && actions[3].input.contains("Forty-two."))
    }

    @Test func pastTheCapTextsAreLeftOutButCallsAreStillListed() throws {
        let model = ScriptedModel(agent: [crashing, crashing, crashing, wrong])
        let collected = Collected()
        var s = spec(options: ScaffoldOptions(summarizer: false, corrector: false, maxTurns: 4))
        s.transcriptBytes = 2000
        _ = backend(model).run(s, transcript: collected.add)
        let entries = collected.all
        let texts = entries.reduce(0) { $0 + $1.bytes - TranscriptEntry.overhead }
        #expect(texts <= 2000 + 8 * 64, "texts within the cap (requests count 8 bytes per message index): \(texts)")
        #expect(entries.contains { if case .note(let n) = $0.event { return n.contains("reached its cap of 2000 bytes") } else { return false } })
        // Every call is still there with its tokens, the late ones without their text.
        #expect(calls(entries).count == model.calls.count && model.calls.count == 4)
        let late = replies(entries).last!
        #expect(late.text.isEmpty && late.omitted > 0 && late.tokensOut == model.calls.last!.charged.completionTokens)
        guard case .note(let last) = entries.last?.event else { Issue.record("no closing note"); return }
        #expect(last.hasPrefix("attempt ended failed"))
    }

    /// Transcripts off (`perAttempt: 0`) but traces on: the worker's spans are made from the
    /// entries, so every call, action and check is still recorded, with no text at all.
    @Test func withTracesOnAndNoTranscriptTheCallsAreListedWithoutText() throws {
        let model = ScriptedModel(agent: [crashing, wrong])
        let collected = Collected()
        var s = spec(options: ScaffoldOptions(summarizer: false, corrector: false, maxTurns: 2))
        s.transcriptBytes = 0
        _ = backend(model).run(s, transcript: collected.add)
        #expect(collected.all.isEmpty, "no trace context: nothing recorded")
        s.trace = TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", priceInput: 1, priceOutput: 2)
        let traced = Collected()
        _ = backend(ScriptedModel(agent: [crashing, wrong])).run(s, transcript: traced.add)
        let entries = traced.all
        #expect(calls(entries).count == 2 && replies(entries).allSatisfy { $0.text.isEmpty && $0.tokensIn > 0 })
        #expect(entries.contains { if case .verifier = $0.event { return true } else { return false } })
        #expect(entries.allSatisfy { e in
            switch e.event {
            case .message(_, _, let content, _): return content.isEmpty
            case .action(let a): return a.input.isEmpty && a.output.isEmpty
            case .verifier(let v): return v.output.isEmpty
            default: return true
            }
        })
    }

    @Test func secretsAreTakenOutBeforeAnEntryLeavesTheRecorder() {
        let collected = Collected()
        let key = "backend-key-\(UUID().uuidString)"
        let recorder = TranscriptRecorder(cap: 1 << 20, redact: { $0.replacingOccurrences(of: key, with: "[redacted]") }, sink: collected.add)
        let call = recorder.request(.agent, [.user("use \(key) and Bearer abcdef123456 and sk-learn")], maxTokens: nil)
        recorder.reply(call, text: "ok sk-abcdefghijklmnopqrstuvwx1234 \(key)", usage: ChatUsage(promptTokens: 3, completionTokens: 2), seconds: 0.1,
                       firstToken: nil, finish: "stop")
        recorder.action(kind: "sh", label: "```sh (block 1)", status: "exit code 0", input: "curl -H 'Authorization: Bearer \(key)'", output: key)
        let text = "\(collected.all)"
        #expect(!text.contains(key) && !text.contains("abcdef123456") && !text.contains("abcdefghijklmnopqrstuvwx1234"), "\(text)")
        #expect(text.contains("sk-learn") && text.contains("Bearer [redacted]") && text.contains("sk-[redacted]"))
    }

    @Test func aFloodOfEntriesEndsInOneNote() {
        let collected = Collected()
        let recorder = TranscriptRecorder(cap: 64 << 20, sink: collected.add)
        for i in 0..<(TranscriptLimits.maxEntries + 500) { recorder.note("n\(i)") }
        let entries = collected.all
        #expect(entries.count == TranscriptLimits.maxEntries)
        guard case .note(let last) = entries.last?.event else { Issue.record("no closing note"); return }
        #expect(last.contains("at most \(TranscriptLimits.maxEntries) entries"))
        // Off: nothing at all.
        let off = Collected()
        let none = TranscriptRecorder(cap: 0, sink: off.add)
        _ = none.request(.agent, [.user("x")], maxTokens: 1)
        none.note("x")
        #expect(off.all.isEmpty)
    }

    @Test func theCalibrationCallIsCallZeroWithItsTokensAndTheTurnsKeepTheirNumbers() {
        let collected = Collected()
        let r = TranscriptRecorder(cap: 1 << 20, time: ManualTime(100), sink: collected.add)
        r.calibration(.agent, usage: ChatUsage(promptTokens: 233, completionTokens: 1), seconds: 0.04)
        let first = r.request(.agent, [.user("task")], maxTokens: 50)
        #expect(first == 1)
        let entries = collected.all
        let numbered = entries.compactMap { e -> Int? in if case .request(let c, _, _, _) = e.event { return c } else { return nil } }
        #expect(numbered == [0, 1])
        let calibration = replies(entries).first
        #expect(calibration?.finishReason == ModelReply.calibration && calibration?.tokensIn == 233 && calibration?.tokensOut == 1
                && calibration?.seconds == 0.04 && calibration?.text == "")
        #expect(entries.contains { if case .note(let t) = $0.event { return t.hasPrefix("234 tokens charged to the agent") } else { return false } })
        // Nothing when transcripts are off.
        let off = Collected()
        TranscriptRecorder(cap: 0, sink: off.add).calibration(.agent, usage: ChatUsage(promptTokens: 1, completionTokens: 1), seconds: 0)
        #expect(off.all.isEmpty)
    }
}
