"""Data passed between the API, ``JobWorkflow`` and its activities.

These models are part of recorded workflow histories: add optional fields only, never rename.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINISHED_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


class WebhookConfig(BaseModel):
    """Target URL of a job's final event, and the retry schedule of its delivery."""

    url: str
    retry_initial_seconds: float = 5.0
    retry_max_interval_seconds: float = 3600.0
    retry_window_seconds: float = 25 * 3600.0
    request_timeout_seconds: float = 10.0


class JobParams(BaseModel):
    """Workflow input, fixed when the job is created."""

    job_id: str
    workspace_id: str
    tool_slug: str
    input_kind: str
    input_name: str | None = None
    input_content_type: str | None = None
    input_size_bytes: int | None = None
    input_object_key: str | None = None
    upload_expires_at: datetime | None = None
    input_text: str | None = None
    input_json: dict[str, Any] | None = None
    options: dict[str, Any] = {}
    max_attempts: int
    deadline_seconds: int
    retention_seconds: int
    max_pixels: int | None = None
    output_content_type: str
    output_extension: str
    inspect_activity: str | None
    convert_activity: str
    convert_task_queue: str
    upload_signal_expected: bool = True
    """True when the store signals uploads (local store); otherwise the workflow polls the store."""
    upload_poll_seconds: int = 30
    heartbeat_timeout_seconds: float = 30.0
    webhook: WebhookConfig | None = None


class JobStateUpdate(BaseModel):
    """One state change of a job, written to the job index."""

    job_id: str
    state_version: int
    status: JobStatus
    progress: int | None = None
    attempt: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    deadline_at: datetime | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    claim_run_slot: bool = False
    """Apply the change only if the workspace is below its cap of running jobs."""


class InspectRequest(BaseModel):
    job_id: str
    tool_slug: str
    object_key: str
    declared_content_type: str
    declared_size_bytes: int
    max_pixels: int | None = None


class InputFacts(BaseModel):
    content_type: str
    size_bytes: int
    width: int | None = None
    height: int | None = None


class ConvertRequest(BaseModel):
    job_id: str
    tool_slug: str
    input_object_key: str | None
    input_size_bytes: int | None = None
    input_pixels: int | None = None
    input_name: str | None = None
    input_kind: str = "file"
    input_text: str | None = None
    """Unused since text inputs are stored as objects; kept for recorded histories."""
    input_json: dict[str, Any] | None = None
    """Unused since JSON inputs are stored as objects; kept for recorded histories."""
    output_object_key: str
    output_file_name: str
    options: dict[str, Any] = {}
    max_pixels: int | None = None


class ConvertResult(BaseModel):
    output_object_key: str
    file_name: str
    content_type: str
    size_bytes: int
    attempt: int
    metadata: dict[str, Any] = {}


class DeleteObjectsRequest(BaseModel):
    job_id: str
    object_keys: list[str]


class ObjectExistsRequest(BaseModel):
    job_id: str
    object_key: str


class JobOutcome(BaseModel):
    """Workflow result; the job index contains the full record."""

    status: JobStatus
    error_code: str | None = None


class WebhookEvent(BaseModel):
    """Input of ``WebhookWorkflow`` and its delivery activity: one event of one job."""

    job_id: str
    workspace_id: str
    event_id: str
    """Stays the same on every attempt, so receivers can drop repeats."""
    event_type: str
    """``job.succeeded``, ``job.failed`` or ``job.canceled``."""
    webhook: WebhookConfig


class WebhookOutcome(BaseModel):
    """Result of ``WebhookWorkflow``; the delivery log has every attempt."""

    delivered: bool
    error: str | None = None
