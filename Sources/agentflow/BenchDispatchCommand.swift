import AgentFlowCore
import ArgumentParser
import Benchmarks
import Foundation

/// `agentflow bench dispatch`: attempts/s and dispatch latency end to end (the harness is
/// ``Benchmarks/DispatchBenchmark``).
struct BenchDispatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch", abstract: "Benchmark attempts/s and dispatch latency end to end (sim backend, zero latency).")

    @Option(name: .long, help: "Worker processes (threads here, each with its own ZeroMQ socket).") var workers = 8
    @Option(name: .long, help: "Slots per worker.") var slots = 4
    @Option(name: .long, help: "Jobs submitted at once.") var jobs = 4
    @Option(name: .long, help: "Independent subtasks per job (one attempt each).") var subtasks = 5000
    @Option(name: .long, help: "The coordinator's group-commit linger in microseconds (default: the product's, Coordinator.Options.commitLinger).")
    var commitLingerUs: Int?
    @Option(name: .long, help: "Attempts per slot a worker holds queued (default: the product's coordinator.prefetch; 0: none).")
    var prefetch: Int?
    @Option(name: .long, help: "Jobs waiting in the queue the whole run (for another model's held slot): does dispatch stay flat as the queue grows.")
    var queued = 0
    @OptionGroup var bench: EmbeddedBenchOptions

    func validate() throws {
        guard (1...256).contains(workers) else { throw ValidationError("--workers must be from 1 to 256") }
        guard (1...1024).contains(slots) else { throw ValidationError("--slots must be from 1 to 1024") }
        guard (1...1000).contains(jobs) else { throw ValidationError("--jobs must be from 1 to 1000") }
        guard (1...100_000).contains(subtasks) else { throw ValidationError("--subtasks must be from 1 to 100000") }
        guard (0...100_000).contains(queued) else { throw ValidationError("--queued must be from 0 to 100000") }
        if let l = commitLingerUs, !(0...1_000_000).contains(l) { throw ValidationError("--commit-linger-us must be from 0 to 1000000") }
        if let p = prefetch, let problem = Limits.count(p, 0...Limits.maxPrefetch, "--prefetch") { throw ValidationError(problem) }
    }

    func run() throws {
        let settings = EmbeddedBenchSettings(workers: workers, slots: slots, jobs: jobs, database: bench.database)
        try bench.run({ try DispatchBenchmark.run(settings, subtasks: subtasks, commitLinger: commitLingerUs.map { .microseconds($0) }, prefetch: prefetch,
                                                  queued: queued) },
                      render: { DispatchBenchmark.render($0, settings, subtasks: subtasks) })
    }
}
