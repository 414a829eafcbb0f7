import Foundation
import Wire

/// `agentflow report JOB --html FILE`: one self-contained HTML file (no requests, no scripts
/// from elsewhere) with the job's DAG, the Gantt of its attempts, the budget burn against the
/// limit and the deadline, spend per subtask and per role, and how each attempt ended; an
/// attempt's bar opens its transcript (embedded, up to ``maxTranscriptBytes``). The data is
/// embedded as JSON and drawn as inline SVG by the same code as the dashboard.
public enum ReportPage {
    /// `transcripts`: the attempts' transcripts to embed, by attempt id; `leftOut`: attempts whose
    /// transcripts were not embedded (over ``maxTranscriptBytes``), named in the page.
    public static func html(job: JobReport, attempts: [AttemptInfo], ledger: [LedgerLine], transcripts: [TranscriptReport] = [],
                            leftOut: [String] = [], generated: Date = Date()) -> String {
        let data = embeddedJSON(ReportData(job: job, attempts: attempts, ledger: ledger, generatedAt: isoTime(generated.timeIntervalSince1970),
                                           transcripts: Dictionary(transcripts.map { ($0.attempt, $0) }, uniquingKeysWith: { a, _ in a }),
                                           transcriptsLeftOut: leftOut))
        return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>AgentFlow report \(escape(job.id)) — \(escape(job.workflow))</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>\(Charts.css)\(TranscriptView.css)
        main { max-width: 1100px; margin: 16px auto; padding: 0 16px; }
        .summary td { border: none; padding: 1px 12px 1px 0; }
        </style></head>
        <body><main>
        <h1>Job \(escape(job.id)) · \(escape(job.workflow))</h1>
        <div id="summary"></div>
        <h2>DAG</h2><div class="chart" id="dag"></div>
        <h2>Attempts per worker slot</h2><div class="chart" id="gantt"></div><div id="gantt-legend"></div>
        <section id="transcript-panel" hidden><a class="t-close" href="#">close</a><h2>Transcript</h2><div id="transcript"></div></section>
        <h2>Budget burn against the limit and the deadline</h2><div class="chart" id="burn"></div>
        <h2>Budget burn during the run</h2><div class="chart" id="burn-zoom"></div>
        <h2>Spend per subtask</h2><div id="subtasks"></div>
        <h2>Spend per role</h2><div id="roles"></div>
        <h2>Attempts</h2><div id="attempts"></div>
        <p class="muted" id="generated"></p>
        </main>
        <script id="report-data" type="application/json">\(data)</script>
        <script>\(Charts.js)\(TranscriptView.js)
        (function () {
          var d = JSON.parse(document.getElementById('report-data').textContent), job = d.job, end = AF.t(job.endedAt) || AF.t(d.generatedAt);
          var b = job.budget, done = job.subtasks.filter(function (s) { return s.state === 'succeeded'; }).length;
          document.getElementById('summary').innerHTML = '<table class="summary">' +
            '<tr><td>state</td><td>' + AF.badge(job.state) + ' ' + AF.esc(job.reason) + '</td></tr>' +
            '<tr><td>subtasks</td><td>' + done + ' of ' + job.subtasks.length + ' passed</td></tr>' +
            '<tr><td>planner</td><td>' + AF.esc(job.planner) + '</td></tr>' +
            '<tr><td>time</td><td>' + AF.dur(job.elapsedSeconds) + ' of ' + AF.dur(job.deadlineSeconds) + ' deadline</td></tr>' +
            '<tr><td>budget</td><td>tokens ' + b.spentTokens + (b.limitTokens != null ? ' / ' + b.limitTokens : '') + ' · usd ' + AF.usd(b.spentUSD) + (b.limitUSD != null ? ' / ' + AF.usd(b.limitUSD) : '') + '</td></tr></table>';
          document.getElementById('dag').innerHTML = AF.dag(job);
          document.getElementById('gantt').innerHTML = AF.gantt(job, d.attempts, end, function (a) { return '#transcript=' + encodeURIComponent(a.id); });
          // An attempt's bar links to #transcript=ID: its embedded transcript opens below the chart.
          function showTranscript() {
            var m = /^#transcript=(.*)$/.exec(location.hash), panel = document.getElementById('transcript-panel');
            if (!m) { panel.hidden = true; return; }
            var id = decodeURIComponent(m[1]), t = (d.transcripts || {})[id];
            panel.hidden = false;
            document.getElementById('transcript').innerHTML = t ? AF.transcript(t)
              : '<div class="t-note">' + AF.esc(id) + ': ' + ((d.transcriptsLeftOut || []).indexOf(id) >= 0
                ? 'its transcript is not in this report (the report holds at most a few MB of them); read it with agentflow attempts ' + AF.esc(job.id) + ' --transcript ' + AF.esc(id.slice(job.id.length + 1))
                : 'no transcript was recorded') + '</div>';
            panel.scrollIntoView();
          }
          window.addEventListener('hashchange', showTranscript);
          showTranscript();
          document.getElementById('gantt-legend').innerHTML = AF.legend(['succeeded', 'failed', 'cancelled', 'lost', 'dispatched']);
          document.getElementById('burn').innerHTML = AF.burn(job, AF.burnPoints(job, d.ledger), end);
          document.getElementById('burn-zoom').innerHTML = AF.burn(job, AF.burnPoints(job, d.ledger), end, true);
          document.getElementById('subtasks').innerHTML = AF.subtaskTable(job);
          document.getElementById('roles').innerHTML = AF.roleTable(d.ledger);
          document.getElementById('attempts').innerHTML = AF.attemptTable(d.attempts);
          document.getElementById('generated').textContent = 'generated ' + d.generatedAt + ' by agentflow report';
        })();
        </script></body></html>

        """
    }

    struct ReportData: Encodable {
        var job: JobReport
        var attempts: [AttemptInfo]
        var ledger: [LedgerLine]
        var generatedAt: String
        var transcripts: [String: TranscriptReport]
        var transcriptsLeftOut: [String]
    }

    /// Most bytes of transcripts a report embeds; the rest are named, to be read with the CLI.
    public static let maxTranscriptBytes = 8 << 20
    /// Most transcripts a report embeds.
    public static let maxTranscripts = 500

    /// JSON safe inside a `<script>` element (no `</` can close it early).
    static func embeddedJSON<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        let text = String(decoding: (try? e.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
        return text.replacingOccurrences(of: "</", with: "<\\/").replacingOccurrences(of: "<!--", with: "<\\!--")
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
