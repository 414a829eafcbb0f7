import AgentFlowCore
import ArgumentParser
import Foundation
import Logging
import Simulation

/// `agentflow sim`: the deterministic simulator (docs/reliability.md). One seed replays exactly;
/// a range of seeds is the bounded run in the test suite or a longer soak.
struct SimCommand: ParsableCommand, LoggingCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the deterministic fault simulator on the real coordinator core (docs/reliability.md).")

    @Option(name: .long, help: "First seed.") var seed: UInt64 = 1
    @Option(name: .long, help: "How many seeds, from --seed on.") var seeds = 1
    @Option(name: .long, help: "At most this many events per seed (a safety net: a seed ends by simulated time, and one that reaches the cap fails).")
    var events = Simulator.eventCap
    @Option(name: .long, help: "Simulated seconds of faults and new jobs per seed (then a quiet phase lets everything end).")
    var seconds: Double = 60
    @Option(name: .long, help: "Fault rates: default, none, heavy.") var faults = "default"
    @Option(name: .long, help: "The coordinator's prefetch (attempts per slot a worker holds queued; default: the product's).") var prefetch: Int?
    @Flag(name: .long, help: "One line per seed.") var verbose = false
    @OptionGroup var logging: LogOptions
    /// The coordinator's own log lines would drown the summary; `--log-level info` shows them.
    var defaultLogLevel: Logger.Level { .critical }

    func validate() throws {
        guard FaultRates.named(faults) != nil else { throw ValidationError("--faults must be default, none or heavy") }
        guard (1...10_000_000).contains(seeds) else { throw ValidationError("--seeds must be from 1 to 10,000,000") }
        guard (1...10_000_000).contains(events) else { throw ValidationError("--events must be from 1 to 10,000,000") }
        guard seconds.isFinite, (1...86_400).contains(seconds) else { throw ValidationError("--seconds must be from 1 to 86400") }
        if let p = prefetch, let problem = Limits.count(p, 0...Limits.maxPrefetch, "--prefetch") { throw ValidationError(problem) }
    }

    func replay(_ seed: UInt64) -> String {
        "agentflow sim --seed \(seed) --events \(events) --seconds \(Int(seconds)) --faults \(faults)" + (prefetch.map { " --prefetch \($0)" } ?? "") + " --verbose"
    }

    func run() throws {
        // Dictionary order must not differ between runs, or a seed would not replay exactly.
        try reexecWithDeterministicHashing()
        let rates = FaultRates.named(faults)!
        let started = ContinuousClock.now
        var totalEvents = 0, iterations = 0, crashes = 0, betweenCommitAndSend = 0, workerCrashes = 0, freezes = 0
        var impostors = 0, jumps = 0, hostile = 0, jobs = 0, messages = 0, dropped = 0, duplicated = 0, waited = 0
        var states: [String: Int] = [:]
        var capped = 0
        var failures: [(UInt64, String)] = []
        for s in seed..<(seed + UInt64(seeds)) {
            CrashReport.current(seed: s, replay: replay(s))
            let r = try Simulator(seed: s, faults: rates, maxEvents: events, faultSeconds: seconds, prefetch: prefetch).run()
            waited += r.waitedStarts
            totalEvents += r.events
            // A seed that reaches the event cap fails (its end-of-run checks were not made); the
            // summary says how many did.
            if r.events >= events { capped += 1 }
            iterations += r.coordinatorIterations
            crashes += r.coordinatorCrashes
            betweenCommitAndSend += r.crashesBetweenCommitAndSend
            workerCrashes += r.workerCrashes
            freezes += r.freezes
            impostors += r.impostors
            jumps += r.clockJumps
            hostile += r.hostileMessages
            jobs += r.jobs
            messages += r.messages
            dropped += r.dropped
            duplicated += r.duplicated
            for (k, v) in r.jobsByState { states[k, default: 0] += v }
            if verbose {
                print("seed \(s): \(r.events) events, \(r.jobs) jobs \(r.jobsByState.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), "
                      + "\(r.coordinatorCrashes) coordinator crashes, \(r.workerCrashes) worker crashes, \(r.freezes) freezes, \(r.impostors) impostors, "
                      + "\(r.clockJumps) clock jumps, \(r.hostileMessages) hostile, \(String(format: "%.0f", r.virtualSeconds)) simulated s"
                      + (r.violation.map { " — VIOLATION: \($0)" } ?? ""))
            }
            if let v = r.violation {
                failures.append((s, v))
                printError("seed \(s) violated an invariant: \(v)\n  replay: \(replay(s))")
            }
        }
        let elapsed = (ContinuousClock.now - started).seconds
        print("simulated \(seeds) seeds, \(totalEvents) events, \(iterations) coordinator iterations in \(String(format: "%.1f", elapsed)) s; "
              + "\(jobs) jobs (\(states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))); "
              + "faults: \(crashes) coordinator crashes (\(betweenCommitAndSend) between commit and send), \(workerCrashes) worker crashes, "
              + "\(freezes) freezes, \(impostors) impostors, \(jumps) clock jumps, \(hostile) hostile messages, "
              + "\(dropped) of \(messages) messages dropped, \(duplicated) duplicated; \(capped) seeds stopped at the \(events)-event cap "
              + "before their end-of-run checks; \(waited) attempts waited queued at a worker (prefetch \(prefetch ?? CoordinatorSpec().prefetch)); "
              + "\(failures.count) invariant violations")
        if !failures.isEmpty { throw CLIError(code: 1, message: "\(failures.count) seeds violated invariants; first: \(replay(failures[0].0))") }
    }
}

/// Runs this command again with `SWIFT_DETERMINISTIC_HASHING=1` unless it is set: dictionary
/// order is then the same in every run, so a seed replays exactly (the simulator, the fleet
/// benchmark).
func reexecWithDeterministicHashing() throws {
    guard getenv("SWIFT_DETERMINISTIC_HASHING") == nil else { return }
    setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
    let argv = CommandLine.arguments.map { strdup($0) } + [nil]
    execv("/proc/self/exe", argv)
    throw CLIError(code: 1, message: "cannot re-run itself with SWIFT_DETERMINISTIC_HASHING=1: \(String(cString: strerror(errno)))")
}

/// If a seed traps (a crash, not a violation), say which and how to replay it.
enum CrashReport {
    nonisolated(unsafe) static var line: [CChar] = []

    static func current(seed: UInt64, replay: String) {
        if line.isEmpty {
            for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGABRT, SIGBUS, SIGFPE] {
                signal(sig) { s in
                    CrashReport.line.withUnsafeBufferPointer { b in _ = write(2, b.baseAddress, b.count) }
                    signal(s, SIG_DFL)
                    raise(s)
                }
            }
        }
        line = Array("\nthe simulator crashed on seed \(seed); replay: \(replay)\n".utf8CString.dropLast())
    }
}
