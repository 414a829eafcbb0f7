import AgentFlowCore
import Foundation
import LLM
import Synchronization
import Testing

@testable import Scaffold

/// A model whose replies are scripted per role. It charges like a server that honours
/// `max_tokens`: prompt = bytes / 4 + 4 per message, completion = words (cut to what the
/// allowance leaves), and refuses a call whose prompt does not fit — as ``ChatClient`` does.
final class ScriptedModel: ChatModel {
    struct Call: Sendable {
        var role: Role
        var messages: [ChatMessage]
        var allowance: Int
        var charged: ChatUsage
        var responseFormat: ResponseFormat? = nil
    }

    private struct State {
        var replies: [Role: [String]]
        var calls: [Call] = []
    }

    private let state: Mutex<State>

    init(agent: [String], corrector: [String] = [], summarizer: [String] = [], judge: [String] = []) {
        state = Mutex(State(replies: [.agent: agent, .corrector: corrector, .summarizer: summarizer, .judge: judge]))
    }

    var calls: [Call] { state.withLock { $0.calls } }

    static func role(of messages: [ChatMessage]) -> Role {
        let system = messages.first?.content ?? ""
        if system == Prompts.correctorSystem || system.hasPrefix("You fix an agent's failed step") { return .corrector }
        if system == Prompts.summarizerSystem { return .summarizer }
        if system == KindPrompts.judgeSystem { return .judge }
        return .agent
    }

    func complete(
        _ request: ChatRequest, allowance: Int, deadline: MonotonicInstant?, cancel: CancellationFlag?,
        onProgress: ((ChatProgress) -> Void)?
    ) throws(LLMError) -> ChatCompletion {
        let role = Self.role(of: request.messages)
        let prompt = request.messages.reduce(0) { $0 + $1.content.utf8.count / 4 + 4 }
        if cancel?.isCancelled == true { throw LLMError(.cancelled, "cancelled") }
        guard allowance - prompt >= 8 else { throw LLMError(.budgetExhausted, "no room") }
        let reply: String = state.withLock { s in
            let next = s.replies[role]?.first ?? "I am not sure."
            if (s.replies[role]?.count ?? 0) > 1 { s.replies[role]?.removeFirst() }
            return next
        }
        var room = allowance - prompt
        if let limit = request.maxCompletionTokens { room = min(room, limit) }
        // Streams one word (one token) at a time and stops when the flag is raised, like the client.
        let words = reply.split(separator: " ", omittingEmptySubsequences: false).prefix(room)
        var text = ""
        var sent = 0
        for word in words {
            let delta = sent == 0 ? String(word) : " " + word
            text += delta
            sent += 1
            onProgress?(ChatProgress(delta: delta, completionTokens: sent, tokensSoFar: prompt + sent))
            if cancel?.isCancelled == true && sent < words.count {
                let spent = ChatUsage(promptTokens: prompt, completionTokens: sent)
                state.withLock { $0.calls.append(Call(role: role, messages: request.messages, allowance: allowance, charged: spent, responseFormat: request.responseFormat)) }
                throw LLMError(.cancelled, "cancelled mid-stream", spent: spent, partialText: text)
            }
        }
        let usage = ChatUsage(promptTokens: prompt, completionTokens: sent)
        state.withLock { $0.calls.append(Call(role: role, messages: request.messages, allowance: allowance, charged: usage, responseFormat: request.responseFormat)) }
        return ChatCompletion(text: text, usage: usage, usageSource: .server, finishReason: "stop", tries: 1)
    }
}

/// Collects what a backend reports.
final class RecordingEvents: AttemptEvents {
    private let state = Mutex<(progress: [Int], outcomes: [AttemptOutcome])>(([], []))
    private let finished = DispatchSemaphore(value: 0)

    func progress(_ id: AttemptID, tokens: Int) { state.withLock { $0.progress.append(tokens) } }

    func finish(_ id: AttemptID, _ outcome: AttemptOutcome, after seconds: Double) {
        state.withLock { $0.outcomes.append(outcome) }
        finished.signal()
    }

    func wait(seconds: Double = 30) -> AttemptOutcome? {
        guard finished.wait(timeout: .now() + seconds) == .success else { return nil }
        return state.withLock { $0.outcomes.first }
    }

    var progress: [Int] { state.withLock { $0.progress } }
    var finishCount: Int { state.withLock { $0.outcomes.count } }
}

func spec(
    _ prompt: String = "Write add(a, b) returning a + b.",
    verify: Verifier? = .python("from solution import add\nassert add(2, 3) == 5\n"),
    cap: Int = 4000, deadline: Double = 60, options: ScaffoldOptions = .full, inputs: [String: String] = [:]
) -> AttemptSpec {
    var s = AttemptSpec(
        id: AttemptID(job: "job", subtask: "add", n: Int.random(in: 0..<1_000_000)), model: "scripted", prompt: prompt,
        verify: verify, inputs: inputs, tokenCap: cap, ttl: .seconds(deadline),
        scaffold: options, simulated: nil, seed: 1)
    s.arrived(at: SystemTime().instant)
    return s
}

func backend(_ model: ScriptedModel, _ configure: (inout ScaffoldConfiguration) -> Void = { _ in }) -> ScaffoldBackend {
    var configuration = ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wall: .seconds(5)))
    configure(&configuration)
    return ScaffoldBackend(chat: model, model: "scripted", configuration: configuration)
}

let good = "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```"
let crashing = "```python\ndef add(a, b):\n    return a + c\n```"
let wrong = "```python\ndef add(a, b):\n    return a - b\n```"

@Suite struct ScaffoldLoopTests {
    @Test func succeedsOnTheFirstTurnAndReportsPerRoleUsage() throws {
        let model = ScriptedModel(agent: [good])
        let outcome = backend(model).run(spec())
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.output == "def add(a, b):\n    return a + b\n")
        #expect(outcome.usage.map(\.role) == [.agent])
        #expect(outcome.totalTokens == model.calls.reduce(0) { $0 + $1.charged.total })
        // The first prompt: the instructions, one worked example, the budget tracker as a system
        // message of its own, then the task.
        let messages = model.calls[0].messages
        #expect(messages[0] == .system(Prompts.agentSystem))
        #expect(Array(messages[1...2]) == Prompts.example)
        #expect(messages[3].role == .system)
        #expect(messages[3].content.hasPrefix("[budget] 4000 tokens and") && messages[3].content.hasSuffix("turn 1 of \(ScaffoldOptions.full.maxTurns)."))
        #expect(messages[4].content.contains("Write add(a, b)"))
        #expect(messages.count == 5)
    }

    @Test func theCorrectorFiresOnAnErrorAndItsPatchIsExecuted() throws {
        let model = ScriptedModel(agent: [crashing], corrector: [good])
        let outcome = backend(model).run(spec())
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.detail.contains("corrector's patch"))
        #expect(Set(outcome.usage.map(\.role)) == [.agent, .corrector])
        let correction = try #require(model.calls.first { $0.role == .corrector })
        // No conversation history: its own system prompt and one user message with task, code, output.
        #expect(correction.messages.count == 2)
        #expect(correction.messages[1].content.contains("return a + c"))
        #expect(correction.messages[1].content.contains("NameError"))
        #expect(correction.messages[1].content.contains("File \"solution.py\", line 2"), "paths relative to the workspace")
        #expect(!correction.messages.contains { $0.content.hasPrefix(Prompts.agentSystem) })
    }

    @Test func withoutTheCorrectorTheAgentSeesTheErrorNextTurn() throws {
        let model = ScriptedModel(agent: [crashing, good])
        let outcome = backend(model).run(spec(options: .agentOnly))
        #expect(outcome.end == .succeeded)
        #expect(outcome.detail.contains("turn 2"))
        #expect(model.calls.allSatisfy { $0.role == .agent })
        let second = model.calls[1].messages
        #expect(second.last?.content.contains("NameError") == true)
        // The tracker is refreshed, just before the observation: tokens spent on turn 1 are gone from it.
        let tracker = second[second.count - 2]
        #expect(tracker.role == .system && tracker.content.contains("turn 2 of"))
        #expect(!tracker.content.contains("[budget] 4000 tokens"))
        // Everything the first call sent comes first, byte for byte (prefix caches reuse it).
        #expect(Array(second.prefix(model.calls[0].messages.count)) == model.calls[0].messages)
    }

    @Test func theCorrectorFiresAfterTwoTurnsWithoutCode() throws {
        let model = ScriptedModel(agent: ["Let me think.", "Still thinking about it."], corrector: [good])
        let outcome = backend(model).run(spec())
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(model.calls.map(\.role) == [.agent, .agent, .corrector])
    }

    @Test func aRepeatedFailingCodeIsFlaggedToTheCorrector() throws {
        let model = ScriptedModel(agent: [wrong], corrector: [wrong])
        let outcome = backend(model).run(spec(options: ScaffoldOptions(summarizer: false, corrector: true, maxTurns: 2)))
        #expect(outcome.end == .failed)
        // The note says how the code failed last, for the job's report.
        #expect(outcome.detail.hasSuffix("last run: AssertionError"), "\(outcome.detail)")
        let corrections = model.calls.filter { $0.role == .corrector }
        #expect(corrections.count == 2)
        #expect(corrections[1].messages[1].content.contains("already failed"))
    }

    @Test func rawModeIsOneCallAndOneVerification() throws {
        let model = ScriptedModel(agent: [wrong, good])
        let outcome = backend(model).run(spec(options: .raw))
        #expect(outcome.end == .failed)
        #expect(model.calls.count == 1)
    }

    @Test func needsOutputsAreImportable() throws {
        let model = ScriptedModel(agent: ["```python\nfrom helpers import double\ndef add(a, b):\n    return double(a) // 2 + b\n```"])
        let outcome = backend(model).run(spec(inputs: ["helpers": "def double(x):\n    return 2 * x\n"]))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(model.calls[0].messages[4].content.contains("### helpers.py"))
    }

    @Test func theSummarizerKeepsArtifactsVerbatimWhateverItWrites() throws {
        let secret = "sk-live-9f8e7d6c5b4a39281706ABCDEF"
        let noisy = "```python\nprint('token=\(secret)')\nprint('user_id=48213 wrote report_2024.csv')\nraise SystemExit(1)\n```"
        let model = ScriptedModel(agent: [noisy, noisy, noisy, good], summarizer: ["The agent printed some things."])
        let outcome = backend(model) {
            $0.summarizeAfterMessages = 4
            $0.summarizeAboveTokens = 10
            $0.keepLast = 2
        }.run(spec(options: ScaffoldOptions(summarizer: true, corrector: false, maxTurns: 4)))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let summarizer = try #require(model.calls.first { $0.role == .summarizer })
        #expect(summarizer.messages[0].content.contains("VERBATIM"))
        // The agent call after the summary: task + summary, then only the last messages.
        let index = try #require(model.calls.firstIndex { $0.role == .summarizer })
        let after = model.calls[(index + 1)...].first { $0.role == .agent }!.messages
        let head = after[4].content
        #expect(head.contains("Summary of earlier turns:\nThe agent printed some things."))
        #expect(head.contains("token=\(secret)"))
        #expect(head.contains("user_id=48213"))
        #expect(head.contains("report_2024.csv"))
        #expect(head.contains("Repeated failed actions"))
        #expect(after.count == 5 + 3, "system, example, tracker, task+summary, and the last turn verbatim (reply, its tracker, observation)")
        #expect(after[5].role == .assistant)
        #expect(after[6].role == .system && after[6].content.hasPrefix("[budget] "))
        #expect(outcome.usage.contains { $0.role == .summarizer })
    }

    @Test(arguments: [300, 700, 1200])
    func theCapIsNeverExceeded(cap: Int) throws {
        let long = "```python\ndef add(a, b):\n    return a - b\n```\n" + String(repeating: "blah ", count: 400)
        let model = ScriptedModel(agent: [long], corrector: [long], summarizer: [long])
        let events = RecordingEvents()
        _ = backend(model) { $0.summarizeAboveTokens = 100 }
            .start(spec(cap: cap, options: ScaffoldOptions(summarizer: true, corrector: true, maxTurns: 20)), events: events)
        let outcome = try #require(events.wait())
        #expect(outcome.end == .capReached, "\(outcome.detail)")
        #expect(outcome.totalTokens <= cap)
        #expect(model.calls.reduce(0) { $0 + $1.charged.total } == outcome.totalTokens)
        #expect(events.progress.allSatisfy { $0 <= cap })
        #expect(events.progress == events.progress.sorted())
        Thread.sleep(forTimeInterval: 0.1)
        #expect(events.finishCount == 1)
    }

    @Test func theStreamStopsOnceTheReplyHoldsACompleteCodeBlock() throws {
        let rambling = good + "\nAnd now let me explain at length: " + String(repeating: "more ", count: 2000)
        let model = ScriptedModel(agent: [rambling])
        let outcome = backend(model).run(spec(cap: 3000))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let call = try #require(model.calls.first)
        // Stopped right after the closing fence, not at the cap.
        #expect(call.charged.completionTokens < 20)
        #expect(outcome.totalTokens == call.charged.total)
    }

    @Test func aReplyStuckInARepetitionLoopIsCutOff() throws {
        let looping = "```python\ndef add(a, b):\n    return a + b\n" + String(repeating: "    result = add(a, b) + add(b, a)\n", count: 500)
        let model = ScriptedModel(agent: [looping])
        let outcome = backend(model).run(spec(cap: 6000))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        let call = try #require(model.calls.first)
        #expect(call.charged.completionTokens < 80, "cut after the 5th repetition, not at the cap")
    }

    @Test func oneCallIsLimitedToMaxTokensPerCall() throws {
        let rambling = String(repeating: "word ", count: 3000)
        let model = ScriptedModel(agent: [rambling], corrector: [good])
        let outcome = backend(model) { $0.maxTokensPerCall = 100 }.run(spec(cap: 6000))
        #expect(outcome.end == .succeeded)
        #expect(model.calls.first?.charged.completionTokens == 100)
    }

    @Test func promptsAndRepliesFitTheContextWindow() throws {
        let bulky = "```python\ndef add(a, b):\n    return a - b\n```\n" + String(repeating: "padding ", count: 150)
        let model = ScriptedModel(agent: [bulky, bulky, bulky, bulky, good])
        let context = 1200
        let outcome = backend(model) { $0.contextTokens = context }.run(
            spec(cap: 20000, options: ScaffoldOptions(summarizer: false, corrector: false, maxTurns: 5)))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.detail.contains("dropped to fit the context"))
        let estimator = PromptTokenEstimator()
        for call in model.calls {
            #expect(estimator.estimate(call.messages) + call.charged.completionTokens <= context)
        }
    }

    @Test func codeFromACallThatUsedUpTheCapIsStillVerified() throws {
        let unterminated = "```python\ndef add(a, b):\n    return a + b\n" + String(repeating: "# more\n", count: 2000)
        let model = ScriptedModel(agent: [unterminated])
        let outcome = backend(model).run(spec(cap: 400))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.totalTokens == 400)
    }

    @Test func cancelStopsTheAttemptAndFinishesOnce() throws {
        let slowCode = "```python\nimport time\ntime.sleep(20)\ndef add(a, b):\n    return a + b\n```"
        let model = ScriptedModel(agent: [slowCode])
        let events = RecordingEvents()
        let b = backend(model) { $0.limits = SandboxLimits(wall: .seconds(30)) }
        let handle = b.start(spec(), events: events)
        Thread.sleep(forTimeInterval: 0.5)
        let start = Date()
        handle.cancel()
        let outcome = try #require(events.wait())
        #expect(outcome.end == .cancelled)
        #expect(Date().timeIntervalSince(start) < 10, "stopped by the cancel, not by the 20 s sleep")
        #expect(events.finishCount == 1)
    }

    @Test func theDeadlineStopsTheAttempt() throws {
        let slowCode = "```python\nimport time\ntime.sleep(20)\n```"
        let model = ScriptedModel(agent: [slowCode])
        let start = Date()
        let outcome = backend(model) { $0.limits = SandboxLimits(wall: .seconds(30)) }.run(spec(deadline: 1))
        #expect(outcome.end == .deadline)
        #expect(Date().timeIntervalSince(start) < 10, "stopped by the 1 s deadline, not by the 20 s sleep")
    }

    @Test func aShellVerifierRunsInTheWorkspace() throws {
        let model = ScriptedModel(agent: [good])
        let outcome = backend(model).run(spec(verify: .command("test -f solution.py && python3 -c 'import solution; assert solution.add(1, 1) == 2'")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
    }
}

@Suite struct ArtifactExtractorTests {
    @Test func findsTokensIdsUrlsFilesAndJSON() {
        let text = """
            Logged in. access_token: eyJhbGciOiJIUzI1NiJ9abc123
            GET https://api.example.com/v1/users/42?x=1 returned
            {"id": 42, "name": "Ada"}
            wrote out/results.json; request 123e4567-e89b-12d3-a456-426614174000
            """
        let found = ArtifactExtractor.extract(from: text)
        #expect(found.contains("access_token: eyJhbGciOiJIUzI1NiJ9abc123"))
        #expect(found.contains("https://api.example.com/v1/users/42?x=1"))
        #expect(found.contains("{\"id\": 42, \"name\": \"Ada\"}"))
        #expect(found.contains("out/results.json"))
        #expect(found.contains("123e4567-e89b-12d3-a456-426614174000"))
    }

    @Test func ignoresPlainProse() {
        #expect(ArtifactExtractor.extract(from: "The function returns the sum of two numbers.").isEmpty)
    }
}

@Suite struct SystemPromptTests {
    @Test func modelsWithoutASystemRoleGetTheInstructionsInTheFirstUserMessage() throws {
        let model = ScriptedModel(agent: [good])
        let b = ScaffoldBackend(
            chat: model, model: "gemma3-270m",
            configuration: ScaffoldConfiguration(workspaceRoot: testRoot(), limits: SandboxLimits(wall: .seconds(5))))
        let outcome = b.run(spec())
        #expect(outcome.end == .succeeded)
        let messages = try #require(model.calls.first?.messages)
        #expect(messages.first?.role == .user)
        // The instructions at the top of the worked example's task, the tracker at the top of the
        // task; user and assistant alternate.
        #expect(messages.first?.content == Prompts.agentSystem + "\n\n" + Prompts.example[0].content)
        #expect(messages.last?.content.hasPrefix("[budget] ") == true && messages.last?.content.contains("\n\nTask:\nWrite add(a, b)") == true)
        #expect(messages.map(\.role) == [.user, .assistant, .user])
    }
}

@Suite struct CalibrationFileTests {
    @Test func aSavedRatioIsFoundAgainByServerAndModel() throws {
        let url = testRoot().appendingPathComponent("calibration-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: url) }
        let file = CalibrationFile(url: url)
        #expect(file.ratio(baseURL: "http://a/v1", model: "m") == nil)
        file.save(0.41, baseURL: "http://a/v1", model: "m")
        file.save(0.37, baseURL: "http://b/v1", model: "m")
        #expect(file.ratio(baseURL: "http://a/v1", model: "m") == 0.41)
        #expect(file.ratio(baseURL: "http://b/v1", model: "m") == 0.37)
        #expect(file.ratio(baseURL: "http://a/v1", model: "other") == nil)
        // A learned estimator starts from it: no first-call guess of 0.5 tokens per byte.
        let learned = PromptTokenEstimator(learnedRatio: 0.41)
        let messages: [ChatMessage] = [.user(String(repeating: "a", count: 1000))]
        #expect(learned.hasLearned)
        #expect(learned.estimate(messages) < PromptTokenEstimator().estimate(messages))
    }
}
