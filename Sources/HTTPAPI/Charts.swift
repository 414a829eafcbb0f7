/// The drawing code shared by the dashboard and `agentflow report`: plain JavaScript that turns
/// a job, its attempts and its ledger into inline SVG (DAG, Gantt of attempts per worker slot,
/// budget burn against the limit and the deadline) and HTML tables. No libraries, no requests:
/// the report embeds it with the data, so the file works offline.
public enum Charts {
    public static let css = #"""
:root { --fg:#1c2833; --muted:#5d6d7e; --line:#d5dbdb; --bg:#fbfcfc; }
body { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0; }
h1 { font-size: 18px; margin: 0 0 4px; } h2 { font-size: 14px; margin: 18px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; } th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 6px; border-radius: 8px; color: #fff; font-size: 12px; }
.muted { color: var(--muted); } .chart { overflow-x: auto; background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 4px; }
svg text { font: 11px system-ui, sans-serif; fill: var(--fg); }
.legend span { margin-right: 10px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 3px; border-radius: 2px; vertical-align: -1px; }
"""#

    public static let js = #"""
var AF = (function () {
  var colors = { pending: '#aab7b8', ready: '#85c1e9', running: '#f5b041', succeeded: '#52be80', failed: '#e74c3c',
    abandoned: '#cacfd2', queued: '#aeb6bf', dispatched: '#f5b041', cancelled: '#7f8c8d', lost: '#8e44ad',
    deadline_exceeded: '#d35400', budget_exhausted: '#c0392b', infeasible: '#9b59b6' };
  function color(s) { return colors[s] || '#95a5a6'; }
  function esc(s) { return String(s == null ? '' : s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; }); }
  function t(iso) { return iso ? Date.parse(iso) / 1000 : null; }
  function usd(x) { x = x || 0; return '$' + x.toFixed(Math.abs(x) < 0.01 ? 6 : 4); }
  function dur(s) {
    if (s == null || !isFinite(s)) return '–'; if (s < 0) return '-' + dur(-s);
    if (s < 1) return Math.round(s * 1000) + 'ms'; if (s < 60) return s.toFixed(1) + 's';
    var m = Math.floor(s / 60); if (m < 60) return m + 'm' + String(Math.round(s % 60)).padStart(2, '0') + 's';
    return Math.floor(m / 60) + 'h' + String(m % 60).padStart(2, '0') + 'm';
  }
  function badge(s) { return '<span class="badge" style="background:' + color(s) + '">' + esc(s) + '</span>'; }

  // DAG: subtasks in columns by depth (longest path from a root), edges needs → subtask.
  function dag(job) {
    var subs = job.subtasks || [], index = {}, depth = {};
    subs.forEach(function (s, i) { index[s.id] = i; });
    function d(id, stack) {
      if (depth[id] != null) return depth[id];
      var s = subs[index[id]], v = 0;
      (s.needs || []).forEach(function (n) { if (index[n] != null && !stack[n]) { stack[n] = 1; v = Math.max(v, d(n, stack) + 1); } });
      return (depth[id] = v);
    }
    subs.forEach(function (s) { d(s.id, {}); });
    var layers = [];
    subs.forEach(function (s) { (layers[depth[s.id]] = layers[depth[s.id]] || []).push(s); });
    var W = 160, H = 42, gx = 46, gy = 14, rows = Math.max(1, Math.max.apply(null, layers.map(function (l) { return l.length; })));
    var width = layers.length * (W + gx) + gx, height = rows * (H + gy) + gy, pos = {};
    layers.forEach(function (l, li) {
      var off = (rows - l.length) * (H + gy) / 2;
      l.forEach(function (s, ri) { pos[s.id] = { x: gx / 2 + li * (W + gx), y: gy + off + ri * (H + gy) }; });
    });
    var o = ['<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="' + width + '" height="' + height + '" viewBox="0 0 ' + width + ' ' + height + '" style="max-width:100%;height:auto">',
      '<defs><marker id="af-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#7f8c8d"/></marker></defs>'];
    subs.forEach(function (s) {
      (s.needs || []).forEach(function (n) {
        var a = pos[n], b = pos[s.id]; if (!a || !b) return;
        var x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
        o.push('<path class="edge" d="M' + x1 + ',' + y1 + ' C' + mx + ',' + y1 + ' ' + mx + ',' + y2 + ' ' + x2 + ',' + y2 + '" fill="none" stroke="#7f8c8d" marker-end="url(#af-arrow)"/>');
      });
    });
    subs.forEach(function (s) {
      var p = pos[s.id], label = s.id.length > 20 ? s.id.slice(0, 19) + '…' : s.id;
      o.push('<g class="node" data-subtask="' + esc(s.id) + '" data-state="' + esc(s.state) + '"><title>' + esc(s.id + ': ' + s.state + ', ' + s.attempts + ' attempts, ' + s.tokens + ' tokens, ' + usd(s.usd) + (s.model ? ', ' + s.model : '') + (s.note ? '\n' + s.note : '')) + '</title>');
      o.push('<rect x="' + p.x + '" y="' + p.y + '" width="' + W + '" height="' + H + '" rx="6" fill="' + color(s.state) + '" stroke="#566573" stroke-width="0.5"/>');
      o.push('<text x="' + (p.x + 8) + '" y="' + (p.y + 17) + '" style="font-weight:600">' + esc(label) + '</text>');
      o.push('<text x="' + (p.x + 8) + '" y="' + (p.y + 33) + '">' + esc(s.attempts + (s.attempts === 1 ? ' attempt · ' : ' attempts · ') + s.tokens + ' tok') + '</text></g>');
    });
    return o.join('') + '</svg>';
  }

  // Attempts per worker slot: a worker's attempts go to the first of its lanes that is free.
  function lanes(attempts) {
    var byWorker = {};
    attempts.filter(function (a) { return a.dispatchedAt; })
      .sort(function (a, b) { return t(a.dispatchedAt) - t(b.dispatchedAt); })
      .forEach(function (a) {
        var w = a.worker || '?', ls = byWorker[w] = byWorker[w] || [], s = t(a.dispatchedAt), e = a.endedAt ? t(a.endedAt) : Infinity;
        var lane = -1;
        for (var i = 0; i < ls.length; i++) { if (ls[i].end <= s + 1e-6) { lane = i; break; } }
        if (lane < 0) { ls.push({ end: e, items: [a] }); } else { ls[lane].end = e; ls[lane].items.push(a); }
      });
    var rows = [];
    Object.keys(byWorker).sort().forEach(function (w) { byWorker[w].forEach(function (l, i) { rows.push({ label: w + ' · slot ' + (i + 1), items: l.items }); }); });
    return rows;
  }

  function axis(o, x0, x1, left, right, y, from) {
    for (var i = 0; i <= 5; i++) {
      var v = x0 + (x1 - x0) * i / 5, x = left + (right - left) * i / 5;
      o.push('<line x1="' + x + '" y1="' + (y - 4) + '" x2="' + x + '" y2="' + y + '" stroke="#7f8c8d"/>');
      o.push('<text x="' + x + '" y="' + (y + 12) + '" text-anchor="middle" class="muted">' + esc(dur(v - from)) + '</text>');
    }
  }

  // `href(a)`, when given, makes each bar a link (to the attempt's transcript).
  function gantt(job, attempts, now, href) {
    var rows = lanes(attempts || []), start = t(job.submittedAt), end = t(job.endedAt) || now || Date.now() / 1000;
    (attempts || []).forEach(function (a) { if (a.endedAt) end = Math.max(end, t(a.endedAt)); });
    var deadline = t(job.deadline), span = Math.max(end - start, 0.001);
    var L = 130, R = 860, rh = 20, top = 8, height = top + Math.max(rows.length, 1) * rh + 26;
    function x(v) { return L + (R - L) * (v - start) / span; }
    var o = ['<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="880" height="' + height + '">'];
    if (!rows.length) o.push('<text x="' + L + '" y="' + (top + 14) + '" class="muted">no attempt dispatched yet</text>');
    rows.forEach(function (r, i) {
      var y = top + i * rh;
      o.push('<text x="4" y="' + (y + 14) + '">' + esc(r.label) + '</text>');
      o.push('<line x1="' + L + '" y1="' + (y + rh) + '" x2="' + R + '" y2="' + (y + rh) + '" stroke="#eaeded"/>');
      r.items.forEach(function (a) {
        var s = t(a.dispatchedAt), e = a.endedAt ? t(a.endedAt) : end, w = Math.max(2, x(e) - x(s));
        var tip = a.id + '\n' + a.model + ' · ' + a.state + (a.worker ? ' on ' + a.worker : '') + '\n' + a.tokens + ' tokens (' + a.tokensIn + ' in, ' + a.tokensOut + ' out) of ' + a.tokenCap + ' · ' + usd(a.usd) + '\n' + dur(e - s) + (a.detail ? '\n' + a.detail : '');
        if (href) o.push('<a class="bar-link" href="' + esc(href(a)) + '" data-attempt="' + esc(a.id) + '" data-subtask="' + esc(a.subtask) + '" data-n="' + a.n + '">');
        o.push('<g class="bar" data-attempt="' + esc(a.id) + '" data-state="' + esc(a.state) + '"><title>' + esc(tip + (href ? '\n(click for the transcript)' : '')) + '</title><rect x="' + x(s).toFixed(1) + '" y="' + (y + 3) + '" width="' + w.toFixed(1) + '" height="' + (rh - 6) + '" rx="3" fill="' + color(a.state) + '"/>');
        if (w > 60) o.push('<text x="' + (x(s) + 4).toFixed(1) + '" y="' + (y + 14) + '" style="fill:#fff">' + esc(a.subtask + '#' + a.n) + '</text>');
        o.push('</g>' + (href ? '</a>' : ''));
      });
    });
    var yAxis = top + Math.max(rows.length, 1) * rh + 4;
    o.push('<line x1="' + L + '" y1="' + yAxis + '" x2="' + R + '" y2="' + yAxis + '" stroke="#7f8c8d"/>');
    axis(o, start, start + span, L, R, yAxis + 4, start);
    if (deadline && deadline <= start + span) o.push('<line x1="' + x(deadline) + '" y1="0" x2="' + x(deadline) + '" y2="' + yAxis + '" stroke="#c0392b" stroke-dasharray="4 3"/>');
    return o.join('') + '</svg>';
  }

  // Cumulative spend from ledger lines: [{t, usd, tokens}], starting at submission.
  function burnPoints(job, ledger) {
    var p = [{ t: t(job.submittedAt), usd: 0, tokens: 0 }], u = 0, k = 0;
    (ledger || []).slice().sort(function (a, b) { return a.seq - b.seq; }).forEach(function (l) {
      u += l.usd; k += l.tokensIn + l.tokensOut; p.push({ t: t(l.at), usd: u, tokens: k });
    });
    return p;
  }

  // Spend over time against the limit (horizontal) and the deadline (vertical). `zoom` scales
  // the axes to the run and the spend instead, noting the limit and deadline when off scale.
  function burn(job, points, now, zoom) {
    var b = job.budget, byUSD = b.limitUSD != null, key = byUSD ? 'usd' : 'tokens', limit = byUSD ? b.limitUSD : b.limitTokens;
    var start = t(job.submittedAt), deadline = t(job.deadline), last = t(job.endedAt) || now || Date.now() / 1000;
    points = (points || []).slice();
    var spent = byUSD ? b.spentUSD : b.spentTokens, reserved = byUSD ? b.reservedUSD : b.reservedTokens;
    if (!points.length || points[points.length - 1][key] < spent) points.push({ t: last, usd: b.spentUSD, tokens: b.spentTokens });
    var x1 = zoom ? Math.max(last, start + 0.001) : Math.max(deadline || last, last);
    var top = (zoom ? Math.max(spent + reserved, 1e-12) : Math.max(limit || 0, spent + reserved, 1e-12)) * 1.08;
    var L = 70, R = 860, T = 10, B = 190;
    function x(v) { return L + (R - L) * (v - start) / Math.max(x1 - start, 0.001); }
    function y(v) { return B - (B - T) * v / top; }
    function fmt(v) { return byUSD ? usd(v) : String(Math.round(v)); }
    var o = ['<svg class="burn" xmlns="http://www.w3.org/2000/svg" width="880" height="222">'];
    for (var i = 0; i <= 4; i++) {
      var v = top * i / 4;
      o.push('<line x1="' + L + '" y1="' + y(v) + '" x2="' + R + '" y2="' + y(v) + '" stroke="#eaeded"/><text x="' + (L - 4) + '" y="' + (y(v) + 4) + '" text-anchor="end" class="muted">' + esc(fmt(v)) + '</text>');
    }
    o.push('<line x1="' + L + '" y1="' + B + '" x2="' + R + '" y2="' + B + '" stroke="#7f8c8d"/>');
    axis(o, start, x1, L, R, B + 4, start);
    if (zoom && limit != null && limit > top) o.push('<text x="' + (R - 4) + '" y="' + (T + 12) + '" text-anchor="end" style="fill:#c0392b">limit ' + esc(fmt(limit)) + ' is off the scale (' + (100 * spent / limit).toFixed(1) + '% spent)</text>');
    if (zoom && deadline && deadline > x1) o.push('<text x="' + (R - 4) + '" y="' + (T + 26) + '" text-anchor="end" style="fill:#d35400">deadline ' + esc(dur(deadline - start)) + ' after submission, ' + esc(dur(deadline - last)) + ' after the last point</text>');
    if (limit != null && limit <= top) o.push('<line class="limit" x1="' + L + '" y1="' + y(limit) + '" x2="' + R + '" y2="' + y(limit) + '" stroke="#c0392b" stroke-dasharray="6 4"/><text x="' + (R - 4) + '" y="' + (y(limit) - 4) + '" text-anchor="end" style="fill:#c0392b">limit ' + esc(fmt(limit)) + '</text>');
    if (deadline && deadline <= x1) o.push('<line class="deadline" x1="' + x(deadline) + '" y1="' + T + '" x2="' + x(deadline) + '" y2="' + B + '" stroke="#d35400" stroke-dasharray="6 4"/><text x="' + (x(deadline) - 4) + '" y="' + (B - 6) + '" text-anchor="end" style="fill:#d35400">deadline</text>');
    var d = '', prev = null;
    points.forEach(function (p) {
      var px = x(p.t).toFixed(1), py = y(p[key]).toFixed(1);
      d += prev == null ? 'M' + px + ',' + py : 'H' + px + 'V' + py; prev = p;
    });
    if (prev) d += 'H' + x(last).toFixed(1);
    o.push('<path class="spent" d="' + d + '" fill="none" stroke="#2874a6" stroke-width="2"/>');
    if (reserved > 0) o.push('<line x1="' + x(last) + '" y1="' + y(spent) + '" x2="' + x(last) + '" y2="' + y(spent + reserved) + '" stroke="#f5b041" stroke-width="6"><title>reserved ' + esc(fmt(reserved)) + '</title></line>');
    o.push('<text x="' + (L + 6) + '" y="' + (T + 12) + '" style="fill:#2874a6">spent ' + esc(fmt(spent)) + (limit != null ? ' of ' + esc(fmt(limit)) + ' (' + (100 * spent / limit).toFixed(1) + '%)' : '') + '</text>');
    return o.join('') + '</svg>';
  }

  function table(head, rows, numeric) {
    var o = ['<table><tr>'];
    head.forEach(function (h, i) { o.push('<th' + (numeric && numeric[i] ? ' class="num"' : '') + '>' + esc(h) + '</th>'); });
    o.push('</tr>');
    rows.forEach(function (r) { o.push('<tr>'); r.forEach(function (c, i) { o.push('<td' + (numeric && numeric[i] ? ' class="num"' : '') + '>' + c + '</td>'); }); o.push('</tr>'); });
    return o.join('') + '</table>';
  }

  function subtaskTable(job) {
    return table(['subtask', 'state', 'model', 'attempts', 'tokens', 'usd', 'agent/corrector/summarizer', 'last attempt'],
      job.subtasks.map(function (s) {
        var r = {}; (s.roles || []).forEach(function (x) { r[x.role] = x.tokens; });
        return [esc(s.id), badge(s.state), esc(s.model || '–'), s.attempts, s.tokens, usd(s.usd), (r.agent || 0) + '/' + (r.corrector || 0) + '/' + (r.summarizer || 0), esc(s.note)];
      }), [0, 0, 0, 1, 1, 1, 0, 0]);
  }

  function roleTable(ledger) {
    var by = {};
    (ledger || []).forEach(function (l) { var k = l.role + ' ' + l.model; var e = by[k] = by[k] || { role: l.role, model: l.model, tin: 0, tout: 0, usd: 0 }; e.tin += l.tokensIn; e.tout += l.tokensOut; e.usd += l.usd; });
    return table(['role', 'model', 'tokens in', 'tokens out', 'usd'], Object.keys(by).sort().map(function (k) { var e = by[k]; return [esc(e.role), esc(e.model), e.tin, e.tout, usd(e.usd)]; }), [0, 0, 1, 1, 1]);
  }

  function attemptTable(attempts) {
    return table(['attempt', 'model', 'worker', 'ended', 'tokens', 'usd', 'time', 'how it ended'], (attempts || []).map(function (a) {
      var s = t(a.dispatchedAt), e = t(a.endedAt);
      return [esc(a.id), esc(a.model), esc(a.worker || '–'), badge(a.state), a.tokens + ' / ' + a.tokenCap, usd(a.usd), s && e ? dur(e - s) : '–', esc(a.detail)];
    }), [0, 0, 0, 0, 1, 1, 1, 0]);
  }

  function legend(states) {
    return '<div class="legend">' + states.map(function (s) { return '<span><i style="background:' + color(s) + '"></i>' + esc(s) + '</span>'; }).join('') + '</div>';
  }

  return { esc: esc, t: t, usd: usd, dur: dur, badge: badge, color: color, dag: dag, gantt: gantt, burn: burn, burnPoints: burnPoints,
    subtaskTable: subtaskTable, roleTable: roleTable, attemptTable: attemptTable, legend: legend, lanes: lanes };
})();
"""#
}
