import ArgumentParser
import Benchmarks

/// What every bench on an embedded cluster (`bench dispatch`, `bench intake`, `bench memory`)
/// takes: the coordinator's database and how to print. ``run(_:render:)`` is the one way those
/// commands run their harness.
struct EmbeddedBenchOptions: ParsableArguments {
    @Option(name: .long, help: """
        SQLite file, or postgres://USER@HOST:PORT/DB (an empty database; password from PGPASSFILE, ?passfile= or PGPASSWORD) \
        (default: a fresh temporary SQLite file).
        """)
    var database: String?
    @Flag(name: .long, help: "Print JSON.") var json = false

    /// A progress line, on stderr; none with --json.
    func progress(_ line: String) {
        if !json { printError(line) }
    }

    /// Runs a harness and prints its result, as JSON with --json; a run that could not finish
    /// exits 1 with its reason.
    func run<Result: Encodable>(_ harness: () throws -> Result, render: (Result) -> String) throws {
        let result: Result
        do {
            result = try harness()
        } catch let e as BenchmarkFailure {
            throw CLIError(code: 1, message: e.description)
        }
        if json { printJSON(result) } else { print(render(result)) }
    }
}
