import Foundation
import Testing

/// The deterministic simulator (docs/reliability.md) in every test run: a bounded number of
/// seeds of the real coordinator core and the real worker core under injected faults (default
/// and heavy rates), split over two processes (the CI machine has two cores), the second of each
/// with prefetch on (`coordinator.prefetch` 1: attempts held queued at workers; off by default).
/// Each process prints its seed and event counts; a failing seed prints the one-line command that
/// replays it.
@Suite(.serialized) struct SimulationTests {
    static let seedsPerProcess = 1000

    @Test func simulatorFindsNoInvariantViolations() throws {
        let started = Date()
        let halves = [(1, 0), (1 + Self.seedsPerProcess, 1)].map { first, prefetch in
            Thread.detachNewThreadResult {
                try agentflow(["sim", "--seed", "\(first)", "--seeds", "\(Self.seedsPerProcess)", "--seconds", "30", "--prefetch", "\(prefetch)"], timeout: 1200)
            }
        }
        var seeds = 0
        for half in halves {
            let r = try half.value()
            print(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(r.code == 0, "\(r.err)")
            #expect(r.out.contains("; 0 invariant violations"), "\(r.out)\n\(r.err)")
            // A seed cut off by the event cap skips its end-of-run checks (every job ended with a
            // reason, nothing reserved): none may be.
            #expect(r.out.contains("; 0 seeds stopped at the"), "\(r.out)")
            #expect(r.out.contains("simulated \(Self.seedsPerProcess) seeds"))
            seeds += Self.seedsPerProcess
        }
        print("simulator: \(seeds) seeds in \(String(format: "%.0f", Date().timeIntervalSince(started))) s")
    }

    /// Heavy faults (everything ten times as often, messages delayed up to 1 s): fewer seeds,
    /// the same checks — every seed settles, none reaches the event cap.
    @Test func heavyFaultsToo() throws {
        let seeds = 100
        let halves = [(9_100_001, 0), (9_100_001 + seeds, 1)].map { first, prefetch in
            Thread.detachNewThreadResult {
                try agentflow(["sim", "--faults", "heavy", "--seed", "\(first)", "--seeds", "\(seeds)", "--seconds", "30", "--prefetch", "\(prefetch)"],
                              timeout: 1200)
            }
        }
        for half in halves {
            let r = try half.value()
            print(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(r.code == 0, "\(r.err)")
            #expect(r.out.contains("; 0 invariant violations"), "\(r.out)\n\(r.err)")
            #expect(r.out.contains("; 0 seeds stopped at the"), "\(r.out)")
            #expect(r.out.contains("simulated \(seeds) seeds"))
        }
    }

    /// Seeds that once found a bug, kept: 9300392 (heavy faults, prefetch 1) charged a tenant in
    /// the iteration whose tick renewed its hourly period, and the renewal dropped that charge from
    /// the ending period's record (its periods added up to less than its jobs' ledger).
    @Test func seedsThatFoundBugsStayClean() throws {
        let r = try agentflow(["sim", "--seed", "9300392", "--faults", "heavy", "--prefetch", "1"], timeout: 120)
        #expect(r.code == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("; 0 invariant violations"), "\(r.out)\n\(r.err)")
    }

    @Test func aSeedReplaysExactly() throws {
        let a = try agentflow(["sim", "--seed", "4242", "--verbose"], timeout: 120)
        let b = try agentflow(["sim", "--seed", "4242", "--verbose"], timeout: 120)
        #expect(a.code == 0 && b.code == 0, "\(a.err)\(b.err)")
        // Everything but the wall-clock duration of the run is identical.
        let strip: (String) -> String = { $0.split(separator: "\n").map { $0.replacing(/in [0-9.]+ s;/, with: "") }.joined(separator: "\n") }
        #expect(strip(a.out) == strip(b.out))
        #expect(a.out.contains("seed 4242:"))
    }
}

private final class ResultBox<T: Sendable>: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    var result: Result<T, any Error>?
    func value() throws -> T {
        done.wait()
        return try result!.get()
    }
}

extension Thread {
    fileprivate static func detachNewThreadResult<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> ResultBox<T> {
        let box = ResultBox<T>()
        Thread.detachNewThread {
            box.result = Result { try body() }
            box.done.signal()
        }
        return box
    }
}
