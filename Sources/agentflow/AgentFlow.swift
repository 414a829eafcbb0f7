import AgentFlowCore
import ArgumentParser
import Coordinator
import Foundation
import Observability

@main
struct AgentFlow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentflow",
        abstract: "A distributed job scheduler for budgeted LLM agent workflows.",
        version: agentflowVersion,
        subcommands: [
            RunCommand.self, CoordinatorCommand.self, WorkerCommand.self, SubmitCommand.self, StatusCommand.self,
            JobsCommand.self, QueueCommand.self, TenantsCommand.self, WorkersCommand.self, WatchCommand.self, CancelCommand.self, ValidateCommand.self,
            PlanCommand.self, KeysCommand.self, BenchCommand.self, NodeCommand.self, DrainCommand.self, UndrainCommand.self,
            AttemptsCommand.self, LedgerCommand.self, ReportCommand.self, SimCommand.self, OutputsCommand.self,
        ])

    /// Maps every failure onto the documented exit codes: 2 bad input, 3 coordinator
    /// unreachable, 1 a job that ended unsuccessfully.
    static func main() {
        do {
            var command = try parseAsRoot()
            if let c = command as? any LoggingCommand {
                c.logging.bootstrap(defaultLevel: c.defaultLogLevel)
            } else {
                LogSetup.bootstrap(level: .warning)
            }
            try command.run()
        } catch let error as ConfigError {
            printError("error: \(error)")
            Foundation.exit(2)
        } catch let error as CoordinatorStartError {
            printError("error: \(error)")
            Foundation.exit(1)
        } catch let error as CLIError {
            printError("error: \(error.message)")
            Foundation.exit(error.code)
        } catch let error as ExitCode {
            Foundation.exit(error.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            printError(fullMessage(for: error))
            Foundation.exit(code == .validationFailure || code.rawValue == 64 ? 2 : (code.rawValue == 0 ? 1 : 2))
        }
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks: the dispatch path, the planner and the fleet scheduler.",
        subcommands: [BenchDispatchCommand.self, BenchPlannerCommand.self, BenchPlannerScaleCommand.self, BenchFleetCommand.self,
                      BenchSandboxCommand.self, BenchPromptCacheCommand.self, BenchIntakeCommand.self, BenchMemoryCommand.self])
}
