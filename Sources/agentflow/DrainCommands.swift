import ArgumentParser
import Foundation
import Wire

/// `agentflow drain WORKER` / `undrain WORKER`: take a worker out of dispatch (what it runs
/// finishes) or put it back, from any host that reaches the coordinator.
struct DrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain", abstract: "Send a worker no new attempts (those running finish); undo with undrain.")

    @Argument(help: "Worker name.") var worker: String
    @OptionGroup var cluster: ClusterOptions

    func run() throws { try setDrained(worker, true, cluster) }
}

struct UndrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "undrain", abstract: "Send a drained worker attempts again.")

    @Argument(help: "Worker name.") var worker: String
    @OptionGroup var cluster: ClusterOptions

    func run() throws { try setDrained(worker, false, cluster) }
}

func setDrained(_ worker: String, _ drained: Bool, _ cluster: ClusterOptions) throws {
    guard !worker.isEmpty, worker.utf8.count <= 256 else { throw CLIError.badInput("bad worker name") }
    let client = try cluster.makeClient()
    switch try client.request(.drain(worker: worker, drained: drained)) {
    case .workers(let list):
        for w in list { print("worker \(w.worker.name): \(w.state.rawValue), \(w.busy) of \(w.worker.slots) slots busy") }
    case .error(let code, let message):
        throw CLIError.refused(code: code, message)
    default:
        throw CLIError.unexpectedReply
    }
}
