"""Building the public view of a job from its index row and, while it runs, from Temporal."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from app.api.schemas import DownloadIntent, JobInputPublic, JobPublic, UploadIntent
from app.db.models import Job, as_utc, utcnow
from app.storage.base import BlobStore
from app.workflows.types import JobStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveProgress:
    """Temporal's record of a running conversion: its attempt and last heartbeat."""

    attempt: int
    progress: int | None


async def read_live_progress(client: Client, job: Job) -> LiveProgress | None:
    """Read the pending activity of a running job; ``None`` when there is none or Temporal fails.

    ``describe`` shows heartbeat details and the attempt without needing a live worker.
    """
    try:
        description = await client.get_workflow_handle(job.id).describe()
    except RPCError as err:
        logger.warning(
            "Could not describe job workflow", extra={"job_id": job.id, "error": str(err)}
        )
        return None
    pending = list(description.raw_description.pending_activities)
    if not pending:
        return None
    activity = max(pending, key=lambda item: item.attempt)
    progress: int | None = None
    if activity.heartbeat_details.payloads:
        decoded = await client.data_converter.decode(activity.heartbeat_details.payloads)
        details = decoded[-1] if decoded else None
        if isinstance(details, dict) and isinstance(details.get("progress"), int):
            progress = details["progress"]
    return LiveProgress(attempt=activity.attempt, progress=progress)


def _upload_intent(job: Job, store: BlobStore) -> UploadIntent:
    expires_at = as_utc(job.upload_expires_at)
    assert job.input_object_key is not None
    assert job.input_content_type is not None
    assert expires_at is not None
    assert job.input_size_bytes is not None
    target = store.upload_target(
        job.input_object_key,
        content_type=job.input_content_type,
        size_bytes=job.input_size_bytes,
        expires_at=expires_at,
    )
    return UploadIntent(
        url=target.url,
        headers=target.headers,
        expires_at=expires_at,
        object_key=job.input_object_key,
    )


def to_public(job: Job, store: BlobStore, live: LiveProgress | None = None) -> JobPublic:
    upload_intent = None
    waiting_for_upload = (
        job.status == JobStatus.QUEUED and job.input_object_key and job.input_uploaded_at is None
    )
    if waiting_for_upload:
        upload_intent = _upload_intent(job, store)

    attempt = job.attempt
    progress = job.progress
    if live is not None and job.status == JobStatus.RUNNING:
        attempt = max(attempt, live.attempt)
        if live.progress is not None:
            progress = live.progress

    output: dict[str, Any] | None = None
    if job.output:
        output = {key: value for key, value in job.output.items() if key != "objectKey"}

    return JobPublic.model_validate(
        {
            "id": job.id,
            "tool_slug": job.tool_slug,
            "status": job.status,
            "progress": progress,
            "attempt": attempt,
            "retry_count": max(attempt - 1, 0),
            "max_attempts": job.max_attempts,
            "deadline_seconds": job.deadline_seconds,
            "deadline_at": as_utc(job.deadline_at),
            "created_at": as_utc(job.created_at),
            "started_at": as_utc(job.started_at),
            "finished_at": as_utc(job.finished_at),
            "closed_at": as_utc(job.closed_at),
            "input": JobInputPublic(
                kind=job.input_kind,
                name=job.input_name,
                content_type=job.input_content_type,
                size_bytes=job.input_size_bytes,
            ),
            "upload_intent": upload_intent,
            "output": output,
            "error": job.error,
            "cost_units": job.cost_units,
            "credits_charged": job.credits_charged,
            "credits_refunded": job.credits_refunded,
            "idempotency_key": job.idempotency_key,
            "metadata": job.job_metadata or {},
            "webhook_url": job.webhook_url,
        }
    )


def build_download_intent(job: Job, store: BlobStore, ttl_seconds: int) -> DownloadIntent:
    """Sign a download URL for the output of a succeeded job whose output has not expired."""
    output = job.output
    assert output is not None and not output.get("expired")
    expires_at = utcnow().replace(microsecond=0) + timedelta(seconds=ttl_seconds)
    url = store.download_url(
        output["objectKey"],
        content_type=output["contentType"],
        file_name=output["fileName"],
        expires_at=expires_at,
    )
    return DownloadIntent(
        url=url,
        expires_at=expires_at,
        file_name=output["fileName"],
        content_type=output["contentType"],
        size_bytes=output["sizeBytes"],
    )
