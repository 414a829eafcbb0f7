import AgentFlowCore
@testable import Coordinator
import Testing

@Suite struct BackendBreakerTests {
    let refused = "agent call failed: connection: Couldn't connect to server (curl 7) (after 4 tries)"

    @Test func opensAfterThreeTokenlessErrorsInARowWithDoublingCooldowns() {
        var b = BackendBreaker()
        var opened = false
        opened = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(0))
        #expect(!opened)
        opened = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(1))
        #expect(!opened)
        #expect(b.suspendedUntil == nil)
        opened = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(2))
        #expect(opened)
        #expect(b.suspendedUntil == .seconds(4))
        #expect(b.problem == refused)
        // Attempts still running when it opened fail too: no second trip while suspended.
        opened = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(2.5))
        #expect(!opened)
        #expect(b.suspendedUntil == .seconds(4))
        // The coordinator closes the window after the cooldown; one more failure re-opens it for longer.
        var cooldowns: [Double] = [2]
        for now in stride(from: 10.0, through: 80, by: 10) {
            b.suspendedUntil = nil
            opened = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(now))
            #expect(opened)
            cooldowns.append((b.suspendedUntil! - MonotonicInstant(seconds: now)).seconds)
        }
        #expect(cooldowns == [2, 4, 8, 16, 30, 30, 30, 30, 30])
    }

    @Test func anAttemptThatReachedTheModelClosesIt() {
        for end in [AttemptEnd.succeeded, .failed, .capReached, .deadline, .error] {
            var b = BackendBreaker()
            for t in 0..<3 { _ = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(Double(t))) }
            #expect(b.trips == 1)
            b.suspendedUntil = nil
            // An error after real tokens is the task's (or the scaffold's) problem, not the server's.
            let opened = b.record(end: end, tokens: 120, detail: "x", now: .seconds(10))
            #expect(!opened)
            #expect(b.trips == 0 && b.failuresInARow == 0 && b.problem == nil && b.suspendedUntil == nil, "\(end)")
        }
    }

    @Test func cancelledAttemptsAndInterleavedSuccessesDoNotOpenIt() {
        var b = BackendBreaker()
        _ = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(0))
        _ = b.record(end: .cancelled, tokens: 0, detail: "cancelled", now: .seconds(1))
        _ = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(2))
        #expect(b.suspendedUntil == nil, "two failures, one cancellation: still closed")
        _ = b.record(end: .failed, tokens: 0, detail: "no verified solution", now: .seconds(3))
        _ = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(4))
        _ = b.record(end: .error, tokens: 0, detail: refused, now: .seconds(5))
        #expect(b.suspendedUntil == nil, "a verifier failure counts as the server working")
    }

    /// A 401/403 is not transient: the breaker opens on the first, with the refusal as its problem;
    /// an answer that merely mentions keys is not one.
    @Test func aRefusedKeyOpensItAtOnce() {
        var b = BackendBreaker()
        let detail = "agent call failed: client(status: 401): the backend refused the key (HTTP 401: Invalid API key)"
        let opened = b.record(end: .error, tokens: 0, detail: detail, now: .seconds(0))
        #expect(opened)
        #expect(b.suspendedUntil == .seconds(2) && b.trips == 1 && b.problem == detail)
        var other = BackendBreaker()
        let otherOpened = other.record(end: .error, tokens: 0, detail: "agent call failed: HTTP 400: the key 'x' of the request is unknown", now: .seconds(0))
        #expect(!otherOpened)
        #expect(other.suspendedUntil == nil)
    }
}
