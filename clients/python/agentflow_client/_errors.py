"""Errors the coordinator answers, as exceptions a caller can catch by kind."""
from __future__ import annotations

from typing import Any, Dict, Optional


class AgentFlowError(Exception):
    """An error from the coordinator (its ``{"error", "code"}`` body), or no coordinator at all.

    ``status`` is the HTTP status (0 when the coordinator could not be reached), ``message``
    the coordinator's words, ``body`` the whole error object (a refused workflow carries
    ``file``, ``line`` and ``problem``, as ``agentflow validate`` prints them).
    """

    def __init__(self, status: int, message: str, body: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.status = status
        self.message = message
        self.body: Dict[str, Any] = body or {}


class BadRequest(AgentFlowError):
    """400: bad input — an invalid workflow (``.file``, ``.line``, ``.problem``), a bad flag."""

    @property
    def file(self) -> Optional[str]:
        return self.body.get("file")

    @property
    def line(self) -> Optional[int]:
        return self.body.get("line")

    @property
    def problem(self) -> Optional[str]:
        return self.body.get("problem")


class Unauthorized(AgentFlowError):
    """401 or 403: no token, an unknown one, or a ``read`` token asking to change something."""


class Forbidden(Unauthorized):
    """403: the token is known but lacks the right: a ``read`` token asking to change something,
    or a token bound to a tenant asking about another tenant's job (the message names which)."""


class NotFound(AgentFlowError):
    """404: no such job (or path)."""


class Unavailable(AgentFlowError):
    """The coordinator could not be reached, or answered 503 (its loop does not answer)."""


def error_for(status: int, body: Any) -> AgentFlowError:
    """The exception for an error response."""
    message = body.get("error") if isinstance(body, dict) else None
    message = message or f"HTTP {status}"
    kind = {400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 503: Unavailable}.get(status, AgentFlowError)
    return kind(status, message, body if isinstance(body, dict) else None)
