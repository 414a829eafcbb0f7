#!/usr/bin/env python3
"""Every response of a full job lifecycle, validated against the coordinator's own OpenAPI
document with openapi-core (schemathesis fuzzes the same document in tools/api-check.sh; this
walks what a user does, so the states fuzzing cannot reach — a draining worker, a cancelled and
an ended job, the event stream, every error — are checked too).

Run by tools/api-check.sh against a live coordinator with bearer tokens and two sim workers:
    api_lifecycle.py BASE_URL ADMIN_TOKEN READ_TOKEN AGENTFLOW_BINARY CLUSTER_FILE
Exits 1 naming every response that does not match (status, headers, body schema), or any
lifecycle step that did not happen; prints how many responses were validated.
"""
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from werkzeug.datastructures import Headers, ImmutableMultiDict

BASE, ADMIN, READ, BINARY, CLUSTER = sys.argv[1:6]
failures = []
validated = 0


class Req:
    """An openapi-core request (its Request protocol)."""

    def __init__(self, method, path, query, headers, body, content_type):
        self.host_url = BASE
        self.path = path
        self.method = method.lower()
        self.body = body
        self.content_type = content_type or ""
        self.parameters = RequestParameters(query=ImmutableMultiDict(query), header=Headers(headers))


class Resp:
    """An openapi-core response (its Response protocol)."""

    def __init__(self, status, headers, data):
        self.status_code = status
        self.headers = Headers(list(headers.items()))
        self.content_type = headers.get("Content-Type", "")
        self.data = data


def call(method, path, query=None, body=None, content_type=None, token=ADMIN, headers=None, check=True, stream_limit=None):
    """Sends one request; validates its response against the document unless check is False."""
    global validated
    query = query or []
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if content_type:
        h["Content-Type"] = content_type
    url = BASE + urllib.parse.quote(path) + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            status, rheaders, data = r.status, r.headers, r.read() if stream_limit is None else r.read(stream_limit)
    except urllib.error.HTTPError as e:
        status, rheaders, data = e.code, e.headers, e.read()
    if check:
        try:
            spec.validate_response(Req(method, path, query, h, body, content_type), Resp(status, rheaders, data))
            validated += 1
        except Exception as e:  # openapi-core raises one of many validation errors
            cause = e.__cause__
            detail = "; ".join(x.message for x in getattr(cause, "schema_errors", [])) or (str(cause) if cause else "")
            failures.append(f"{method} {path} {query} -> {status}: {type(e).__name__}: {e} {detail} body={data[:300]!r}")
    if method != "HEAD" and status >= 400:
        # Every error body, in the document or not, is {"error", "code"}.
        try:
            err = json.loads(data)
            if not (isinstance(err.get("error"), str) and err.get("code") == status):
                failures.append(f"{method} {path} -> {status}: error body {data[:200]!r}")
        except ValueError:
            failures.append(f"{method} {path} -> {status}: error body is not JSON: {data[:200]!r}")
    if method == "HEAD" and data:
        failures.append(f"HEAD {path} -> {status}: a body of {len(data)} bytes")
    return status, rheaders, data


def expect(condition, what):
    if not condition:
        failures.append("lifecycle: " + what)
    return condition


def body_json(data):
    return json.loads(data) if data else None


def agentflow(*args):
    return subprocess.run([BINARY, *args, "--cluster", CLUSTER], capture_output=True, text=True, timeout=60)


def events(job, query=(), last_event_id=None):
    """Reads a job's event stream to its end; validates the response and each event's data."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    status, _, data = call("GET", f"/api/v1/jobs/{job}/events", list(query), headers=headers)
    expect(status == 200, f"events of {job}: {status}")
    out = []
    for event in sse_events(data.decode()):
        errors = list(OAS31Validator(stream_schema).iter_errors(event))
        expect(not errors, f"event {event} does not match the stream's schema: {[e.message for e in errors][:3]}")
        name = event.get("event")
        ref = event_data.get(name)
        if not expect(ref is not None, f"event {name!r} is not in x-event-data"):
            continue
        payload = json.loads(event["data"])
        schema = document
        for part in ref.lstrip("#/").split("/"):
            schema = schema[part]
        errors = list(event_validator(schema).iter_errors(payload))
        expect(not errors, f"event {name} data does not match {ref}: {[e.message for e in errors][:3]}")
        out.append((name, int(event["id"]) if "id" in event else None, payload))
    return out


def wait_for(job, states, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        _, _, data = call("GET", f"/api/v1/jobs/{job}")
        j = body_json(data)
        if j and j["state"] in states:
            return j
        time.sleep(0.2)
    expect(False, f"{job} never reached {states}")
    return {}


# The document as served is the one checked.
raw = urllib.request.urlopen(urllib.request.Request(BASE + "/api/v1/openapi.yaml", headers={"Authorization": "Bearer " + ADMIN})).read()
document = yaml.safe_load(raw)


def sse_events(text):
    """The stream's events as the document's schema describes one: {event, data, id?, retry?}."""
    out, current = [], {}
    for line in text.split("\n"):
        if line == "":
            if "event" in current or "data" in current:
                out.append(current)
            elif "retry" in current and out == []:
                pass
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        if field == "data" and "data" in current:
            current["data"] += "\n" + value
        elif field == "retry":
            current["retry"] = int(value)
        else:
            current[field] = value
    return out


# openapi-core reads JSON and plain text bodies itself. YAML is text (its schema says string);
# an event stream is checked event by event (events() below), openapi-core sees its first event.
spec = OpenAPI(SchemaPath.from_dict(document), config=Config(extra_media_type_deserializers={
    "application/yaml": lambda data, **_: data.decode(),
    "text/event-stream": lambda data, **_: (sse_events(data.decode()) or [{}])[0]}))
stream_schema = document["paths"]["/api/v1/jobs/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"]
event_data = document["paths"]["/api/v1/jobs/{id}/events"]["get"]["x-event-data"]


def event_validator(schema):
    """A validator for one component schema whose $refs resolve against the whole document."""
    root = {**document, "$id": "urn:agentflow:openapi"}
    registry = Registry().with_resource("urn:agentflow:openapi", Resource.from_contents(root, default_specification=DRAFT202012))
    name = next(n for n, s in document["components"]["schemas"].items() if s is schema)
    return OAS31Validator({"$ref": "urn:agentflow:openapi#/components/schemas/" + name}, registry=registry)


wf = open("workflows/diamond.yaml").read()
call("GET", "/api/v1/openapi.yaml")

# Submissions: YAML, a JSON workflow object, the JSON envelope.
s1, h1, d1 = call("POST", "/api/v1/jobs", [("planner", "seq:1"), ("tenant", "team-a")], wf.encode(), "application/yaml")
expect(s1 == 201 and h1.get("Location", "").startswith("/api/v1/jobs/j-"), f"YAML submission: {s1} {d1[:200]!r}")
job1 = body_json(d1)["id"] if s1 == 201 else "j-none"
s2, _, d2 = call("POST", "/api/v1/jobs", [("planner", "seq:2")], json.dumps(yaml.safe_load(wf)).encode(), "application/json")
expect(s2 == 201, f"JSON workflow submission: {s2} {d2[:200]!r}")
s3, _, d3 = call("POST", "/api/v1/jobs", [("deadline", "5m")], json.dumps({"workflow": wf, "params": {}}).encode(), "application/json; charset=utf-8")
expect(s3 == 201, f"JSON envelope submission: {s3} {d3[:200]!r}")

# A running job, read every way.
for path in [f"/api/v1/jobs/{job1}", f"/api/v1/jobs/{job1}/attempts", f"/api/v1/jobs/{job1}/ledger", "/api/v1/workers", "/api/v1/tenants"]:
    call("GET", path)
    call("HEAD", path)
_, _, d = call("GET", "/api/v1/tenants")
tenants = {t["name"]: t for t in body_json(d).get("tenants", [])}
a = tenants.get("team-a", {"jobs": {}, "period": {}})
expect(sum(a["jobs"].values()) + a["period"].get("spentUSD", 0) + a["period"].get("reservedUSD", 0) > 0,
       f"team-a's job (running, or charged in this period) in GET /api/v1/tenants: {d[:300]!r}")
for q in [[], [("state", "running")], [("limit", "1"), ("offset", "1")], [("tenant", "team-a")], [("workflow", "diamond")]]:
    call("GET", "/api/v1/jobs", q)
call("HEAD", "/api/v1/jobs")
call("HEAD", "/api/v1/openapi.yaml")
call("GET", "/metrics")
call("HEAD", "/metrics")

# The event stream to the end; then every event from the first (Last-Event-ID: 0), and resumed
# from the middle.
stream = events(job1)
expect(stream and stream[0][0] == "snapshot" and stream[-1][0] == "end", f"stream shape: {[e[0] for e in stream]}")
wait_for(job1, {"succeeded", "failed"})
stream = events(job1, last_event_id=0)
kinds = {e[0] for e in stream}
expect({"attempt", "budget", "job", "end"} <= kinds, f"stream kinds from the first event: {kinds}")
ids = [e[1] for e in stream if e[1] is not None]
expect(ids == list(range(1, len(ids) + 1)), f"event ids from 1 without a gap: {ids[:20]}")
if expect(len(ids) >= 4, f"numbered events: {ids}"):
    resumed = events(job1, last_event_id=ids[1])
    first = [e[1] for e in resumed if e[1] is not None][:1]
    expect(first == [ids[2]], f"resume after {ids[1]} starts at {first}, expected {ids[2]}")
call("HEAD", f"/api/v1/jobs/{job1}/events")
wait_for(job1, {"succeeded", "failed"})
for path in [f"/api/v1/jobs/{job1}", f"/api/v1/jobs/{job1}/attempts", f"/api/v1/jobs/{job1}/ledger"]:
    call("GET", path)

# Each attempt's transcript (sim workers record none: the note says why), and the errors of its path.
_, _, d = call("GET", f"/api/v1/jobs/{job1}/attempts")
for a in body_json(d)["attempts"][:3]:
    path = f"/api/v1/jobs/{job1}/attempts/{a['subtask']}/{a['n']}/transcript"
    s, _, d = call("GET", path)
    t = body_json(d) if s == 200 else {}
    expect(s == 200 and t.get("attempt") == a["id"] and t.get("note"), f"GET {path}: {s} {d[:300]!r}")
    call("HEAD", path)
for path, status in [(f"/api/v1/jobs/{job1}/attempts/nosuch/1/transcript", 404), ("/api/v1/jobs/j-nosuch/attempts/a/1/transcript", 404),
                     (f"/api/v1/jobs/{job1}/attempts/a/0/transcript", 400), (f"/api/v1/jobs/{job1}/attempts/a/x/transcript", 400)]:
    s, _, _ = call("GET", path)
    expect(s == status, f"GET {path}: {s}, expected {status}")

# A draining worker, as GET /workers shows it.
r = agentflow("drain", "gpu1")
expect(r.returncode == 0, f"agentflow drain gpu1: {r.returncode} {r.stderr}")
_, _, d = call("GET", "/api/v1/workers")
expect(any(w["state"] == "draining" for w in body_json(d)["workers"]), f"no draining worker in {d[:300]!r}")
call("HEAD", "/api/v1/workers")
agentflow("undrain", "gpu1")

# Cancellation of a running job, then the ended job and its cancelled attempts.
s4, _, d4 = call("POST", "/api/v1/jobs", [("planner", "seq:4"), ("deadline", "10m")], open("workflows/big-dag.yaml").read().encode(), "application/yaml")
job4 = body_json(d4)["id"] if s4 == 201 else "j-none"
wait_for(job4, {"running"})
s, _, d = call("POST", f"/api/v1/jobs/{job4}/cancel")
expect(s == 200 and body_json(d)["state"] == "cancelled", f"cancel: {s} {d[:200]!r}")
time.sleep(1)
s, _, d = call("POST", f"/api/v1/jobs/{job4}/cancel")
expect(s == 200 and body_json(d)["state"] == "cancelled", f"cancel of an ended job: {s}")
_, _, d = call("GET", f"/api/v1/jobs/{job4}/attempts")
expect(any(a["state"] == "cancelled" for a in body_json(d)["attempts"]), "a cancelled attempt")
call("GET", f"/api/v1/jobs/{job4}/ledger")
events(job4)
for state in ["succeeded", "cancelled", "queued"]:
    call("GET", "/api/v1/jobs", [("state", state)])

# A job that ends unsuccessfully on its own (a budget too small on purpose).
s5, _, d5 = call("POST", "/api/v1/jobs", [("planner", "seq:1")], open("workflows/infeasible.yaml").read().encode(), "application/yaml")
if s5 == 201:
    ended = wait_for(body_json(d5)["id"], {"failed", "budget_exhausted", "infeasible", "deadline_exceeded", "succeeded"})
    expect(ended.get("state") != "succeeded", f"infeasible.yaml ended {ended.get('state')}")

# Errors: each status the document names, each body {"error", "code"}.
cycle = "name: c\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: x, needs: [b], verify: {command: 'true'}}\n  - {id: b, prompt: x, needs: [a], verify: {command: 'true'}}\n"
s, _, d = call("POST", "/api/v1/jobs", [], cycle.encode(), "application/yaml")
expect(s == 400 and "line" in body_json(d) and "problem" in body_json(d), f"a cycle: {s} {d[:200]!r}")
for bad in [b"[1, 2]", b"{\"workflow\": 5}", b"{\"workflow\": \"x\", \"bogus\": 1}", b"not json", b"{\"workflow\": \"x\", \"inputs\": [1]}"]:
    s, _, _ = call("POST", "/api/v1/jobs", [], bad, "application/json")
    expect(s == 400, f"bad JSON body {bad!r}: {s}")
for q in [[("limit", "0")], [("limit", "abc")], [("offset", "-1")], [("state", "bogus")]]:
    s, _, _ = call("GET", "/api/v1/jobs", q)
    expect(s == 400, f"bad query {q}: {s}")
s, _, _ = call("POST", "/api/v1/jobs", [("budgetUSD", "nan")], wf.encode(), "application/yaml")
expect(s == 400, f"budgetUSD=nan: {s}")
s, _, _ = call("GET", "/api/v1/jobs", token=None)
expect(s == 401, f"no token: {s}")
s, _, _ = call("HEAD", "/api/v1/jobs", token=None)
expect(s == 401, f"HEAD with no token: {s}")
s, _, _ = call("POST", "/api/v1/jobs", [], wf.encode(), "application/yaml", token=READ)
expect(s == 403, f"read token submitting: {s}")
s, _, _ = call("POST", f"/api/v1/jobs/{job1}/cancel", token=READ)
expect(s == 403, f"read token cancelling: {s}")
for path in ["/api/v1/jobs/j-nosuch", "/api/v1/jobs/j-nosuch/attempts", "/api/v1/jobs/j-nosuch/ledger", "/api/v1/jobs/j-nosuch/events"]:
    s, _, _ = call("GET", path)
    expect(s == 404, f"GET {path}: {s}")
    s, _, _ = call("HEAD", path)
    expect(s == 404, f"HEAD {path}: {s}")
s, _, _ = call("POST", "/api/v1/jobs/j-nosuch/cancel")
expect(s == 404, f"cancel j-nosuch: {s}")
s, _, _ = call("POST", "/api/v1/jobs", [], b"x" * (16 << 20), "application/yaml")  # past the 15 MiB a submission may be
expect(s == 413, f"16 MiB body: {s}")
# Outside the document: an unknown path and a method a path does not offer.
s, _, _ = call("GET", "/api/v1/nosuch", check=False)
expect(s == 404, f"unknown path: {s}")
s, h, _ = call("DELETE", "/api/v1/jobs", check=False)
expect(s == 405 and "GET" in h.get("Allow", ""), f"DELETE /api/v1/jobs: {s} {h.get('Allow')}")

for f in failures:
    print("FAIL", f, file=sys.stderr)
print(f"api lifecycle: {validated} responses validated against the document, {len(failures)} failures", file=sys.stderr)
sys.exit(1 if failures else 0)
