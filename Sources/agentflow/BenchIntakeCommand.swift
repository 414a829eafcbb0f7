import ArgumentParser
import Benchmarks
import Foundation

/// `agentflow bench intake`: jobs accepted per second and submission latency at several queue
/// depths (the harness is ``Benchmarks/IntakeBenchmark``).
struct BenchIntakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intake", abstract: "Benchmark job submissions/s and their latency at queue depths 0, 1k and 10k (concurrent in-process clients).")

    @Option(name: .long, help: "Concurrent clients, each with its own socket and thread.") var clients = 8
    @Option(name: .long, help: "Queue depths to measure at, comma-separated.") var depths = "0,1000,10000"
    @Option(name: .long, help: "Jobs submitted (timed) at each depth.") var jobs = 1000
    @Option(name: .long, help: "The jobs' planner (mcpp or seq:K).") var planner = "mcpp"
    @Option(name: .long, help: "How the clients submit: socket (the client socket, as the CLI) or http (POST /api/v1/jobs).")
    var transport = "socket"
    @OptionGroup var bench: EmbeddedBenchOptions

    func depthList() throws -> [Int] {
        let values = depths.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0.map { (0...1_000_000).contains($0) } ?? false }) else {
            throw ValidationError("--depths must be comma-separated whole numbers from 0 to 1000000, got '\(depths.prefix(64))'")
        }
        return values.map { $0! }
    }

    func validate() throws {
        guard (1...256).contains(clients) else { throw ValidationError("--clients must be from 1 to 256") }
        guard (1...1_000_000).contains(jobs) else { throw ValidationError("--jobs must be from 1 to 1000000") }
        _ = try depthList()
        guard IntakeBenchmark.Transport(rawValue: transport) != nil else {
            throw ValidationError("--transport must be socket or http, got '\(transport.prefix(64))'")
        }
    }

    func run() throws {
        var settings = IntakeBenchmark.Settings()
        settings.clients = clients
        settings.depths = try depthList()
        settings.perDepth = jobs
        settings.planner = planner
        settings.transport = IntakeBenchmark.Transport(rawValue: transport) ?? .socket
        settings.database = bench.database
        try bench.run({ try IntakeBenchmark.run(settings, progress: bench.progress) }, render: IntakeBenchmark.render)
    }
}
