import AgentFlowCore
import ArgumentParser
import Foundation
import HTTPAPI
import Wire

/// `agentflow attempts JOB`: every attempt of a job, in the terminal or as JSON.
struct AttemptsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "attempts", abstract: "List a job's attempts: model, worker, how each ended, tokens, cost.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let attempts = try fetchAttempts(try cluster.makeClient(), job)
        if json {
            printJSON(attempts)
            return
        }
        var rows = [["attempt", "model", "worker", "state", "tokens", "cap", "usd", "time", "how it ended"]]
        for a in attempts {
            var seconds = "-"
            if let start = a.dispatchedAt.flatMap(parseISO), let end = a.endedAt.flatMap(parseISO) { seconds = formatDuration(end - start) }
            rows.append([a.id, a.model, a.worker ?? "-", a.state, String(a.tokens), String(a.tokenCap), usd(a.usd), seconds,
                         String(a.detail.replacingOccurrences(of: "\n", with: " ").prefix(80))])
        }
        print(table(rows))
    }
}

/// `agentflow ledger JOB`: the job's append-only spend ledger.
struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger", abstract: "Print a job's spend ledger, line by line.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false

    func run() throws {
        let lines = try fetchLedger(try cluster.makeClient(), job)
        if json {
            printJSON(lines)
            return
        }
        var rows = [["seq", "at", "attempt", "role", "model", "in", "out", "usd", "kind"]]
        var tokens = 0
        var total = 0.0
        for l in lines {
            rows.append([String(l.seq), l.at, l.attempt, l.role, l.model, String(l.tokensIn), String(l.tokensOut), usd(l.usd), l.kind])
            tokens += l.tokensIn + l.tokensOut
            total += l.usd
        }
        print(table(rows))
        print("\(lines.count) lines, \(tokens) tokens, \(usd(total))")
    }
}

/// `agentflow report JOB [--html FILE]`: the text report, or a self-contained HTML file with the
/// DAG, the Gantt of attempts, the budget burn and the spend tables.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "A job's report; --html writes a self-contained HTML file with charts.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Option(name: .long, help: "Write the HTML report to this file.") var html: String?

    func run() throws {
        let client = try cluster.makeClient()
        let report = try client.job(.status(job: job))
        guard let html else {
            print(render(report))
            return
        }
        let page = ReportPage.html(job: report, attempts: try fetchAttempts(client, job), ledger: try fetchLedger(client, job))
        do {
            try Data(page.utf8).write(to: URL(fileURLWithPath: html))
        } catch {
            throw CLIError.badInput("cannot write \(html): \(error.localizedDescription)")
        }
        printError("wrote \(html) (\(page.utf8.count) bytes)")
    }
}

func fetchAttempts(_ client: CoordinatorClient, _ job: String) throws -> [AttemptInfo] {
    switch try client.request(.attempts(job: job)) {
    case .attempts(let a): return a
    case .error(let code, let message): throw CLIError(code: code == 2 ? 2 : 1, message: message)
    default: throw CLIError(code: 1, message: "unexpected reply from the coordinator")
    }
}

func fetchLedger(_ client: CoordinatorClient, _ job: String) throws -> [LedgerLine] {
    switch try client.request(.ledger(job: job)) {
    case .ledger(let l): return l
    case .error(let code, let message): throw CLIError(code: code == 2 ? 2 : 1, message: message)
    default: throw CLIError(code: 1, message: "unexpected reply from the coordinator")
    }
}

func parseISO(_ s: String) -> Double? {
    (try? Date(s, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))?.timeIntervalSince1970
}
