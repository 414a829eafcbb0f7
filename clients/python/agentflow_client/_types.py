"""The shapes the coordinator answers (its OpenAPI document's schemas), as TypedDicts.

They are plain dicts at run time; the types are for editors and type checkers. A test checks
each against ``GET /api/v1/openapi.yaml`` so they cannot drift from what the server sends.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict


class Budget(TypedDict):
    limitTokens: Optional[int]
    limitUSD: Optional[float]
    spentTokens: int
    spentUSD: float
    reservedTokens: int
    reservedUSD: float


class RoleTokens(TypedDict):
    role: str
    tokens: int


class OutputFile(TypedDict):
    """One file a subtask kept (``agentflow outputs`` gives them)."""

    path: str
    size: int
    sha256: str


class Subtask(TypedDict):
    id: str
    state: str
    model: Optional[str]
    attempts: int
    tokens: int
    usd: float
    output: Optional[str]
    roles: List[RoleTokens]
    note: str
    needs: List[str]
    outputs: List[OutputFile]


class JobStatus(TypedDict):
    """A job, as ``agentflow status --json`` prints it."""

    id: str
    workflow: str
    state: str
    reason: str
    waiting: str
    successEstimate: Optional[float]
    tenant: Optional[str]
    planner: str
    budget: Budget
    submittedAt: str
    deadline: str
    startedAt: Optional[str]
    endedAt: Optional[str]
    deadlineSeconds: float
    elapsedSeconds: float
    subtasks: List[Subtask]


class Attempt(TypedDict):
    id: str
    job: str
    subtask: str
    n: int
    model: str
    worker: Optional[str]
    state: str
    tokenCap: int
    tokens: int
    tokensIn: int
    tokensOut: int
    usd: float
    reservedTokens: int
    reservedUSD: float
    createdAt: str
    dispatchedAt: Optional[str]
    endedAt: Optional[str]
    detail: str


class LedgerLine(TypedDict):
    seq: int
    attempt: str
    subtask: str
    n: int
    role: str
    model: str
    tokensIn: int
    tokensOut: int
    usd: float
    kind: str
    at: str


class _WorkerFields(TypedDict):
    name: str
    host: str
    gpus: List[int]
    model: str
    slots: int
    busy: int
    freeMemory: int
    state: str
    lastSeen: str
    problem: str
    gpuName: str


class Worker(_WorkerFields, total=False):
    sandbox: str  # how it runs model-written code; absent for a backend that runs none


class TenantPeriod(TypedDict):
    """A tenant's spend in its current budget period (UTC): spent + reserved never exceeds a limit."""

    per: str
    start: str
    end: str
    limitUSD: Optional[float]
    limitTokens: Optional[int]
    spentUSD: float
    spentTokens: int
    reservedUSD: float
    reservedTokens: int


class TenantJobs(TypedDict):
    queued: int
    running: int
    waitingForBudget: int


class Tenant(TypedDict):
    """A tenant, as ``agentflow tenants --json`` prints it: share, decaying usage, period spend, jobs."""

    name: str
    weight: float
    share: float
    usage: float
    usageShare: float
    period: TenantPeriod
    jobs: TenantJobs


class JobPage(TypedDict):
    jobs: List[JobStatus]
    total: int
    limit: int
    offset: int


#: A job's end states (every other state is live).
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled", "deadline_exceeded", "budget_exhausted", "infeasible"})

#: The TypedDict for each schema of the document, for the drift test.
SCHEMAS: Dict[str, Any] = {
    "Budget": Budget, "RoleTokens": RoleTokens, "Subtask": Subtask, "OutputFile": OutputFile, "Job": JobStatus, "Attempt": Attempt,
    "LedgerLine": LedgerLine, "Worker": Worker, "JobPage": JobPage,
    "TenantPeriod": TenantPeriod, "TenantJobs": TenantJobs, "Tenant": Tenant,
}
