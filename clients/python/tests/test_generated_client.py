"""The document is the truth (issue 20 item 2): a client generated from it by
openapi-python-client submits a job as JSON, follows it to the end and reads every list —
including GET /workers while a worker drains, which broke generated clients before."""
from __future__ import annotations

import importlib
import subprocess
import sys
import time
from pathlib import Path

import pytest


def test_a_client_generated_from_the_document_works(coordinator, tmp_path, workflows):
    import httpx

    document = httpx.get(coordinator.url + "/api/v1/openapi.yaml", headers={"Authorization": f"Bearer {coordinator.admin}"}).text
    (tmp_path / "openapi.yaml").write_text(document)
    generator = Path(sys.executable).with_name("openapi-python-client")
    r = subprocess.run([str(generator), "generate", "--path", "openapi.yaml", "--meta", "none", "--output-path", "generated_af"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        gen = importlib.import_module("generated_af")
        jobs_api = importlib.import_module("generated_af.api.default.post_api_v1_jobs")
        status_api = importlib.import_module("generated_af.api.default.get_api_v1_jobs_id")
        attempts_api = importlib.import_module("generated_af.api.default.get_api_v1_jobs_id_attempts")
        ledger_api = importlib.import_module("generated_af.api.default.get_api_v1_jobs_id_ledger")
        workers_api = importlib.import_module("generated_af.api.default.get_api_v1_workers")
        list_api = importlib.import_module("generated_af.api.default.get_api_v1_jobs")
        models = importlib.import_module("generated_af.models")

        client = gen.AuthenticatedClient(base_url=coordinator.url, token=coordinator.admin, raise_on_unexpected_status=True)
        created = jobs_api.sync(client=client, body=models.Submission(workflow=(workflows / "diamond.yaml").read_text()), planner="seq:1")
        assert isinstance(created, models.Job), created
        job = created
        end = time.time() + 120
        while job.state.value in ("queued", "running") and time.time() < end:
            time.sleep(0.3)
            job = status_api.sync(job.id, client=client)
            assert isinstance(job, models.Job), job
        assert job.state == models.JobState.SUCCEEDED
        attempts = attempts_api.sync(job.id, client=client)
        assert isinstance(attempts, models.AttemptList) and attempts.attempts
        ledger = ledger_api.sync(job.id, client=client)
        assert isinstance(ledger, models.LedgerList) and sum(l.tokens_in + l.tokens_out for l in ledger.lines) == job.budget.spent_tokens
        page = list_api.sync(client=client, state=models.JobState.SUCCEEDED)
        assert isinstance(page, models.JobPage) and job.id in [j.id for j in page.jobs]

        assert coordinator.cli("drain", "gpu0").returncode == 0
        try:
            workers = workers_api.sync(client=client)
            assert isinstance(workers, models.WorkerList), workers
            assert {w.name: w.state.value for w in workers.workers}["gpu0"] == "draining"
        finally:
            coordinator.cli("undrain", "gpu0")

        missing = status_api.sync("j-nosuch", client=client)
        assert isinstance(missing, models.Error) and missing.code == 404
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "generated_af" or m.startswith("generated_af.")]:
            del sys.modules[name]
