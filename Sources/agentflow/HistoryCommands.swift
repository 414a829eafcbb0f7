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
    @Option(name: .long, help: "Read this SQLite database directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

    func run() throws {
        let attempts = try HistoryReader.attempts(job, cluster, database: database)
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
    @Option(name: .long, help: "Read this SQLite database directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

    func run() throws {
        let lines = try HistoryReader.ledger(job, cluster, database: database)
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
    @Option(name: .long, help: "Read this SQLite database directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

    func run() throws {
        guard let html else {
            print(render(try HistoryReader.job(job, cluster, database: database)))
            return
        }
        let (report, attempts, ledger) = try HistoryReader.full(job, cluster, database: database)
        try writeHTMLReport(report, attempts: attempts, ledger: ledger, to: html)
    }
}

/// Writes the self-contained HTML report; says where on stderr.
func writeHTMLReport(_ report: JobReport, attempts: [AttemptInfo], ledger: [LedgerLine], to path: String) throws {
    let page = ReportPage.html(job: report, attempts: attempts, ledger: ledger)
    do {
        try Data(page.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw CLIError.badInput("cannot write \(path): \(error.localizedDescription)")
    }
    printError("wrote the report \(path) (\(page.utf8.count) bytes)")
}

func fetchAttempts(_ client: CoordinatorClient, _ job: String) throws -> [AttemptInfo] {
    try HistoryReader.attempts(try client.request(.attempts(job: job)))
}

func fetchLedger(_ client: CoordinatorClient, _ job: String) throws -> [LedgerLine] {
    try HistoryReader.ledger(try client.request(.ledger(job: job)))
}

func parseISO(_ s: String) -> Double? {
    (try? Date(s, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))?.timeIntervalSince1970
}
