"""Exceptions of the client; each carries the API's error code where there is one."""

from __future__ import annotations

from typing import Any


class WorklaneError(Exception):
    """Base class of the client's errors."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class ApiError(WorklaneError):
    """The API returned an error (``{"error": {"code", "message", "details"}}``)."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, message, details)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class TransportError(WorklaneError):
    """The request got no response: the connection was refused, reset or timed out."""


class JobFailedError(WorklaneError):
    """The job ended ``failed`` or ``canceled``; ``job`` is the job, with its ``error``."""

    def __init__(self, job: Any) -> None:
        error = job.error or {}
        super().__init__(str(error.get("code", job.status)), str(error.get("message", "")), error)
        self.job = job


class WaitTimeoutError(WorklaneError):
    """The job did not finish within the time the caller allowed."""

    def __init__(self, job: Any, seconds: float) -> None:
        super().__init__(
            "wait_timeout", f"job {job.id} was still '{job.status}' after {seconds:g} s"
        )
        self.job = job
