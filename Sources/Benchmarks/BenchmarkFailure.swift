/// Why a benchmark run could not finish (a refused job, a job that ended otherwise than
/// expected, a coordinator that stopped answering). The CLI prints it and exits 1.
public struct BenchmarkFailure: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) { self.description = description }
}
