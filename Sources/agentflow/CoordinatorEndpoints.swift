import AgentFlowCore

/// The coordinator endpoints a worker or client tries, in order: `--coordinator` (one
/// endpoint, or several separated by commas), else the cluster file's list, else the default.
/// Several coordinators share one PostgreSQL database; whichever leads serves (DESIGN §12).
func coordinatorEndpoints(flag: String?, fromCluster: [String]?, default fallback: String, what: String = "--coordinator") throws -> [String] {
    guard let flag else { return fromCluster ?? [fallback] }
    let list = flag.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingCharacters(in: .whitespaces) }
    for e in list where !(e.hasPrefix("tcp://") || e.hasPrefix("ipc://")) {
        throw CLIError.badInput("\(what): \(Limits.printable(e)) is not a ZeroMQ endpoint like tcp://10.0.0.1:5555 (several: separate them with commas)")
    }
    if Set(list).count != list.count { throw CLIError.badInput("\(what) names an endpoint twice: \(Limits.printable(flag))") }
    return list
}
