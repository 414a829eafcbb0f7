/// Drawing an attempt's transcript (``Wire/TranscriptReport``) as HTML, shared by the dashboard
/// (which fetches it when an attempt's bar is clicked) and `agentflow report --html` (which
/// embeds it): each model call with the messages it sent (each shown once, where it is first
/// sent), its reply, tokens, times and finish reason; each action with its input and output;
/// verifier runs; notes. Plain JavaScript on top of ``Charts/js`` (it uses `AF.esc` and `AF.dur`).
enum TranscriptView {
    static let css = #"""
#transcript-panel { margin-top: 10px; }
#transcript-panel .t-close { float: right; }
.transcript { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 8px 12px; }
.transcript h3 { font-size: 14px; margin: 0 0 4px; }
.t-event { border-top: 1px solid var(--line); padding: 6px 0; }
.t-head { font-weight: 600; } .t-head .muted { font-weight: 400; }
.t-call .t-head { color: #1f618d; } .t-action .t-head { color: #7d6608; } .t-verifier.failed .t-head { color: #c0392b; } .t-verifier.passed .t-head { color: #1e8449; }
.transcript pre { white-space: pre-wrap; word-break: break-word; background: #f4f6f6; padding: 4px 6px; margin: 3px 0; max-height: 420px; overflow: auto; font: 12px/1.35 ui-monospace, Menlo, Consolas, monospace; }
.t-msg .t-role { color: var(--muted); font-size: 12px; }
.t-omitted { color: #b9770e; font-size: 12px; }
"""#

    static let js = #"""
AF.transcript = function (t) {
  var esc = AF.esc, o = [];
  function secs(s) { return s == null ? '' : (s < 1 ? Math.round(s * 1000) + 'ms' : s.toFixed(2) + 's'); }
  function pre(text, cls) { return '<pre' + (cls ? ' class="' + cls + '"' : '') + '>' + esc(text) + '</pre>'; }
  function omitted(n) { return n > 0 ? '<div class="t-omitted">… ' + n + ' bytes left out under the transcript cap</div>' : ''; }
  var start = t.events.length ? AF.t(t.events[0].at) : null, byIndex = {}, shown = {};
  t.messages.forEach(function (m) { byIndex[m.index] = m; });
  o.push('<div class="transcript" data-attempt="' + esc(t.attempt) + '">');
  o.push('<h3>Transcript of ' + esc(t.attempt) + ' · ' + esc(t.model) + (t.worker ? ' on ' + esc(t.worker) : '') + ' · ' + AF.badge(t.state) + '</h3>');
  if (t.detail) o.push('<div class="muted t-detail">' + esc(t.detail) + '</div>');
  var facts = [t.entries + ' entries', t.bytes + ' bytes', t.complete ? 'complete' : t.state === 'dispatched' ? 'still running' : 'ends early (the worker stopped before the attempt\'s end arrived)'];
  if (t.missing) facts.push(t.missing + ' entries lost in flight');
  if (t.refused) facts.push(t.refused + ' entries not stored (over the cap)');
  o.push('<div class="muted">' + esc(facts.join(' · ')) + '</div>');
  if (t.note) o.push('<div class="t-note">' + esc(t.note) + '</div>');
  t.events.forEach(function (e) {
    var at = start != null ? '+' + (AF.t(e.at) - start).toFixed(2) + 's' : e.at;
    if (e.type === 'call') {
      var r = e.reply, head = 'call ' + e.call + ' · ' + esc(e.role || '?') + ' <span class="muted">· ' + at;
      if (r) head += ' · ' + secs(r.seconds) + (r.firstTokenSeconds != null ? ' (first token ' + secs(r.firstTokenSeconds) + ')' : '') + ' · ' + r.tokensIn + ' in, ' + r.tokensOut + ' out' + (r.finishReason ? ' · finish: ' + esc(r.finishReason) : '');
      o.push('<div class="t-event t-call" data-seq="' + e.seq + '"><div class="t-head">' + head + '</span></div>');
      if (r && r.finishReason === 'calibration' && !(e.request || []).length) {
        o.push('<div class="muted">the token estimator\'s calibration call, charged to this attempt (its prompt is not kept)</div></div>');
        return;
      }
      if (e.request) {
        var old = e.request.filter(function (i) { return shown[i]; });
        o.push('<div class="muted">request: ' + e.request.length + ' message(s)' + (old.length ? ', ' + old.length + ' as sent before' : '') + (e.maxTokens != null ? ' · max ' + e.maxTokens + ' tokens' : '') + '</div>');
        e.request.forEach(function (i) {
          if (shown[i]) return; shown[i] = 1;
          var m = byIndex[i];
          o.push('<div class="t-msg"><div class="t-role">[' + i + '] ' + esc(m ? m.role : '?') + '</div>' + (m ? pre(m.content) + omitted(m.omitted) : '<div class="muted">(not recorded)</div>') + '</div>');
        });
      }
      if (r) { if (r.error) o.push('<div class="t-omitted">error: ' + esc(r.error) + '</div>'); o.push('<div class="t-role">reply</div>' + pre(r.text, 't-reply') + omitted(r.omitted)); }
      else o.push('<div class="t-omitted">no reply recorded (the worker stopped during this call)</div>');
      o.push('</div>');
    } else if (e.type === 'action' && e.action) {
      var a = e.action;
      o.push('<div class="t-event t-action" data-seq="' + e.seq + '"><div class="t-head">' + esc(a.label) + ' <span class="muted">· ' + at + (a.seconds ? ' · ' + secs(a.seconds) : '') + ' · ' + esc(a.status) + '</span></div>');
      if (a.input) o.push(pre(a.input, 't-in'));
      if (a.output) o.push('<div class="t-role">output</div>' + pre(a.output, 't-out'));
      o.push(omitted(a.omitted) + '</div>');
    } else if (e.type === 'verifier' && e.verifier) {
      var v = e.verifier;
      o.push('<div class="t-event t-verifier ' + (v.passed ? 'passed' : 'failed') + '" data-seq="' + e.seq + '"><div class="t-head">verifier ' + (v.passed ? 'passed' : 'failed') + ' <span class="muted">· ' + at + ' · ' + secs(v.seconds) + (v.summary ? ' · ' + esc(v.summary) : '') + '</span></div>');
      if (v.output) o.push(pre(v.output, 't-out'));
      o.push(omitted(v.omitted) + '</div>');
    } else {
      o.push('<div class="t-event t-note" data-seq="' + e.seq + '"><span class="muted">' + at + '</span> ' + esc(e.text || '') + '</div>');
    }
  });
  o.push('</div>');
  return o.join('');
};
"""#
}
