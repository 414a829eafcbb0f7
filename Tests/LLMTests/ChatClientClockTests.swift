import AgentFlowCore
import Foundation
import TestSupport
import Testing

@testable import LLM

/// The client reads only the clock it is given: deadlines are instants on it, libcurl's limit is
/// what it says is left, and retries back off on it (a manual clock moves on instead of waiting).
@Suite struct ChatClientClockTests {
    let server = FakeServer.shared

    func client(_ time: any TimeSource, backoff: Duration = .milliseconds(50), maxBackoff: Duration = .milliseconds(1_500)) -> ChatClient {
        ChatClient(.init(baseURL: server.baseURL, connectTimeout: .seconds(2), requestTimeout: .seconds(60), stallTimeout: .seconds(30),
                         firstByteTimeout: .seconds(30),
                         maxRetries: 3, initialBackoff: backoff, maxBackoff: maxBackoff), time: time)
    }

    func realSeconds(_ body: () -> Void) -> Double {
        let start = ContinuousClock.now
        body()
        return (ContinuousClock.now - start).seconds
    }

    @Test func aDeadlinePassedOnTheGivenClockSendsNothing() {
        let clock = ManualTime(5_000)
        let deadline = clock.instant + .seconds(10)
        clock.advance(.seconds(10))
        do {
            _ = try client(clock).complete(ChatRequest(model: "echo", messages: [.user("x")]), allowance: 300, deadline: deadline)
            Issue.record("expected deadlineExceeded")
        } catch {
            #expect(error.code == .deadlineExceeded)
            #expect(error.spent == .zero, "no request was sent")
        }
    }

    @Test func theStreamIsCutWhenTheGivenClockPassesTheDeadline() {
        // An hour left on the given clock; it jumps past the deadline 0.5 s (real) into a 20 s
        // stream: the client must stop at once, although no real deadline was near.
        let clock = ManualTime(5_000)
        let deadline = clock.instant + .seconds(3_600)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { clock.advance(.seconds(3_601)) }
        var code: LLMError.Code?
        let elapsed = realSeconds {
            do {
                _ = try client(clock).complete(ChatRequest(model: "slow", messages: [.user("x")]), allowance: 1000, deadline: deadline)
            } catch let error as LLMError { code = error.code } catch { Issue.record("\(error)") }
        }
        #expect(code == .deadlineExceeded)
        #expect(elapsed < 5, "cut when the given clock passed the deadline, not after the 20 s stream (\(elapsed) s)")
    }

    @Test func libcurlsLimitIsWhatTheGivenClockLeaves() {
        // Two seconds left on a clock that does not move: libcurl's own limit (2 s of real time)
        // ends the 20 s stream; the clock never reached the deadline, so it is a timeout.
        let clock = ManualTime(5_000)
        var code: LLMError.Code?
        let elapsed = realSeconds {
            do {
                _ = try client(clock).complete(ChatRequest(model: "slow", messages: [.user("x")]), allowance: 1000,
                                               deadline: clock.instant + .seconds(2))
            } catch let error as LLMError { code = error.code } catch { Issue.record("\(error)") }
        }
        #expect(code == .timeout)
        #expect(elapsed > 1.5 && elapsed < 8, "\(elapsed) s")
    }

    @Test func retriesBackOffOnTheGivenClock() throws {
        // Two 503s with 20 s backoffs: on a manual clock the backoff moves the clock, not the test.
        let clock = ManualTime(5_000)
        let before = clock.instant
        var reply: ChatCompletion?
        let elapsed = realSeconds {
            reply = try? client(clock, backoff: .seconds(20), maxBackoff: .seconds(40)).complete(
                ChatRequest(model: "flaky:2:503:\(UUID().uuidString)", messages: [.user("again")]), allowance: 300)
        }
        #expect(reply?.tries == 3)
        #expect(clock.instant - before >= .seconds(20 * 0.8 + 40 * 0.8), "both backoffs were taken on the given clock")
        #expect(elapsed < 5, "\(elapsed) s")
    }

    @Test func noRetryThatCannotEndBeforeTheDeadline() {
        // A 20 s backoff with 10 s left on the given clock: the client gives up at once.
        let clock = ManualTime(5_000)
        do {
            _ = try client(clock, backoff: .seconds(20), maxBackoff: .seconds(40)).complete(
                ChatRequest(model: "flaky:2:503:\(UUID().uuidString)", messages: [.user("again")]), allowance: 300,
                deadline: clock.instant + .seconds(10))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .server(status: 503))
            #expect(error.message.contains("no time left"))
        }
    }
}
