/// The dashboard served at `/`: one page, no external resources (the machines it runs on may be
/// offline), drawn with the same chart code as `agentflow report`. It polls the job list and the
/// workers every two seconds and follows the selected job through its events stream: DAG
/// coloured by state, a live Gantt of attempts per worker slot (model, outcome and tokens on
/// hover), the budget burn against the limit and the deadline, the workers with their slots and
/// breakers, and the queue. Clicking an attempt's bar opens its transcript (a link's
/// `?job=J&transcript=SUBTASK%23N` opens it too). With bearer tokens on, it asks for one (or takes it from a link's
/// `#token=` fragment) and keeps it in the browser.
public enum DashboardPage {
    public static let html = """
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>AgentFlow</title>
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>\(Charts.css)\(TranscriptView.css)\(css)</style></head>
    <body>
    <header><b>AgentFlow</b> <span id="conn" class="muted">connecting…</span>
    <form id="tokenform" hidden><input id="token" type="password" placeholder="bearer token" size="32"> <button>use token</button></form></header>
    <div id="layout">
    <aside>
    <h2>Jobs</h2><div id="jobs" class="panel">loading…</div>
    <h2>Queue</h2><div id="queue" class="panel"></div>
    <h2>Workers</h2><div id="workers" class="panel"></div>
    </aside>
    <main>
    <div id="job-head"><span class="muted">no job selected</span></div>
    <h2>DAG</h2><div class="chart" id="dag"></div>
    <h2>Attempts per worker slot</h2><div class="chart" id="gantt"></div><div id="legend"></div>
    <section id="transcript-panel" hidden><button class="t-close" id="transcript-close">close</button><h2>Transcript</h2><div id="transcript"></div></section>
    <h2>Budget burn against the limit and the deadline</h2><div class="chart" id="burn"></div>
    <h2>Budget burn so far</h2><div class="chart" id="burn-zoom"></div>
    </main></div>
    <script>\(Charts.js)\(TranscriptView.js)\(script)</script>
    </body></html>
    """

    static let css = #"""
    header { padding: 8px 16px; background: #17202a; color: #fff; display: flex; gap: 16px; align-items: center; }
    header .muted { color: #aeb6bf; }
    #layout { display: grid; grid-template-columns: minmax(380px, 34%) 1fr; gap: 16px; padding: 0 16px 16px; }
    .panel { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 4px; overflow-x: auto; }
    #jobs tr[data-job] { cursor: pointer; } #jobs tr.selected { background: #eaf2f8; }
    .bar-outer { display: inline-block; width: 70px; height: 8px; background: #eaeded; border-radius: 4px; vertical-align: middle; overflow: hidden; }
    .bar-inner { display: block; height: 8px; }
    .slot { display: inline-block; width: 14px; height: 14px; margin-right: 3px; border-radius: 3px; vertical-align: middle; }
    .worker { padding: 4px 2px; border-bottom: 1px solid var(--line); } .problem { color: #c0392b; font-size: 12px; }
    #job-head { margin-top: 14px; } #job-head h1 { display: inline; margin-right: 8px; }
    """#

    static let script = #"""
    (function () {
      var token = localStorage.getItem('agentflow-token') || '';
      // A link may carry the token in its fragment (`/#token=…`), which browsers never send: it is
      // kept like a typed one and taken out of the address bar and history.
      var fromLink = /(?:^#|&)token=([^&]*)/.exec(location.hash);
      if (fromLink) {
        token = decodeURIComponent(fromLink[1]); localStorage.setItem('agentflow-token', token);
        history.replaceState(null, '', location.pathname + location.search);
      }
      // EventSource cannot send an Authorization header: the events stream gets the token from a
      // cookie the server accepts for reads only (never from the URL, where logs would keep it).
      function tokenCookie() {
        document.cookie = 'agentflow_token=' + encodeURIComponent(token) + '; path=/api/v1/; SameSite=Strict' +
          (location.protocol === 'https:' ? '; Secure' : '') + (token ? '' : '; max-age=0');
      }
      tokenCookie();
      var st = { jobs: [], workers: [], selected: null, job: null, attempts: {}, points: [], es: null, refreshAt: 0, transcript: null };
      function $(id) { return document.getElementById(id); }
      function api(path, opts) {
        opts = opts || {}; opts.headers = token ? { Authorization: 'Bearer ' + token } : {};
        return fetch(path, opts).then(function (r) {
          if (r.status === 401 || r.status === 403) { $('tokenform').hidden = false; $('conn').textContent = 'a token is needed'; throw new Error('auth'); }
          if (!r.ok) throw new Error(path + ': ' + r.status);
          return r.json();
        });
      }
      $('tokenform').addEventListener('submit', function (e) {
        e.preventDefault(); token = $('token').value.trim(); localStorage.setItem('agentflow-token', token); tokenCookie(); $('tokenform').hidden = true; poll(); if (st.selected) follow(st.selected);
      });
      function now() { return Date.now() / 1000; }
      function progress(j) { var done = j.subtasks.filter(function (s) { return s.state === 'succeeded'; }).length; return [done, j.subtasks.length]; }
      function burnFraction(j) {
        var b = j.budget;
        if (b.limitUSD != null && b.limitUSD > 0) return (b.spentUSD + b.reservedUSD) / b.limitUSD;
        if (b.limitTokens != null && b.limitTokens > 0) return (b.spentTokens + b.reservedTokens) / b.limitTokens;
        return 0;
      }
      function timeLeft(j) { return ['queued', 'running'].indexOf(j.state) >= 0 ? AF.dur(AF.t(j.deadline) - now()) : '–'; }
      function meter(f, color) { return '<span class="bar-outer"><span class="bar-inner" style="width:' + Math.min(100, 100 * f).toFixed(0) + '%;background:' + color + '"></span></span>'; }

      function renderJobs() {
        if (!st.jobs.length) { $('jobs').innerHTML = '<span class="muted">no jobs yet</span>'; return; }
        var rows = st.jobs.map(function (j) {
          var p = progress(j), f = burnFraction(j);
          return '<tr data-job="' + AF.esc(j.id) + '"' + (j.id === st.selected ? ' class="selected"' : '') + '><td>' + AF.esc(j.id) + '<br><span class="muted">' + AF.esc(j.workflow) + '</span></td><td>' + AF.badge(j.state) +
            '</td><td>' + meter(p[1] ? p[0] / p[1] : 0, '#52be80') + ' ' + p[0] + '/' + p[1] + '</td><td>' + meter(f, f > 0.9 ? '#c0392b' : '#2874a6') + ' ' + (100 * f).toFixed(0) + '%</td><td class="num">' + timeLeft(j) + '</td></tr>';
        });
        $('jobs').innerHTML = '<table><tr><th>job</th><th>state</th><th>progress</th><th>budget burn</th><th class="num">time left</th></tr>' + rows.join('') + '</table>';
        Array.prototype.forEach.call($('jobs').querySelectorAll('tr[data-job]'), function (tr) { tr.onclick = function () { follow(tr.getAttribute('data-job')); }; });
      }

      function renderQueue() {
        var queuedJobs = st.jobs.filter(function (j) { return j.state === 'queued'; });
        var waiting = Object.keys(st.attempts).map(function (k) { return st.attempts[k]; }).filter(function (a) { return a.state === 'queued'; });
        var o = [];
        o.push('<div>' + queuedJobs.length + ' job(s) waiting to start</div>');
        queuedJobs.forEach(function (j) { o.push('<div class="muted">' + AF.esc(j.id + ' (' + j.workflow + ')' + (j.reason ? ': ' + j.reason : '')) + '</div>'); });
        if (st.selected) o.push('<div>' + waiting.length + ' attempt(s) of ' + AF.esc(st.selected) + ' reserved and waiting for a slot' + (waiting.length ? ': ' + waiting.map(function (a) { return AF.esc(a.subtask + '#' + a.n + ' (' + a.model + ')'); }).join(', ') : '') + '</div>');
        $('queue').innerHTML = o.join('');
      }

      function renderWorkers() {
        if (!st.workers.length) { $('workers').innerHTML = '<span class="muted">no workers registered</span>'; return; }
        $('workers').innerHTML = st.workers.map(function (w) {
          var slots = '';
          for (var i = 0; i < w.slots; i++) {
            var c = w.state !== 'alive' ? '#cacfd2' : i < w.busy ? '#f5b041' : '#52be80';
            slots += '<span class="slot" title="' + (w.state !== 'alive' ? w.state : i < w.busy ? 'busy' : 'free') + '" style="background:' + c + '"></span>';
          }
          var breaker = w.state === 'suspended' ? 'breaker open' : w.problem ? 'breaker closed, last failure' : 'breaker closed';
          return '<div class="worker" data-worker="' + AF.esc(w.name) + '"><b>' + AF.esc(w.name) + '</b> ' + AF.badge(w.state) + ' <span class="muted">' + AF.esc(w.model) + ' · gpus ' + AF.esc(w.gpus.join(',') || '–') + '</span><br>' +
            slots + ' <span class="muted">' + w.busy + '/' + w.slots + ' busy · ' + breaker + '</span>' + (w.problem ? '<div class="problem">' + AF.esc(w.problem) + '</div>' : '') + '</div>';
        }).join('');
      }

      function renderJob() {
        var j = st.job; if (!j) return;
        var b = j.budget, p = progress(j), list = Object.keys(st.attempts).map(function (k) { return st.attempts[k]; });
        $('job-head').innerHTML = '<h1 id="job-id">' + AF.esc(j.id) + '</h1>' + AF.badge(j.state) + ' <span class="muted">' + AF.esc(j.workflow) + ' · planner ' + AF.esc(j.planner) + '</span><br>' +
          p[0] + ' of ' + p[1] + ' subtasks passed · tokens ' + b.spentTokens + (b.limitTokens != null ? ' / ' + b.limitTokens : '') + ' · usd ' + AF.usd(b.spentUSD) + (b.limitUSD != null ? ' / ' + AF.usd(b.limitUSD) : '') +
          ' · reserved ' + b.reservedTokens + ' tokens · time left ' + timeLeft(j) + (j.reason ? '<br><span class="muted">' + AF.esc(j.reason) + '</span>' : '');
        $('dag').innerHTML = AF.dag(j);
        var end = AF.t(j.endedAt) || now();
        $('gantt').innerHTML = AF.gantt(j, list, end, function (a) {
          return '?job=' + encodeURIComponent(j.id) + '&transcript=' + encodeURIComponent(a.subtask + '#' + a.n);
        });
        $('legend').innerHTML = AF.legend(['dispatched', 'succeeded', 'failed', 'cancelled', 'lost']);
        var pts = st.points.slice().sort(function (a, b) { return a.t - b.t; });
        $('burn').innerHTML = AF.burn(j, pts, end);
        $('burn-zoom').innerHTML = AF.burn(j, pts, end, true);
        renderQueue();
      }

      function refreshJob() {
        if (!st.selected) return;
        var id = st.selected;
        api('/api/v1/jobs/' + encodeURIComponent(id)).then(function (j) { if (st.selected === id) { st.job = j; renderJob(); } }).catch(function () {});
      }
      function soon() { var t = now(); if (t - st.refreshAt > 0.5) { st.refreshAt = t; setTimeout(refreshJob, 300); } }

      // An attempt's transcript, opened from its bar (or a link's `transcript=SUBTASK#N`); it is
      // fetched again when the attempt changes while open.
      function openTranscript(job, subtask, n) {
        var key = subtask + '#' + n;
        st.transcript = { job: job, key: key, subtask: subtask, n: n };
        var params = new URLSearchParams(location.search); params.set('transcript', key);
        history.replaceState(null, '', '?' + params.toString());
        $('transcript-panel').hidden = false;
        api('/api/v1/jobs/' + encodeURIComponent(job) + '/attempts/' + encodeURIComponent(subtask) + '/' + n + '/transcript').then(function (t) {
          if (st.transcript && st.transcript.key === key) $('transcript').innerHTML = AF.transcript(t);
        }).catch(function (e) { if (st.transcript && st.transcript.key === key) $('transcript').textContent = 'cannot read the transcript: ' + e.message; });
      }
      function closeTranscript() {
        st.transcript = null; $('transcript-panel').hidden = true; $('transcript').innerHTML = '';
        var params = new URLSearchParams(location.search); params.delete('transcript');
        history.replaceState(null, '', '?' + params.toString());
      }
      $('transcript-close').addEventListener('click', closeTranscript);
      $('gantt').addEventListener('click', function (e) {
        var link = e.target.closest ? e.target.closest('a.bar-link') : null;
        if (!link || !st.selected) return;
        e.preventDefault();
        openTranscript(st.selected, link.getAttribute('data-subtask'), +link.getAttribute('data-n'));
      });

      function follow(id) {
        if (st.es) st.es.close();
        if (st.transcript && st.transcript.job !== id) closeTranscript();
        st.selected = id; st.job = null; st.attempts = {}; st.points = [];
        var params = new URLSearchParams(location.search); params.set('job', id);
        history.replaceState(null, '', '?' + params.toString());
        var wanted = params.get('transcript'), hash = wanted ? wanted.lastIndexOf('#') : -1;
        if (hash > 0 && !st.transcript) openTranscript(id, wanted.slice(0, hash), +wanted.slice(hash + 1));
        renderJobs();
        api('/api/v1/jobs/' + encodeURIComponent(id) + '/ledger').then(function (l) {
          if (st.selected !== id) return;
          var j = st.job || st.jobs.filter(function (x) { return x.id === id; })[0];
          if (j) { st.points = AF.burnPoints(j, l.lines).concat(st.points); renderJob(); }
        }).catch(function () {});
        var q = [], stream = new URLSearchParams(location.search).get('stream');
        if (stream) q.push('maxSeconds=' + encodeURIComponent(stream));
        var es = new EventSource('/api/v1/jobs/' + encodeURIComponent(id) + '/events' + (q.length ? '?' + q.join('&') : ''));
        st.es = es;
        es.addEventListener('snapshot', function (e) {
          var d = JSON.parse(e.data); st.job = d.job; st.attempts = {};
          d.attempts.forEach(function (a) { st.attempts[a.id] = a; });
          $('conn').textContent = 'live'; renderJob();
        });
        es.addEventListener('attempt', function (e) {
          var d = JSON.parse(e.data); st.attempts[d.attempt.id] = d.attempt; soon(); renderJob();
          var o = st.transcript;
          if (o && o.job === id && d.attempt.subtask === o.subtask && d.attempt.n === o.n) openTranscript(id, o.subtask, o.n);
        });
        es.addEventListener('budget', function (e) {
          var d = JSON.parse(e.data); if (!st.job) return;
          st.job.budget = d.budget; st.points.push({ t: AF.t(d.at), usd: d.budget.spentUSD, tokens: d.budget.spentTokens }); renderJob();
        });
        es.addEventListener('job', function (e) { var d = JSON.parse(e.data); if (st.job) { st.job.state = d.state; st.job.reason = d.reason; } soon(); renderJob(); });
        es.addEventListener('end', function () { es.close(); $('conn').textContent = 'job ended'; refreshJob(); });
        es.onmessage = null;
        ['attempt', 'budget', 'job'].forEach(function (k) { es.addEventListener(k, function () { $('conn').textContent = 'live'; }); });
        es.onerror = function () { if (es.readyState !== 2) $('conn').textContent = 'reconnecting to the events stream…'; };
      }

      function poll() {
        api('/api/v1/jobs?limit=25').then(function (p) {
          st.jobs = p.jobs; renderJobs(); renderQueue();
          if (!st.selected && st.jobs.length) {
            var want = new URLSearchParams(location.search).get('job');
            var running = st.jobs.filter(function (j) { return j.state === 'running'; })[0];
            follow(want || (running || st.jobs[0]).id);
          }
          if ($('conn').textContent === 'connecting…') $('conn').textContent = 'connected';
        }).catch(function (e) { if (e.message !== 'auth') $('conn').textContent = 'coordinator unreachable'; });
        api('/api/v1/workers').then(function (w) { st.workers = w.workers; renderWorkers(); }).catch(function () {});
      }
      poll();
      setInterval(poll, 2000);
      setInterval(function () { if (st.job && ['queued', 'running'].indexOf(st.job.state) >= 0) renderJob(); }, 1000);
      // An open transcript of a running attempt grows: read it again every few seconds.
      setInterval(function () {
        var o = st.transcript, a = o && st.attempts[o.job + '/' + o.key];
        if (a && a.state === 'dispatched') openTranscript(o.job, o.subtask, o.n);
      }, 3000);
    })();
    """#
}
