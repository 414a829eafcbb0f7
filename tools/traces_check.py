#!/usr/bin/env python3
"""Traces end to end: a real coordinator and a real worker process (real ZeroMQ, a real SQLite
file) with `telemetry: {otlp: ...}` send their spans to an OTLP/HTTP receiver that decodes them
with the `opentelemetry-proto` package's messages (tools/otlp_receiver.py); the model is the
scripted OpenAI server (tools/fake_openai_server.py), which writes correct code every time.

Three jobs run at once, each with a subtask that passes on its first attempt and one whose
verifier never passes (two failed attempts); then one job whose coordinator is killed (SIGKILL)
mid-attempt and started again. For every job the check demands one trace whose
tree is job → subtask → attempt → model call / verifier: each parent exists, each span names
its job/subtask/attempt, the attempt spans come from the coordinator and the model-call spans
from the worker (the trace context crossed the wire), tokens and cost on the spans add up to
what the coordinator's store says (`agentflow attempts JOB --json`), statuses say what passed.
A second coordinator without `telemetry:` sends nothing (traces are off by default).

    usage: python tools/traces_check.py path/to/agentflow   (tools/traces-check.sh runs it)
"""
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from otlp_receiver import Receiver  # noqa: E402

BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".build/debug/agentflow")
TOOLS = os.path.dirname(os.path.abspath(__file__))
PRICE_IN, PRICE_OUT = 0.4, 1.6  # USD per million tokens
JOBS = 3
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print(f"[traces] FAIL: {what}", file=sys.stderr)
    return condition


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agentflow(*args, timeout=60):
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"agentflow {' '.join(args)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r.stdout


def wait_until(timeout, what, condition):
    end = time.time() + timeout
    while time.time() < end:
        if condition():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def write_cluster(path, db, otlp, fake_url):
    telemetry = f"telemetry: {{otlp: {otlp}}}\n" if otlp else ""
    with open(path, "w") as f:
        f.write(f"""coordinator:
  workers: tcp://127.0.0.1:{free_port()}
  clients: tcp://127.0.0.1:{free_port()}
  database: {db}
  heartbeat: 1s
{telemetry}models:
  - {{name: smollm2-135m, price: {{input: {PRICE_IN}, output: {PRICE_OUT}}}, context: 8192}}
workers:
  - {{name: gpu0, model: smollm2-135m, slots: 4, backend: {{kind: openai, url: "{fake_url}", served: canned}}}}
""")


WORKFLOW = r"""name: traced
budget: {tokens: 200000}
deadline: 3m
scaffold: {maxTurns: 1}
subtasks:
  - id: add
    prompt: "Write a Python function add(a, b) that returns a + b."
    verify: {python: "from solution import add\nassert add(2, 3) == 5"}
    maxTokens: 8000
    maxAttempts: 1
  - id: never
    prompt: "Write a Python function add(a, b) that returns a + b."
    verify: {python: "from solution import add\nassert add(2, 3) == 6, 'the verifier wants 6'"}
    maxTokens: 8000
    maxAttempts: 2
"""


# One subtask whose check takes 4 s: the coordinator is killed while it runs.
SLOW_WORKFLOW = r"""name: restarted
budget: {tokens: 100000}
deadline: 3m
scaffold: {maxTurns: 1}
subtasks:
  - id: slow
    prompt: "Write a Python function add(a, b) that returns a + b."
    verify: {python: "import time\ntime.sleep(4)\nfrom solution import add\nassert add(2, 3) == 5"}
    maxTokens: 8000
    maxAttempts: 1
"""


def start(args, log):
    return subprocess.Popen([BIN, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def run_cluster(d, name, otlp, fake_url, jobs, workflow=WORKFLOW, midway=None):
    """Starts a coordinator and worker gpu0, submits `jobs` copies of `workflow` at once, calls
    `midway(procs, cluster, ids, log)` (it may replace the coordinator, procs[0]), waits for all
    to end and stops both (gracefully: the coordinator sends what it holds). Returns the job
    ids, their attempts and reports as the store has them, and the cluster file."""
    cluster = os.path.join(d, f"{name}.yaml")
    write_cluster(cluster, os.path.join(d, f"{name}.db"), otlp, fake_url)
    wf = os.path.join(d, f"{name}-wf.yaml")
    with open(wf, "w") as f:
        f.write(workflow)
    log = open(os.path.join(d, f"{name}.log"), "w")
    procs = [start(["coordinator", "--cluster", cluster], log)]
    try:
        procs.append(start(["worker", "--name", "gpu0", "--cluster", cluster], log))
        wait_until(30, "the worker to register", lambda: any(
            w.get("state") == "alive" for w in json.loads(agentflow("workers", "--json", "--cluster", cluster) or "[]")))
        ids = [json.loads(agentflow("submit", wf, "--json", "--cluster", cluster))["id"] for _ in range(jobs)]
        if midway:
            midway(procs, cluster, ids, log)
        ended = lambda i: json.loads(agentflow("status", i, "--json", "--cluster", cluster))["state"] not in ("queued", "running")
        wait_until(120, "the jobs to end", lambda: all(ended(i) for i in ids))
        attempts = {i: json.loads(agentflow("attempts", i, "--json", "--cluster", cluster)) for i in ids}
        reports = {i: json.loads(agentflow("status", i, "--json", "--cluster", cluster)) for i in ids}
    finally:
        stop(procs)
        log.close()
    return ids, attempts, reports, cluster


KILLED = []


def kill_coordinator_mid_check(procs, cluster, ids, log):
    """Once the attempt's solution ran (its model call is over, its 4 s check runs), the
    coordinator is killed (SIGKILL: nothing flushed) and a new one started on the same database."""
    def solution_ran():
        t = json.loads(agentflow("attempts", ids[0], "--transcript", "slow#1", "--json", "--cluster", cluster))
        return any(e.get("type") == "action" for e in t.get("events", []))
    wait_until(60, "the attempt's solution to run", solution_ran)
    KILLED.append(time.time())
    procs[0].kill()
    procs[0].wait(timeout=10)
    procs[0] = start(["coordinator", "--cluster", cluster], log)


def check_job(job, spans, attempts, report, subtasks_expected=("add", "never"), job_ok=False):
    by_id = {s["span_id"]: s for s in spans}
    traces = {s["trace_id"] for s in spans}
    check(len(traces) == 1, f"{job}: its spans are in one trace (got {len(traces)})")
    roots = [s for s in spans if not s["parent_span_id"]]
    check(len(roots) == 1 and roots[0]["name"] == "agentflow.job", f"{job}: one root, the job span (got {[r['name'] for r in roots]})")
    for s in spans:
        if s["parent_span_id"]:
            check(s["parent_span_id"] in by_id, f"{job}: {s['name']}'s parent {s['parent_span_id']} was received")
        check(s["end"] >= s["start"] > 0, f"{job}: {s['name']} has a start and an end")
    if not roots:
        return
    root = roots[0]
    a = root["attributes"]
    check(a.get("agentflow.job.state") == report["state"], f"{job}: job span state {a.get('agentflow.job.state')} = {report['state']}")
    want = "STATUS_CODE_OK" if job_ok else "STATUS_CODE_ERROR"
    check(root["status"]["code"] == want, f"{job}: the job span's status is {want} (got {root['status']['code']})")
    check(root["resource"].get("service.instance.id") == "coordinator", f"{job}: the job span comes from the coordinator")

    subtasks = {s["attributes"].get("agentflow.subtask"): s for s in spans if s["name"] == "agentflow.subtask"}
    check(set(subtasks) == set(subtasks_expected), f"{job}: a span per subtask (got {sorted(subtasks)})")
    for s in subtasks.values():
        check(s["parent_span_id"] == root["span_id"], f"{job}: subtask {s['attributes'].get('agentflow.subtask')} is a child of the job")
    if "add" in subtasks:
        check(subtasks["add"]["status"]["code"] == "STATUS_CODE_OK", f"{job}: subtask add passed")

    attempt_spans = {s["attributes"].get("agentflow.attempt"): s for s in spans if s["name"] == "agentflow.attempt"}
    stored = {x["id"]: x for x in attempts if x.get("dispatchedAt")}
    check(set(attempt_spans) == set(stored), f"{job}: a span per dispatched attempt ({sorted(attempt_spans)} vs {sorted(stored)})")
    if "never" in subtasks_expected:
        check(len([k for k in attempt_spans if k.endswith("never#1") or k.endswith("never#2")]) == 2, f"{job}: both attempts of never")
    total_tokens = 0
    for aid, s in attempt_spans.items():
        sub = s["attributes"].get("agentflow.subtask")
        check(sub in subtasks and s["parent_span_id"] == subtasks[sub]["span_id"], f"{aid}: child of its subtask's span")
        check(s["resource"].get("service.instance.id") == "coordinator", f"{aid}: attempt span from the coordinator")
        st = stored.get(aid)
        if not st:
            continue
        check(s["attributes"].get("agentflow.tokens.input") == st["tokensIn"], f"{aid}: tokens.input = the store's {st['tokensIn']}")
        check(s["attributes"].get("agentflow.tokens.output") == st["tokensOut"], f"{aid}: tokens.output = the store's {st['tokensOut']}")
        check(math.isclose(s["attributes"].get("agentflow.cost.usd", -1), st["usd"], rel_tol=1e-6, abs_tol=1e-12),
              f"{aid}: cost.usd = the store's {st['usd']}")
        check(s["attributes"].get("agentflow.worker") == "gpu0", f"{aid}: ran on gpu0")
        want = "STATUS_CODE_OK" if st["state"] == "succeeded" else "STATUS_CODE_ERROR"
        check(s["status"]["code"] == want, f"{aid}: status {s['status']['code']} for state {st['state']}")
        total_tokens += st["tokensIn"] + st["tokensOut"]

        children = [c for c in spans if c["parent_span_id"] == s["span_id"]]
        calls = [c for c in children if c["name"] == "chat smollm2-135m"]
        verifiers = [c for c in children if c["name"] == "agentflow.verifier"]
        check(len(calls) >= 1, f"{aid}: at least one model-call span under the attempt (got {len(calls)})")
        check(len(verifiers) >= 1, f"{aid}: a verifier span under the attempt (got {len(verifiers)})")
        actions = [c for c in children if c["name"] == "agentflow.action"]
        check(any(x["attributes"].get("agentflow.action.label") == "solution.py" for x in actions), f"{aid}: the run of solution.py is an action span")
        tin = sum(c["attributes"].get("gen_ai.usage.input_tokens", 0) for c in calls)
        tout = sum(c["attributes"].get("gen_ai.usage.output_tokens", 0) for c in calls)
        check((tin, tout) == (st["tokensIn"], st["tokensOut"]), f"{aid}: the calls' tokens {(tin, tout)} add up to the attempt's")
        cost = sum(c["attributes"].get("agentflow.cost.usd", 0) for c in calls)
        check(math.isclose(cost, (tin * PRICE_IN + tout * PRICE_OUT) / 1e6, rel_tol=1e-9), f"{aid}: the calls' cost is their tokens at the model's prices")
        # The ledger charges whole nano-dollars, rounded up per role.
        check(-1e-12 <= st["usd"] - cost < 1e-8, f"{aid}: the calls' cost {cost} = the store's {st['usd']} (to the nano-dollar)")
        for c in calls:
            ca = c["attributes"]
            check(c["kind"] == "SPAN_KIND_CLIENT", f"{aid}: a model call is a client span")
            check(c["resource"].get("service.instance.id") == "worker gpu0", f"{aid}: the model call comes from the worker process")
            check(ca.get("gen_ai.request.model") == "smollm2-135m" and ca.get("gen_ai.operation.name") == "chat", f"{aid}: GenAI attributes")
            check(ca.get("gen_ai.usage.input_tokens", 0) > 0 and ca.get("gen_ai.usage.output_tokens", 0) > 0, f"{aid}: a call's tokens")
            check(ca.get("agentflow.attempt") == aid, f"{aid}: the call names its attempt")
            # Same machine, one clock: a call lies within its attempt (100 ms for rounding).
            check(c["start"] >= s["start"] - 1e8 and c["end"] <= s["end"] + 1e8, f"{aid}: the call lies within the attempt")
        passed = [v["attributes"].get("agentflow.verifier.passed") for v in verifiers]
        check(passed[-1:] == [st["state"] == "succeeded"], f"{aid}: the verifier span says {passed} for state {st['state']}")
    check(root["attributes"].get("agentflow.tokens") == total_tokens, f"{job}: the job span's tokens {root['attributes'].get('agentflow.tokens')} = its attempts' {total_tokens}")


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"[traces] {BIN} is not built (swift build)")
    d = tempfile.mkdtemp(prefix="af-traces-")
    reply = os.path.join(d, "reply.txt")
    with open(reply, "w") as f:
        f.write("Here it is.\n```python\ndef add(a, b):\n    return a + b\n```\n")
    fake = subprocess.Popen([sys.executable, os.path.join(TOOLS, "fake_openai_server.py"), "--reply-file", reply],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(d, "fake-openai.log"), "w"), text=True)
    receiver = Receiver().start()
    try:
        port = fake.stdout.readline().split()[1]
        fake_url = f"http://127.0.0.1:{port}/v1"
        # Traces on: the receiver gets every job's tree.
        ids, attempts, reports, _ = run_cluster(d, "traced", f"http://127.0.0.1:{receiver.port}", fake_url, JOBS)
        spans = receiver.snapshot()
        check(not receiver.rejected, f"the receiver decoded every request ({receiver.rejected})")
        print(f"[traces] {len(spans)} spans in {receiver.requests} requests for {len(ids)} jobs", file=sys.stderr)
        for job in ids:
            mine = [s for s in spans if s["attributes"].get("agentflow.job") == job
                    or s["attributes"].get("agentflow.attempt", "").startswith(job + "/")]
            check_job(job, mine, attempts[job], reports[job])
        named = {s["attributes"].get("agentflow.job") or s["attributes"].get("agentflow.attempt", "").split("/")[0] for s in spans}
        check(named <= set(ids), f"no span names a job that did not run ({named - set(ids)})")
        check(len({s["span_id"] for s in spans}) == len(spans), "no span was sent twice")

        # A coordinator killed mid-attempt (SIGKILL) and started again still exports the whole
        # tree, and the worker's spans (sent before and after) land under the same attempt span.
        before = {s["span_id"] for s in receiver.snapshot()}
        rids, rattempts, rreports, _ = run_cluster(d, "restarted", f"http://127.0.0.1:{receiver.port}", fake_url, 1,
                                                   workflow=SLOW_WORKFLOW, midway=kill_coordinator_mid_check)
        job = rids[0]
        check(rreports[job]["state"] == "succeeded", f"{job}: the job succeeded across the restart ({rreports[job]['state']})")
        mine = [s for s in receiver.snapshot() if s["span_id"] not in before and (s["attributes"].get("agentflow.job") == job
                or s["attributes"].get("agentflow.attempt", "").startswith(job + "/"))]
        check_job(job, mine, rattempts[job], rreports[job], subtasks_expected=("slow",), job_ok=True)
        late = [s for s in mine if s["name"] == "agentflow.verifier" and s["end"] / 1e9 > KILLED[0]]
        check(len(late) == 1, f"{job}: the check that ended after the kill is traced under its attempt ({len(late)} such spans)")

        # Traces off (no telemetry:): nothing arrives.
        before = receiver.requests
        run_cluster(d, "plain", None, fake_url, 1)
        time.sleep(1.5)
        check(receiver.requests == before, f"without telemetry: nothing is sent ({receiver.requests - before} requests)")
    finally:
        receiver.stop()
        fake.stdin.close()
        fake.wait(timeout=10)
    if failures:
        print(f"[traces] {len(failures)} check(s) failed; logs in {d}", file=sys.stderr)
        sys.exit(1)
    subprocess.run(["rm", "-rf", d])
    print(f"[traces] ok: {JOBS} concurrent jobs and one across a coordinator restart, each one trace job → subtask → attempt → "
          "model call / action / verifier, tokens and cost as the store has them; nothing sent with telemetry off")


if __name__ == "__main__":
    main()
