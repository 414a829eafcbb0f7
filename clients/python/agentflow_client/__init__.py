"""Python client for AgentFlow, a scheduler for budgeted LLM agent workflows.

    import agentflow_client
    client = agentflow_client.Client("http://127.0.0.1:8080")   # token: AGENTFLOW_TOKEN
    job = client.submit("workflows/diamond.yaml", budget_usd=0.05, deadline="5m")
    final = job.wait(progress=True)
    for attempt in job.attempts():
        print(attempt["id"], attempt["state"], attempt["tokens"])

It speaks the coordinator's HTTP API (``/api/v1``, enable it with ``coordinator.http`` in
cluster.yaml); the shapes it returns are those of ``GET /api/v1/openapi.yaml``.
"""
from ._client import Client, Deadline, Job, Progress, WorkflowSource
from ._errors import AgentFlowError, BadRequest, Forbidden, NotFound, Unauthorized, Unavailable
from ._sse import Event
from ._types import TERMINAL_STATES, Attempt, Budget, JobPage, JobStatus, LedgerLine, RoleTokens, Subtask, Tenant, TenantJobs, TenantPeriod, Worker

__version__ = "0.1.0"
__all__ = [
    "Client", "Job", "Event", "WorkflowSource", "Deadline", "Progress",
    "AgentFlowError", "BadRequest", "Forbidden", "NotFound", "Unauthorized", "Unavailable",
    "JobStatus", "Attempt", "LedgerLine", "Worker", "Budget", "Subtask", "RoleTokens", "JobPage", "Tenant", "TenantPeriod", "TenantJobs",
    "TERMINAL_STATES",
]
