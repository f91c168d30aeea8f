"""Conversion of engine errors into Temporal failures."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.errors import InputError


def input_failure(error: InputError) -> ApplicationError:
    """Build a non-retryable failure whose type is the job's error code."""
    info = activity.info()
    activity.logger.info(
        "Input rejected",
        extra={"job_id": info.workflow_id, "error_code": error.code.value, "attempt": info.attempt},
    )
    return ApplicationError(
        error.message, {"attempt": info.attempt}, type=error.code.value, non_retryable=True
    )
