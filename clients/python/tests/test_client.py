"""The client against a live coordinator (conftest.py): submit, wait, read, stream, cancel, errors."""
from __future__ import annotations

import hashlib
import math
import os
import typing

import httpx
import pytest
import yaml

import agentflow_client
from agentflow_client import BadRequest, NotFound, Unauthorized, Unavailable


def test_submit_a_path_and_wait_with_progress(client, workflows):
    seen = []
    job = client.submit(workflows / "diamond.yaml", budget_tokens=50_000, deadline="5m", planner="seq:1")
    assert job.id.startswith("j-")
    final = job.wait(timeout=120, progress=seen.append)
    assert final["state"] == "succeeded", final
    assert final["budget"]["reservedTokens"] == 0, "wait returns settled totals"
    assert final["budget"]["spentTokens"] <= 50_000
    assert len(seen) >= 2 and seen[-1] == final
    assert [s["id"] for s in final["subtasks"]] == ["parse_csv_line", "to_upper", "lengths", "summarize"]
    attempts = job.attempts()
    assert len(attempts) == sum(s["attempts"] for s in final["subtasks"])
    assert all(a["id"].startswith(job.id + "/") and a["n"] >= 1 for a in attempts)
    ledger = job.ledger()
    assert sum(line["tokensIn"] + line["tokensOut"] for line in ledger) == final["budget"]["spentTokens"]
    assert job.status() == final
    assert job.id in [j["id"] for j in client.jobs(state="succeeded", limit=500)]


def test_submit_yaml_text_and_a_dict(client, workflows):
    text = (workflows / "chain.yaml").read_text()
    as_text = client.submit(text, planner="seq:1", budget_usd=1.0)
    as_dict = client.submit(yaml.safe_load(text), planner="seq:2", deadline=300, tenant="team-py")
    assert as_text.wait(timeout=120)["state"] == "succeeded"
    final = as_dict.wait(timeout=120)
    assert final["state"] == "succeeded" and final["planner"] == "seq:2" and final["tenant"] == "team-py"
    assert final["budget"]["limitUSD"] is not None or final["budget"]["limitTokens"] is not None
    assert [j["id"] for j in client.jobs(tenant="team-py")] == [as_dict.id]


def test_a_progress_bar_when_tqdm_is_installed(client, workflows, capsys):
    pytest.importorskip("tqdm")  # installed by the test command (agentflow-client[test])
    job = client.submit(workflows / "chain.yaml", planner="seq:1")
    assert job.wait(timeout=120, progress=True)["state"] == "succeeded"
    err = capsys.readouterr().err
    assert job.id in err and "subtask" in err, err


def test_events_iterate_to_the_end_and_resume(client, workflows):
    job = client.submit(workflows / "fan-out.yaml", planner="seq:1")
    live = list(job.events())
    assert live[0].name == "snapshot" and live[0].data["job"]["id"] == job.id
    assert live[-1].name == "end"
    # Every event from the first one, then resumed from the middle: nothing lost or repeated.
    everything = list(job.events(last_event_id=0))
    ids = [e.id for e in everything if e.id is not None]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 4
    assert {e.name for e in everything} >= {"attempt", "budget", "job", "end"}
    middle = ids[len(ids) // 2]
    resumed = [e.id for e in job.events(last_event_id=middle) if e.id is not None]
    assert resumed == ids[ids.index(middle) + 1:]
    ended = [e for e in everything if e.name == "job" and e.data["state"] in agentflow_client.TERMINAL_STATES]
    assert ended and ended[-1].data["state"] == job.status()["state"]
    # Short connections: the iterator reconnects with Last-Event-ID until the end.
    again = list(client.job(job.id).events(last_event_id=0, max_seconds=0.5))
    assert [e.id for e in again if e.id is not None] == ids


def test_cancel_a_running_job(client, workflows):
    job = client.submit(workflows / "big-dag.yaml", planner="seq:4", deadline="10m")
    cancelled = job.cancel()
    assert cancelled["state"] == "cancelled"
    final = job.wait(timeout=60)
    assert final["state"] == "cancelled" and final["budget"]["reservedTokens"] == 0
    assert job.cancel()["state"] == "cancelled", "cancelling an ended job answers it as it is"


def test_workers_with_their_states(client, coordinator):
    workers = {w["name"]: w for w in client.workers()}
    assert set(workers) == {"gpu0", "gpu1"} and workers["gpu0"]["slots"] == 4
    assert coordinator.cli("drain", "gpu1").returncode == 0
    try:
        assert {w["name"]: w["state"] for w in client.workers()}["gpu1"] == "draining"
    finally:
        coordinator.cli("undrain", "gpu1")


def test_errors_are_exceptions_with_the_servers_words(client, coordinator, workflows, tmp_path):
    cycle = "name: c\ndeadline: 1m\nbudget: {tokens: 1000}\nsubtasks:\n  - {id: a, prompt: x, needs: [b], verify: {command: 'true'}}\n  - {id: b, prompt: x, needs: [a], verify: {command: 'true'}}\n"
    with pytest.raises(BadRequest) as refused:
        client.submit(cycle)
    assert refused.value.status == 400 and "cycle" in refused.value.message and refused.value.line is not None
    with pytest.raises(NotFound):
        client.job("j-nosuch").status()
    with pytest.raises(NotFound):
        list(client.job("j-nosuch").events())
    with pytest.raises(BadRequest):
        client.jobs(limit=0)
    with pytest.raises(BadRequest):
        client.submit(workflows / "chain.yaml", planner="bogus:planner")
    with agentflow_client.Client(coordinator.url, token="") as anonymous:
        with pytest.raises(Unauthorized) as e:
            anonymous.jobs()
        assert e.value.status == 401
    with agentflow_client.Client(coordinator.url, token=coordinator.read) as reader:
        assert reader.jobs(limit=1)
        with pytest.raises(Unauthorized) as e:
            reader.submit(workflows / "chain.yaml")
        assert e.value.status == 403
    with agentflow_client.Client("http://127.0.0.1:9", token="x", timeout=2) as nowhere:
        with pytest.raises(Unavailable):
            nowhere.jobs()
    with pytest.raises(FileNotFoundError):
        client.submit("workflows/no-such-file.yaml")
    for bad in [math.nan, math.inf, -1, 0]:
        with pytest.raises(ValueError):
            client.submit(workflows / "chain.yaml", deadline=bad)
    with pytest.raises(TypeError):
        client.submit(42)


def test_token_from_the_environment(coordinator, monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTFLOW_URL", coordinator.url)
    monkeypatch.setenv("AGENTFLOW_TOKEN", coordinator.read)
    with agentflow_client.Client() as c:
        assert isinstance(c.jobs(), list)
    monkeypatch.delenv("AGENTFLOW_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text(coordinator.admin + "\n")
    monkeypatch.setenv("AGENTFLOW_TOKEN_FILE", str(token_file))
    with agentflow_client.Client() as c:
        assert c.workers()


def test_outputs_download(client, workflows, tmp_path):
    job = client.submit(workflows / "diamond.yaml", planner="seq:1")
    assert job.wait(timeout=120)["state"] == "succeeded"
    probe = client._http.get(f"/api/v1/jobs/{job.id}/outputs")
    assert probe.status_code == 200, probe.text
    files = job.outputs(tmp_path / "out")
    manifest = probe.json()
    manifest = manifest.get("outputs", manifest)
    expected = {(s, f["path"]): f for s, entries in manifest.items() for f in entries}
    assert files and len(files) == len(expected)
    for path in files:
        subtask, relative = path.relative_to(tmp_path / "out").parts[0], "/".join(path.relative_to(tmp_path / "out").parts[1:])
        entry = expected[(subtask, relative)]
        assert path.stat().st_size == entry["size"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


def test_outputs_are_checked_and_confined(tmp_path):
    """Against a scripted server (httpx.MockTransport): a file whose bytes do not match the
    manifest is refused and not kept; a path that climbs out of the directory is refused."""
    good, bad = b"def f():\n    return 1\n", b"tampered"
    manifest = {"a": [{"path": "a.py", "size": len(good), "sha256": hashlib.sha256(good).hexdigest()}],
                "b": [{"path": "b.py", "size": len(good), "sha256": hashlib.sha256(good).hexdigest()}]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/outputs"):
            return httpx.Response(200, json=manifest)
        return httpx.Response(200, content=good if request.url.path.endswith("/a/a.py") else bad)

    with agentflow_client.Client("http://test", token="t", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(agentflow_client.AgentFlowError, match="manifest says"):
            c.job("j-x").outputs(tmp_path)
        assert (tmp_path / "a" / "a.py").read_bytes() == good
        assert not (tmp_path / "b" / "b.py").exists() and not (tmp_path / "b" / "b.py.part").exists()
        for subtask, evil in [("a", "../escape.py"), ("a", "/etc/passwd"), ("a", "x/../../y"), ("a", "."), ("..", "escape.py"), ("a/b", "c")]:
            manifest.clear()
            manifest[subtask] = [{"path": evil, "size": 1, "sha256": "0" * 64}]
            with pytest.raises(agentflow_client.AgentFlowError, match="outside"):
                c.job("j-x").outputs(tmp_path)
    assert not (tmp_path.parent / "escape.py").exists()


def test_types_match_the_openapi_document(client):
    """The TypedDicts are the document's schemas: same fields, same required fields (the rest total=False)."""
    document = yaml.safe_load(client._http.get("/api/v1/openapi.yaml").text)
    schemas = document["components"]["schemas"]
    for name, typed in agentflow_client._types.SCHEMAS.items():
        fields = set(typing.get_type_hints(typed))
        assert fields == set(schemas[name]["properties"]), name
        assert set(typed.__required_keys__) == set(schemas[name].get("required", [])), f"{name}: required fields"


def test_a_tenants_token_sees_and_touches_its_own_jobs_only(client, coordinator, workflows):
    """Tokens bound to a tenant (issue 18): team-a's submits as team-a and as no one else,
    lists and reads its own jobs only; team-b's read token cannot see or cancel team-a's job;
    tenants() gives each its own row, the admin every row."""
    with agentflow_client.Client(coordinator.url, token=coordinator.team_a) as a, \
            agentflow_client.Client(coordinator.url, token=coordinator.team_b) as b:
        job = a.submit(workflows / "chain.yaml", planner="seq:1")
        assert job.status()["tenant"] == "team-a"
        with pytest.raises(agentflow_client.Forbidden, match="team-b"):
            a.submit(workflows / "chain.yaml", tenant="team-b")
        theirs = client.submit(workflows / "chain.yaml", planner="seq:1", tenant="team-b")
        assert {j["id"] for j in a.jobs(limit=500)} >= {job.id} and all(j["tenant"] == "team-a" for j in a.jobs(limit=500))
        with pytest.raises(agentflow_client.Forbidden, match="another tenant"):
            a.job(theirs.id).status()
        with pytest.raises(agentflow_client.Forbidden, match="another tenant"):
            a.job(theirs.id).cancel()
        with pytest.raises(agentflow_client.Forbidden, match="needs submit"):
            b.job(job.id).cancel()
        with pytest.raises(agentflow_client.Forbidden, match="another tenant"):
            b.job(job.id).attempts()
        with pytest.raises(agentflow_client.Forbidden):
            a.jobs(tenant="team-b")
        assert b.job(theirs.id).status()["tenant"] == "team-b"
        assert b.job(theirs.id).status()["state"] != "cancelled"
        final = job.wait(timeout=180)
        assert final["state"] == "succeeded", final
        rows = a.tenants()
        assert [r["name"] for r in rows] == ["team-a"]
        assert rows[0]["period"]["per"] == "day" and rows[0]["period"]["limitUSD"] == 200
        assert 0 < rows[0]["period"]["spentUSD"] <= 200 and rows[0]["usage"] > 0
        assert [r["name"] for r in b.tenants()] == ["team-b"]
    names = {r["name"] for r in client.tenants()}
    assert {"team-a", "team-b"} <= names, names


def test_many_jobs_at_once(client, workflows):
    jobs = [client.submit(workflows / "chain.yaml", planner="seq:1", priority=i % 3) for i in range(12)]
    finals = [j.wait(timeout=180) for j in jobs]
    assert all(f["state"] == "succeeded" for f in finals), [f["state"] for f in finals]
    assert len({f["id"] for f in finals}) == 12


def test_the_example_runs(coordinator):
    """examples/quickstart.py, cell after cell, against the live coordinator."""
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"
    r = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "AGENTFLOW_URL": coordinator.url, "AGENTFLOW_TOKEN": coordinator.admin})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tokens by role" in r.stdout and "  end" in r.stdout and "refused:" in r.stdout, r.stdout
