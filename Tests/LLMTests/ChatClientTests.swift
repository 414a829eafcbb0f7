import AgentFlowCore
import Foundation
import TestSupport
import Testing

@testable import LLM

/// The client against the scripted server of `tools/fake_openai_server.py`.
@Suite struct ChatClientTests {
    let server = FakeServer.shared

    func client(retries: Int = 3, stall: Double = 30, firstByte: Double = 30, requireUsage: Bool = true) -> ChatClient {
        ChatClient(.init(
            baseURL: server.baseURL, connectTimeout: .seconds(2), requestTimeout: .seconds(60), stallTimeout: .seconds(stall),
            firstByteTimeout: .seconds(firstByte), maxRetries: retries, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(1_500),
            requireServerUsage: requireUsage))
    }

    /// A model string that is unique to one test run, so the server's try counters start at 0.
    func unique(_ prefix: String) -> String { "\(prefix):\(UUID().uuidString)" }

    func now() -> Double { Date().timeIntervalSince1970 }

    @Test func streamsTextAndTakesUsageFromTheServer() throws {
        var deltas: [String] = []
        var lastProgress: ChatProgress?
        let reply = try client().complete(
            ChatRequest(model: "echo", messages: [.system("be brief"), .user("one two three")]), allowance: 500
        ) { progress in
            deltas.append(progress.delta)
            lastProgress = progress
        }
        #expect(reply.text == "echo: one two three")
        #expect(deltas.joined() == reply.text)
        #expect(reply.usageSource == .server)
        // The fake server counts len(content)/4 + 4 per message + 3.
        #expect(reply.usage == ChatUsage(promptTokens: 2 + 4 + 3 + 4 + 3, completionTokens: 4))
        #expect(reply.finishReason == "stop")
        #expect(lastProgress?.completionTokens == 4)
        #expect(reply.tries == 1)
    }

    @Test func requestsUsageAndDerivesMaxTokensFromTheAllowance() throws {
        let messages: [ChatMessage] = [.user("inspect")]
        let estimate = PromptTokenEstimator().estimate(messages)
        let reply = try client().complete(ChatRequest(model: "inspect", messages: messages), allowance: 200)
        #expect(reply.text == "max_tokens=\(200 - estimate) include_usage=True stream=True")
        #expect(reply.usage.total <= 200)
    }

    @Test func maxTokensNeverLetsTheCallExceedItsAllowance() throws {
        let words = (1...300).map { "w\($0)" }.joined(separator: " ")
        let allowance = 900  // the prompt is about 750 tokens by the first estimate
        let reply = try client().complete(ChatRequest(model: "echo", messages: [.user(words)]), allowance: allowance)
        #expect(reply.finishReason == "length")
        #expect(reply.usage.total <= allowance)
        #expect(reply.usage.completionTokens > 0)
    }

    @Test func refusesACallThatCannotFitAMinimalCompletion() {
        let long = String(repeating: "x", count: 2000)  // about 1000 tokens by the first estimate
        #expect {
            _ = try client().complete(ChatRequest(model: "echo", messages: [.user(long)]), allowance: 500)
        } throws: { error in
            (error as? LLMError)?.code == .budgetExhausted && (error as? LLMError)?.spent == .zero
        }
    }

    @Test(arguments: [400, 401, 404, 422])
    func clientErrorsAreTypedAndNotRetried(status: Int) throws {
        let start = now()
        do {
            _ = try client().complete(ChatRequest(model: "status:\(status)", messages: [.user("hi")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .client(status: status))
            #expect(error.message.contains("scripted status \(status)"))
            #expect(error.spent == .zero)
        }
        #expect(now() - start < 1, "a 4xx must not be retried with backoff")
    }

    @Test(arguments: [503, 500, 429])
    func retriesServerErrorsThenSucceeds(status: Int) throws {
        let reply = try client().complete(
            ChatRequest(model: "flaky:2:\(status):\(UUID().uuidString)", messages: [.user("again")]), allowance: 300)
        #expect(reply.text == "echo: again")
        #expect(reply.tries == 3)
    }

    @Test func honoursRetryAfterOn429() throws {
        let start = now()
        let reply = try client().complete(
            ChatRequest(model: unique("flaky:1:429"), messages: [.user("x")]), allowance: 300)
        #expect(reply.tries == 2)
        #expect(now() - start >= 0.95, "Retry-After: 1 must be honoured")
    }

    @Test func givesUpAfterMaxRetries() throws {
        do {
            _ = try client(retries: 2).complete(ChatRequest(model: "status:503", messages: [.user("x")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .server(status: 503))
            #expect(error.message.contains("after 3 tries"))
        }
    }

    @Test func retriesDroppedConnections() throws {
        let reply = try client().complete(ChatRequest(model: unique("drop:2"), messages: [.user("hello")]), allowance: 300)
        #expect(reply.text == "echo: hello")
        #expect(reply.tries == 3)
    }

    @Test func connectionRefusedIsAConnectionError() throws {
        // A port nobody listens on: bind, note the port, close.
        let c = ChatClient(.init(baseURL: "http://127.0.0.1:9/v1", connectTimeout: .seconds(1), maxRetries: 1, initialBackoff: .milliseconds(10)))
        do {
            _ = try c.complete(ChatRequest(model: "echo", messages: [.user("x")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .connection)
            #expect(error.spent == .zero)
        }
    }

    @Test func aRetryReChecksTheRemainingDeadline() throws {
        // The backoff after the first 503 (about 1 s from Retry-After on 429) cannot fit before the deadline.
        let start = now()
        do {
            _ = try client().complete(
                ChatRequest(model: unique("flaky:5:429"), messages: [.user("x")]), allowance: 300, deadline: SystemTime().instant + .milliseconds(500))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .server(status: 429))
            #expect(error.message.contains("no time left"))
        }
        #expect(now() - start < 0.5)
    }

    @Test func aStalledStreamIsDetected() throws {
        let start = now()
        do {
            _ = try client(retries: 0, stall: 1.5).complete(ChatRequest(model: "stall", messages: [.user("x")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .stalled)
            #expect(error.partialText == "Hello there")
            #expect(error.spent.completionTokens == 2, "streamed tokens are still charged")
            #expect(error.spent.promptTokens > 0)
        }
        let elapsed = now() - start
        #expect(elapsed >= 1.4 && elapsed < 5)
    }

    @Test func waitingForAQueuedRequestIsNotAStall() throws {
        let reply = try client(retries: 0, stall: 1, firstByte: 5).complete(
            ChatRequest(model: "queued", messages: [.user("patience")]), allowance: 300)
        #expect(reply.text == "echo: patience")
    }

    @Test func theFirstByteWaitHasItsOwnLimit() throws {
        let start = now()
        do {
            _ = try client(retries: 0, stall: 30, firstByte: 1).complete(
                ChatRequest(model: "queued", messages: [.user("x")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .stalled)
            #expect(error.spent == .zero, "the server never started: nothing to charge")
        }
        #expect(now() - start < 1.9)
    }

    @Test func malformedJSONIsAnError() throws {
        do {
            _ = try client().complete(ChatRequest(model: "malformed", messages: [.user("x")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .malformedResponse)
            #expect(error.partialText == "Hi")
        }
    }

    @Test func missingUsageIsAnErrorWhenRequired() throws {
        do {
            _ = try client().complete(ChatRequest(model: "nousage", messages: [.user("a b")]), allowance: 300)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .missingUsage)
            #expect(error.partialText == "echo: a b")
            #expect(error.spent.completionTokens == 3, "the estimate is still charged")
        }
    }

    @Test func missingUsageFallsBackToAConservativeEstimate() throws {
        let messages: [ChatMessage] = [.user("a b")]
        let reply = try client(requireUsage: false).complete(ChatRequest(model: "nousage", messages: messages), allowance: 300)
        #expect(reply.usageSource == .estimated)
        #expect(reply.usage.completionTokens == 3)
        #expect(reply.usage.promptTokens == PromptTokenEstimator().estimate(messages))
    }

    @Test func acceptsAPlainJSONCompletion() throws {
        let reply = try client().complete(ChatRequest(model: "plain", messages: [.user("x")]), allowance: 300)
        #expect(reply.text == "plain reply")
        #expect(reply.usage == ChatUsage(promptTokens: 11, completionTokens: 2))
    }

    @Test func cancellationStopsTheStreamMidway() throws {
        let flag = CancellationFlag()
        let start = now()
        var chunks = 0
        do {
            _ = try client().complete(ChatRequest(model: "slow", messages: [.user("x")]), allowance: 1000, cancel: flag) { _ in
                chunks += 1
                if chunks == 3 {
                    // From another thread, as the worker would.
                    Thread.detachNewThread { flag.cancel() }
                }
            }
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .cancelled)
            #expect(error.spent.completionTokens >= 3 && error.spent.completionTokens < 200)
        }
        #expect(now() - start < 3, "200 chunks at 0.1 s would take 20 s")
    }

    @Test func aChildFlagFollowsItsParentButNotTheOtherWay() {
        let parent = CancellationFlag()
        let child = CancellationFlag(parent: parent)
        child.cancel()
        #expect(child.isCancelled && !parent.isCancelled)
        let other = CancellationFlag(parent: parent)
        parent.cancel()
        #expect(other.isCancelled)
    }

    @Test func theDeadlineCutsTheStream() throws {
        let start = now()
        do {
            _ = try client().complete(
                ChatRequest(model: "slow", messages: [.user("x")]), allowance: 1000, deadline: SystemTime().instant + .seconds(1))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .deadlineExceeded)
            #expect(error.spent.completionTokens > 3)
        }
        #expect(now() - start < 5, "cut at the 1 s deadline, not after the 20 s stream")
    }

    @Test func estimatorLearnsFromTheServerAndStaysConservative() {
        let estimator = PromptTokenEstimator()
        let messages: [ChatMessage] = [.system("You write Python."), .user(String(repeating: "def f(x): return x\n", count: 40))]
        let first = estimator.estimate(messages)
        estimator.learn(messages, promptTokens: 250)
        let second = estimator.estimate(messages)
        #expect(second < first, "a learned ratio below 0.5 tokens/byte tightens the estimate")
        #expect(second >= 250, "but never below what the server counted")
    }
}

@Suite struct ServerSentEventParserTests {
    func feed(_ parser: inout ServerSentEventParser, _ text: String) -> [String] {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { parser.feed($0) }
    }

    @Test func splitsEventsAcrossArbitraryChunkBoundaries() {
        var parser = ServerSentEventParser()
        var events: [String] = []
        let body = ": comment\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n"
        for piece in body.map({ String($0) }) { events += feed(&parser, piece) }
        #expect(events == ["{\"a\":1}", "line1\nline2", "[DONE]"])
    }

    @Test func aFinalEventWithoutABlankLineStillCounts() {
        var parser = ServerSentEventParser()
        #expect(feed(&parser, "data: tail").isEmpty)
        #expect(parser.finish() == "tail")
    }
}
