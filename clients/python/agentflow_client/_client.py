"""The client: a coordinator's HTTP API (``/api/v1``) over httpx."""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import sys
import time
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

import httpx

from ._errors import AgentFlowError, Unavailable, error_for
from ._sse import Event, parse
from ._types import TERMINAL_STATES, Attempt, JobStatus, LedgerLine, Tenant, Worker

#: What ``submit`` takes as a workflow: a path, YAML text, or the workflow as a dict.
WorkflowSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]
#: A deadline: seconds, a ``timedelta``, or text such as ``"90s"``, ``"5m"``, ``"1h30m"``.
Deadline = Union[int, float, _dt.timedelta, str]
#: ``wait``'s progress: a callable given each new status, or True for a bar (tqdm when installed).
Progress = Union[None, bool, Callable[[JobStatus], None]]


class Client:
    """A coordinator's HTTP API.

    >>> client = Client("http://127.0.0.1:8080")          # token: AGENTFLOW_TOKEN
    >>> job = client.submit("workflows/diamond.yaml", budget_usd=0.05, deadline="5m")
    >>> job.wait(progress=True)["state"]
    'succeeded'

    ``url`` defaults to ``AGENTFLOW_URL`` (else ``http://127.0.0.1:8080``); ``token`` to
    ``AGENTFLOW_TOKEN``, else the first line of the file ``AGENTFLOW_TOKEN_FILE`` names. Use it
    as a context manager, or call ``close()``, to release its connections.
    """

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, *, timeout: float = 30.0,
                 transport: Optional[httpx.BaseTransport] = None) -> None:
        url = url or os.environ.get("AGENTFLOW_URL") or "http://127.0.0.1:8080"
        if token is None:
            token = os.environ.get("AGENTFLOW_TOKEN") or None
        if token is None and os.environ.get("AGENTFLOW_TOKEN_FILE"):
            token = Path(os.environ["AGENTFLOW_TOKEN_FILE"]).read_text().strip().splitlines()[0].strip()
        headers = {"Accept": "application/json", "User-Agent": "agentflow-client/0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, workflow: WorkflowSource, budget_usd: Optional[float] = None, budget_tokens: Optional[int] = None,
               deadline: Optional[Deadline] = None, planner: Optional[str] = None, params: Optional[Mapping[str, Any]] = None,
               *, priority: Optional[int] = None, tenant: Optional[str] = None) -> "Job":
        """Submits a workflow and returns its job.

        ``workflow`` is a path to a YAML file, the YAML text itself, or the workflow as a dict.
        Budgets and the deadline override the workflow's; ``params`` override its parameters.
        A workflow the coordinator refuses raises :class:`BadRequest` with the file, line and
        problem, as ``agentflow validate`` prints them.
        """
        body_workflow, name = _workflow(workflow)
        query: Dict[str, str] = {"file": name}
        if budget_usd is not None:
            query["budgetUSD"] = repr(float(budget_usd))
        if budget_tokens is not None:
            query["budgetTokens"] = str(int(budget_tokens))
        if deadline is not None:
            query["deadline"] = _deadline(deadline)
        if planner is not None:
            query["planner"] = planner
        if priority is not None:
            query["priority"] = str(int(priority))
        if tenant is not None:
            query["tenant"] = tenant
        envelope: Dict[str, Any] = {"workflow": body_workflow}
        if params:
            envelope["params"] = dict(params)
        job = self._json("POST", "/api/v1/jobs", params=query, json=envelope)
        return Job(self, job["id"], job)

    def job(self, job_id: str) -> "Job":
        """A handle on an existing job (no request is made)."""
        return Job(self, job_id)

    def jobs(self, state: Optional[str] = None, workflow: Optional[str] = None, tenant: Optional[str] = None,
             limit: int = 50, offset: int = 0) -> List[JobStatus]:
        """Jobs, newest first: one page of ``limit`` (1–500) from ``offset``, filtered."""
        query: Dict[str, str] = {"limit": str(limit), "offset": str(offset)}
        for key, value in (("state", state), ("workflow", workflow), ("tenant", tenant)):
            if value is not None:
                query[key] = value
        return self._json("GET", "/api/v1/jobs", params=query)["jobs"]

    def workers(self) -> List[Worker]:
        """Workers the coordinator knows: slots, busy, state (alive, draining, suspended, dead)."""
        return self._json("GET", "/api/v1/workers")["workers"]

    def tenants(self) -> List[Tenant]:
        """Tenants: weight and share, decaying fair-share usage, spend in the current budget
        period, queued and running jobs. A token bound to a tenant gets its own row only."""
        return self._json("GET", "/api/v1/tenants")["tenants"]

    # -- transport -------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise Unavailable(0, f"cannot reach the coordinator at {self.url}: {e}") from e
        _raise_for(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()


class Job:
    """One job of a coordinator: ``id``, and what can be asked or done about it."""

    def __init__(self, client: Client, job_id: str, status: Optional[JobStatus] = None) -> None:
        self.client = client
        self.id = job_id
        #: The latest status this handle has seen (``None`` before the first request).
        self.last_status: Optional[JobStatus] = status

    def __repr__(self) -> str:
        state = self.last_status["state"] if self.last_status else "?"
        return f"<Job {self.id} {state}>"

    def _path(self, *parts: str) -> str:
        return "/api/v1/jobs/" + "/".join(urllib.parse.quote(p, safe="") for p in (self.id, *parts))

    def status(self) -> JobStatus:
        """The job as ``agentflow status --json`` prints it."""
        self.last_status = self.client._json("GET", self._path())
        return self.last_status

    def cancel(self) -> JobStatus:
        """Cancels the job (its running attempts are stopped); an ended job is answered as it is."""
        self.last_status = self.client._json("POST", self._path("cancel"))
        return self.last_status

    def attempts(self) -> List[Attempt]:
        """Every attempt, oldest first: model, worker, state, tokens of its cap, cost, how it ended."""
        return self.client._json("GET", self._path("attempts"))["attempts"]

    def ledger(self) -> List[LedgerLine]:
        """The job's append-only spend ledger, in order."""
        return self.client._json("GET", self._path("ledger"))["lines"]

    def wait(self, timeout: Optional[float] = None, progress: Progress = None, interval: float = 0.5,
             settle: float = 5.0) -> JobStatus:
        """Waits for the job to end and returns its final status.

        ``progress``: a callable given each changed status, or ``True`` for a progress bar
        (tqdm when it is installed, else a line on stderr per change). Once the job has ended
        its in-flight attempts get up to ``settle`` seconds to report what they used, so the
        totals returned are final. Raises ``TimeoutError`` after ``timeout`` seconds (the job
        goes on).
        """
        start = time.monotonic()
        show = _progress_display(progress)
        last_key = None
        try:
            status = self.status()
            while True:
                key = (status["state"], tuple((s["state"], s["attempts"]) for s in status["subtasks"]), status["budget"]["spentTokens"])
                if key != last_key:
                    show(status)
                    last_key = key
                if status["state"] in TERMINAL_STATES:
                    break
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise TimeoutError(f"job {self.id} is still {status['state']} after {timeout} s")
                time.sleep(interval)
                status = self.status()
            settle_end = time.monotonic() + settle
            while status["budget"]["reservedTokens"] > 0 and time.monotonic() < settle_end:
                time.sleep(min(interval, 0.2))
                status = self.status()
            show(status)
            return status
        finally:
            show(None)

    def events(self, last_event_id: Optional[int] = None, max_seconds: Optional[float] = None) -> Iterator[Event]:
        """The job's live events until it ends: a ``snapshot``, then ``attempt``, ``budget`` and
        ``job`` events, then ``end``.

        The stream is reconnected (with ``Last-Event-ID``) whenever the server closes it before
        the end, so nothing is missed; ``last_event_id`` resumes after an event seen earlier.
        ``max_seconds`` bounds each connection (the server's default is 300 s).
        """
        after = last_event_id
        while True:
            headers = {"Accept": "text/event-stream"}
            if after is not None:
                headers["Last-Event-ID"] = str(after)
            params = {"maxSeconds": str(max_seconds)} if max_seconds is not None else None
            try:
                with self.client._http.stream("GET", self._path("events"), headers=headers, params=params,
                                              timeout=httpx.Timeout(60.0, read=60.0)) as response:
                    if response.status_code >= 400:
                        response.read()
                        _raise_for(response)
                    for event in parse(response.iter_lines()):
                        if event.id is not None:
                            after = event.id
                        yield event
                        if event.name == "end":
                            return
            except httpx.TransportError as e:
                raise Unavailable(0, f"the event stream of {self.id} broke: {e}") from e

    def outputs(self, directory: Union[str, "os.PathLike[str]"]) -> List[Path]:
        """Downloads the job's outputs into ``directory/SUBTASK/PATH`` and returns the files.

        The manifest (``GET /api/v1/jobs/{id}/outputs``) gives each file's size and sha256;
        every file is checked against both before it is kept, and a path that would land
        outside ``directory`` is refused.
        """
        root = Path(directory)
        manifest = self.client._json("GET", self._path("outputs"))
        if isinstance(manifest, dict) and isinstance(manifest.get("outputs"), dict):
            manifest = manifest["outputs"]
        written: List[Path] = []
        for subtask, files in manifest.items():
            for entry in files:
                relative = _safe_relative(subtask, entry["path"])
                target = root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                digest = hashlib.sha256()
                size = 0
                url = self._path("outputs", subtask) + "/" + urllib.parse.quote(entry["path"], safe="/")
                with self.client._http.stream("GET", url) as response:
                    if response.status_code >= 400:
                        response.read()
                        _raise_for(response)
                    with open(partial, "wb") as f:
                        for chunk in response.iter_bytes():
                            digest.update(chunk)
                            size += len(chunk)
                            f.write(chunk)
                if size != entry.get("size", size) or ("sha256" in entry and digest.hexdigest() != entry["sha256"]):
                    partial.unlink()
                    raise AgentFlowError(0, f"output {subtask}/{entry['path']}: got {size} bytes with sha256 {digest.hexdigest()}, "
                                            f"the manifest says {entry.get('size')} bytes, sha256 {entry.get('sha256')}")
                os.replace(partial, target)
                written.append(target)
        return written


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:500] or response.reason_phrase}
    raise error_for(response.status_code, body)


def _workflow(workflow: WorkflowSource) -> "tuple[Any, str]":
    """The workflow for the JSON submission, and the file name its messages use."""
    if isinstance(workflow, Mapping):
        return dict(workflow), "workflow.yaml"
    if isinstance(workflow, os.PathLike):
        path = Path(workflow)
        return path.read_text(encoding="utf-8"), path.name
    if isinstance(workflow, str):
        one_line = "\n" not in workflow
        if one_line and os.path.isfile(workflow):
            return Path(workflow).read_text(encoding="utf-8"), os.path.basename(workflow)
        if one_line and workflow.endswith((".yaml", ".yml")):
            raise FileNotFoundError(f"no workflow file {workflow!r}")
        return workflow, "workflow.yaml"
    raise TypeError(f"a workflow is a path, YAML text or a dict, not {type(workflow).__name__}")


def _deadline(deadline: Deadline) -> str:
    if isinstance(deadline, _dt.timedelta):
        deadline = deadline.total_seconds()
    if isinstance(deadline, (int, float)):
        if not (deadline > 0) or deadline != deadline or deadline == float("inf"):
            raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
        return f"{deadline:g}s"
    return str(deadline)


def _safe_relative(subtask: str, path: str) -> PurePosixPath:
    relative = PurePosixPath(subtask) / PurePosixPath(path)
    if (relative.is_absolute() or ".." in relative.parts or "\\" in str(relative) or "\0" in str(relative)
            or not PurePosixPath(path).parts or len(PurePosixPath(subtask).parts) != 1):
        raise AgentFlowError(0, f"refusing output path {subtask!r}/{path!r}: it would land outside the directory")
    return relative


def _progress_display(progress: Progress) -> Callable[[Optional[JobStatus]], None]:
    """A function shown each changed status, then ``None`` once at the end (to close a bar)."""
    if progress is None or progress is False:
        return lambda status: None
    if callable(progress):
        return lambda status: progress(status) if status is not None else None
    try:
        from tqdm import tqdm  # optional: pip install agentflow-client[progress]
    except ImportError:
        tqdm = None
    if tqdm is None:
        def line(status: Optional[JobStatus]) -> None:
            if status is not None:
                print(_summary(status), file=sys.stderr, flush=True)
        return line
    bar: Dict[str, Any] = {}

    def update(status: Optional[JobStatus]) -> None:
        if status is None:
            if "bar" in bar:
                bar["bar"].close()
            return
        done = sum(1 for s in status["subtasks"] if s["state"] == "succeeded")
        if "bar" not in bar:
            bar["bar"] = tqdm(total=len(status["subtasks"]), unit="subtask", desc=status["id"])
        b = bar["bar"]
        b.n = done
        b.set_postfix_str(f"{status['state']}, {status['budget']['spentTokens']} tokens, ${status['budget']['spentUSD']:.6f}")
        b.refresh()
    return update


def _summary(status: JobStatus) -> str:
    done = sum(1 for s in status["subtasks"] if s["state"] == "succeeded")
    b = status["budget"]
    return (f"{status['id']} {status['state']}: {done}/{len(status['subtasks'])} subtasks passed, "
            f"{b['spentTokens']} tokens, ${b['spentUSD']:.6f}" + (f" — {status['waiting']}" if status.get("waiting") else ""))
