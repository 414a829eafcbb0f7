import ArgumentParser
import Benchmarks
import Foundation

/// `agentflow bench memory`: resident memory before and after many short jobs (the harness is
/// ``Benchmarks/MemoryBenchmark``).
struct BenchMemoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory", abstract: "Benchmark the coordinator's resident memory before and after many short jobs (target: after ≤ 1.5 × before).")

    @Option(name: .long, help: "Short jobs run after the warm-up.") var jobs = 10_000
    @Option(name: .long, help: "Jobs run before the first reading.") var warmup = 500
    @Option(name: .long, help: "Concurrent submitting clients.") var clients = 8
    @Option(name: .long, help: "Seconds to wait after the last job ended before reading.") var settle = 5.0
    /// The cluster `bench memory` has always run (not options: the measurement is about the
    /// coordinator's memory, not the fleet's shape).
    static let workers = 4
    static let slots = 8
    @OptionGroup var bench: EmbeddedBenchOptions

    func validate() throws {
        guard (1...1_000_000).contains(jobs) else { throw ValidationError("--jobs must be from 1 to 1000000") }
        guard (0...1_000_000).contains(warmup) else { throw ValidationError("--warmup must be from 0 to 1000000") }
        guard (1...256).contains(clients) else { throw ValidationError("--clients must be from 1 to 256") }
        guard settle.isFinite, (0...600).contains(settle) else { throw ValidationError("--settle must be seconds from 0 to 600") }
    }

    func run() throws {
        let settings = EmbeddedBenchSettings(workers: Self.workers, slots: Self.slots, jobs: jobs, database: bench.database)
        try bench.run({ try MemoryBenchmark.run(settings, warmup: warmup, clients: clients, settle: .seconds(settle), progress: bench.progress) },
                      render: MemoryBenchmark.render)
    }
}
