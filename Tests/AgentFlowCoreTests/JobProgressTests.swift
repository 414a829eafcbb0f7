import AgentFlowCore
import Testing
import Wire

/// The live progress line of `agentflow run` and the "waiting" note of `status`/`watch`.
@Suite struct JobProgressTests {
    func report(states: [SubtaskState], waiting: String = "", spent: Int = 0) -> JobReport {
        JobReport(id: "j-1", workflow: "w", state: .running, reason: "", planner: "mcpp",
                  budget: BudgetReport(limitTokens: 1000, limitUSD: nil, spentTokens: spent, spentUSD: 0.000012, reservedTokens: 4000, reservedUSD: 0),
                  submittedAt: "", deadline: "", startedAt: nil, endedAt: nil, deadlineSeconds: 300, elapsedSeconds: 12.25,
                  subtasks: states.enumerated().map { SubtaskReport(id: "s\($0.offset)", state: $0.element, model: nil, attempts: 1, tokens: 0, usd: 0, output: nil) },
                  waiting: waiting)
    }

    @Test func countsRunningSubtasksWhileWorkersTakeAttempts() {
        let line = report(states: [.succeeded, .running, .running, .ready], spent: 250).progressLine
        #expect(line == "  12.2s: 1/4 subtasks passed, 2 running, spent 250 tokens $0.000012, reserved 4000")
    }

    @Test func saysWhatItWaitsForInsteadOfCountingQueuedAttemptsAsRunning() {
        let waiting = BackendProblem.describe([
            UnavailableWorker(name: "gpu0", state: "suspended", problem: "agent call failed: connection: Couldn't connect to server (curl 7) (after 4 tries)"),
            UnavailableWorker(name: "gpu1", state: "suspended", problem: "corrector call failed: connection: Couldn't connect to server (curl 7)"),
        ])
        #expect(waiting == "gpu0, gpu1 suspended — model server refuses connections")
        let line = report(states: [.running, .running, .running, .pending, .pending], waiting: waiting).progressLine
        #expect(line == "  12.2s: 0/5 subtasks passed, waiting: gpu0, gpu1 suspended — model server refuses connections, spent 0 tokens $0.000012, reserved 4000")
        #expect(!line.contains("running"))
    }

    @Test func groupsWorkersByStateAndProblem() {
        let text = BackendProblem.describe([
            UnavailableWorker(name: "gpu0", state: "suspended", problem: "agent call failed: server(status: 503): HTTP 503: loading model"),
            UnavailableWorker(name: "gpu1", state: "dead", problem: ""),
            UnavailableWorker(name: "gpu2", state: "suspended", problem: "agent call failed: connection: Empty reply from server (curl 52)"),
            UnavailableWorker(name: "gpu3", state: "suspended", problem: "HTTP 503: busy"),
        ])
        #expect(text == "gpu0, gpu3 suspended — model server answers HTTP 503; gpu1 dead; gpu2 suspended — model server drops connections")
    }

    @Test func anUnknownProblemIsShownShortenedOnOneLine() {
        let long = "agent call failed: something odd\nhappened " + String(repeating: "x", count: 200)
        let summary = BackendProblem.summary(long)
        #expect(summary.count == 100 && summary.hasSuffix("...") && !summary.contains("\n"))
        #expect(summary.hasPrefix("agent call failed: something odd happened x"))
    }

    /// What the metrics' `cause` label and the alerts read: a refused key, a server that cannot
    /// be reached, anything else.
    @Test func problemsAreSortedIntoKinds() {
        #expect(BackendProblem.kind("agent call failed: client(status: 401): the backend refused the key (HTTP 401: Invalid API key)") == .refusedKey)
        #expect(BackendProblem.summary("agent call failed: client(status: 403): the backend refused the key (HTTP 403)") == "the backend refused the key")
        #expect(BackendProblem.kind("agent call failed: connection: Couldn't connect to server (curl 7)") == .unreachable)
        #expect(BackendProblem.kind("agent call failed: connection: Empty reply from server (curl 52)") == .unreachable)
        #expect(BackendProblem.kind("agent call failed: timeout: Operation timed out") == .unreachable)
        #expect(BackendProblem.kind("agent call failed: server(status: 503): HTTP 503: loading") == .other)
        #expect(BackendProblem.kind("") == .other)
    }
}
