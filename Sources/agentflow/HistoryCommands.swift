import AgentFlowCore
import ArgumentParser
import Foundation
import HTTPAPI
import Wire

/// `agentflow attempts JOB`: every attempt of a job, in the terminal or as JSON.
struct AttemptsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attempts", abstract: "List a job's attempts: model, worker, how each ended, tokens, cost; --transcript SUBTASK#N prints one's transcript.")

    @Argument(help: "Job id.") var job: String
    @OptionGroup var cluster: ClusterOptions
    @Flag(name: .long, help: "Print JSON.") var json = false
    @Option(name: .long, help: "Read this SQLite database (or postgres://USER@HOST/DB) directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?
    @Option(name: .long, help: "Print this attempt's transcript (model calls, actions, verifier runs), e.g. --transcript fix#2.") var transcript: String?

    func validate() throws {
        if let transcript, Self.attempt(transcript) == nil {
            throw ValidationError("--transcript takes SUBTASK#N, e.g. fix#2 (N from 1), got \(Limits.printable(transcript, limit: 80))")
        }
    }

    /// `SUBTASK#N` split at its last `#`.
    static func attempt(_ text: String) -> (subtask: String, n: Int)? {
        guard let hash = text.lastIndex(of: "#"), let n = Int(text[text.index(after: hash)...]), n >= 1 else { return nil }
        let subtask = String(text[..<hash])
        return subtask.isEmpty ? nil : (subtask, n)
    }

    func run() throws {
        if let transcript, let (subtask, n) = Self.attempt(transcript) {
            let report = try HistoryReader.transcript(job, subtask: subtask, n: n, cluster, database: database)
            if json { printJSON(report) } else { print(TranscriptPrinter.render(report)) }
            return
        }
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
    @Option(name: .long, help: "Read this SQLite database (or postgres://USER@HOST/DB) directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

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
    @Option(name: .long, help: "Read this SQLite database (or postgres://USER@HOST/DB) directly, read-only (default: the coordinator, or its database when no coordinator answers).") var database: String?

    func run() throws {
        guard let html else {
            print(render(try HistoryReader.job(job, cluster, database: database)))
            return
        }
        let (report, attempts, ledger, transcripts) = try HistoryReader.full(job, cluster, database: database)
        try writeHTMLReport(report, attempts: attempts, ledger: ledger, transcripts: transcripts, to: html)
    }
}

/// Writes the self-contained HTML report; says where on stderr.
func writeHTMLReport(_ report: JobReport, attempts: [AttemptInfo], ledger: [LedgerLine],
                     transcripts: (kept: [TranscriptReport], leftOut: [String]) = ([], []), to path: String) throws {
    let page = ReportPage.html(job: report, attempts: attempts, ledger: ledger, transcripts: transcripts.kept, leftOut: transcripts.leftOut)
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

/// The transcripts a report embeds (``HistoryReader/full(_:_:database:)`` says which).
func fetchTranscripts(_ client: CoordinatorClient, _ job: String, _ attempts: [AttemptInfo]) throws -> (kept: [TranscriptReport], leftOut: [String]) {
    var kept: [TranscriptReport] = []
    var leftOut: [String] = []
    var bytes = 0
    for (i, a) in attempts.filter({ $0.dispatchedAt != nil }).enumerated() {
        guard i < ReportPage.maxTranscripts,
              case .transcript(let t) = try client.request(.transcript(job: job, subtask: a.subtask, n: a.n)) else {
            leftOut.append(a.id)
            continue
        }
        guard t.entries > 0 else { continue }
        guard bytes + t.bytes <= ReportPage.maxTranscriptBytes else {
            leftOut.append(a.id)
            continue
        }
        bytes += t.bytes
        kept.append(t)
    }
    return (kept, leftOut)
}

func parseISO(_ s: String) -> Double? {
    (try? Date(s, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)))?.timeIntervalSince1970
}
