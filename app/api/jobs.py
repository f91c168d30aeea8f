"""Routes of ``/v1/jobs``: create, get, list, cancel, close and download intents."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from app.api.deps import (
    FilesWriter,
    JobsReader,
    JobsWriter,
    Principal,
    Services,
    ServicesDep,
    SessionDep,
)
from app.api.errors import ApiError
from app.api.health import JOBS_CREATED
from app.api.job_requests import ValidJob, check_idempotency_key, request_hash, validate_create
from app.api.job_views import build_download_intent, read_live_progress, to_public
from app.api.schemas import DownloadIntent, JobCreate, JobList, JobPublic
from app.catalog import get_tool
from app.config import Lane
from app.db import ledger
from app.db.models import Job, as_utc, utcnow
from app.storage.base import new_object_key
from app.workflows import names
from app.workflows.job import JOB_STATUS, TOOL_SLUG, WORKSPACE_ID, JobWorkflow
from app.workflows.types import FINISHED_STATUSES, JobParams, JobStatus, WebhookConfig

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

CANCEL_WAIT_SECONDS = 10.0
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _inline_input(body: JobCreate) -> tuple[str, bytes] | None:
    """Content type and bytes of a text or JSON input; None for a file input."""
    if body.input.kind == "text" and body.input.text is not None:
        return "text/html", body.input.text.encode()
    if body.input.kind == "json" and body.input.json_ is not None:
        return "application/json", json.dumps(body.input.json_).encode()
    return None


async def _store_bytes(services: Services, key: str, data: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await services.store.write_stream(key, chunks(), size_bytes=len(data))


def _job_id(workspace_id: str, idempotency_key: str | None) -> str:
    """Derive the job id, which is also the workflow id, so a repeated create finds the same job."""
    if idempotency_key is None:
        return f"job_{secrets.token_hex(12)}"
    digest = hashlib.sha256(f"{workspace_id}\n{idempotency_key}".encode()).hexdigest()
    return f"job_{digest[:24]}"


async def load_job(session: AsyncSession, principal: Principal, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None or job.workspace_id != principal.workspace_id:
        raise ApiError(
            "job_not_found", f"No job with id '{job_id}' in this workspace.", {"id": job_id}
        )
    return job


async def _present(services: Services, job: Job) -> JobPublic:
    live = None
    if job.status == JobStatus.RUNNING:
        live = await read_live_progress(services.temporal, job)
    return to_public(job, services.store, live)


def _workflow_params(services: Services, job: Job, valid: ValidJob, body: JobCreate) -> JobParams:
    tool = valid.tool
    assert tool.limits is not None
    assert tool.output is not None
    assert tool.lane is not None
    assert tool.retention_seconds is not None
    conversion = names.CONVERSIONS[tool.slug]
    settings = services.settings
    webhook = None
    if job.webhook_url is not None:
        webhook = WebhookConfig(
            url=job.webhook_url,
            retry_initial_seconds=settings.webhook_retry_initial_seconds,
            retry_max_interval_seconds=settings.webhook_retry_max_interval_seconds,
            retry_window_seconds=settings.webhook_retry_window_seconds,
            request_timeout_seconds=settings.webhook_request_timeout_seconds,
        )
    return JobParams(
        job_id=job.id,
        workspace_id=job.workspace_id,
        tool_slug=tool.slug,
        input_kind=job.input_kind,
        input_name=job.input_name,
        input_content_type=job.input_content_type,
        input_size_bytes=job.input_size_bytes,
        input_object_key=job.input_object_key,
        upload_expires_at=as_utc(job.upload_expires_at),
        options=valid.options,
        max_attempts=valid.max_attempts,
        deadline_seconds=valid.deadline_seconds,
        retention_seconds=min(
            tool.retention_seconds, settings.max_retention_seconds or tool.retention_seconds
        ),
        max_pixels=tool.limits.max_pixels,
        output_content_type=tool.output.content_type,
        output_extension=tool.output.extension,
        inspect_activity=conversion.inspect_activity,
        convert_activity=conversion.convert_activity,
        convert_task_queue=settings.task_queue(Lane(tool.lane)),
        upload_signal_expected=services.store.signals_uploads,
        upload_poll_seconds=settings.upload_poll_seconds,
        heartbeat_timeout_seconds=settings.activity_heartbeat_seconds,
        webhook=webhook,
    )


def _start_failure_message(err: RPCError, idempotency_key: str | None) -> str:
    if err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in err.message.lower():
        # A retry cannot help here; the operator has to finish the setup.
        return (
            "The job could not be started because the Temporal namespace lacks Worklane's "
            "search attributes. The operator must run 'python -m app.cli setup'."
        )
    return "The job could not be started because Temporal is unreachable. Retry the request" + (
        " with the same Idempotency-Key." if idempotency_key else "."
    )


async def _start_workflow(services: Services, params: JobParams) -> None:
    """Start the job's workflow; a second start of the same id finds the existing run."""
    try:
        await services.temporal.start_workflow(
            JobWorkflow.run,
            params,
            id=params.job_id,
            task_queue=services.settings.task_queue(Lane.LIGHT),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(WORKSPACE_ID, params.workspace_id),
                    SearchAttributePair(TOOL_SLUG, params.tool_slug),
                    SearchAttributePair(JOB_STATUS, JobStatus.QUEUED.value),
                ]
            ),
        )
    except WorkflowAlreadyStartedError:
        pass


@router.post("", status_code=201, response_model=JobPublic, response_model_by_alias=True)
async def create_job(
    body: JobCreate,
    principal: JobsWriter,
    services: ServicesDep,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JobPublic:
    """Create a job. For a file input, upload the file to ``uploadIntent.url`` next.

    With an ``Idempotency-Key`` header, a repeat of the same request returns the same job
    (200, header ``Idempotent-Replayed: true``); the same key with another body returns 409.
    """
    key = check_idempotency_key(idempotency_key)
    valid = await validate_create(body, services.settings)
    fingerprint = request_hash(body)
    job_id = _job_id(principal.workspace_id, key)
    now = utcnow()

    job = Job(
        id=job_id,
        workspace_id=principal.workspace_id,
        tool_slug=valid.tool.slug,
        status=JobStatus.QUEUED.value,
        idempotency_key=key,
        request_hash=fingerprint,
        input_kind=body.input.kind,
        input_name=body.input.name,
        input_content_type=body.input.content_type.lower() if body.input.content_type else None,
        input_size_bytes=body.input.size_bytes,
        max_attempts=valid.max_attempts,
        deadline_seconds=valid.deadline_seconds,
        cost_units=valid.tool.cost_units,
        created_at=now,
        job_metadata=body.metadata,
        webhook_url=body.webhook_url,
    )
    inline = _inline_input(body)
    job.input_object_key = new_object_key(principal.workspace_id, job_id, "input")
    if inline is None:
        job.upload_expires_at = now.replace(microsecond=0) + timedelta(
            seconds=services.settings.upload_intent_ttl_seconds
        )
    else:
        job.input_content_type, job.input_size_bytes = inline[0], len(inline[1])
        job.input_uploaded_at = now

    session.add(job)
    try:
        # The insert comes first, so a repeated request replays instead of being charged.
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return await _replay(
            services, session, principal, job_id, fingerprint, valid, body, response
        )
    try:
        await ledger.debit_job(session, job)
    except ledger.InsufficientCredits as err:
        await session.rollback()
        raise ApiError(
            "insufficient_credits",
            f"This job costs {err.cost} credit{'s' if err.cost != 1 else ''} but the workspace "
            f"balance is {err.balance}. "
            "Add credits to the workspace and retry.",
            {"balance": err.balance, "cost": err.cost},
        ) from err
    await session.commit()
    JOBS_CREATED.labels(valid.tool.slug).inc()

    if inline is not None:
        # Text and JSON inputs are stored like uploads, so workflow histories carry only keys.
        await _store_bytes(services, job.input_object_key, inline[1])
    params = _workflow_params(services, job, valid, body)
    try:
        await _start_workflow(services, params)
    except RPCError as err:
        logger.error("Could not start job workflow: %s", err, extra={"job_id": job_id})
        if key is None:
            # Without a key the client cannot retry this job, so fail it and refund it.
            job.status = JobStatus.FAILED.value
            job.finished_at = utcnow()
            job.error = {
                "code": "service_unavailable",
                "message": "Temporal was unreachable when the job was created.",
                "retryable": True,
            }
            session.add(job)
            await session.commit()
            await ledger.refund_job(session, job_id, job.credits_charged, "job never started")
        raise ApiError("service_unavailable", _start_failure_message(err, key)) from err
    logger.info("Job created", extra={"job_id": job_id, "tool_slug": valid.tool.slug})
    return to_public(job, services.store)


async def _replay(
    services: Services,
    session: AsyncSession,
    principal: Principal,
    job_id: str,
    fingerprint: str,
    valid: ValidJob,
    body: JobCreate,
    response: Response,
) -> JobPublic:
    existing = await load_job(session, principal, job_id)
    if existing.request_hash != fingerprint:
        raise ApiError(
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request. Use a new key for a new job.",
            {"jobId": job_id},
        )
    # The first request may have stored the row and then failed to start the workflow.
    if existing.status == JobStatus.QUEUED:
        try:
            await _start_workflow(services, _workflow_params(services, existing, valid, body))
        except RPCError as err:
            logger.error("Could not start job workflow: %s", err, extra={"job_id": job_id})
            raise ApiError(
                "service_unavailable", _start_failure_message(err, existing.idempotency_key)
            ) from err
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    return await _present(services, existing)


@router.get("/{job_id}", response_model=JobPublic, response_model_by_alias=True)
async def get_job(
    job_id: str, principal: JobsReader, services: ServicesDep, session: SessionDep
) -> JobPublic:
    """Return the job, with live ``progress`` and ``attempt`` while it runs."""
    return await _present(services, await load_job(session, principal, job_id))


def _encode_cursor(job: Job) -> str:
    created = as_utc(job.created_at)
    assert created is not None
    raw = f"{created.isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = base64.urlsafe_b64decode(padded).decode().split("|", 1)
        return datetime.fromisoformat(created).astimezone(UTC), job_id
    except ValueError as err:
        raise ApiError(
            "invalid_request", "The cursor is invalid. Pass nextCursor from the previous page."
        ) from err


@router.get("", response_model=JobList, response_model_by_alias=True)
async def list_jobs(
    principal: JobsReader,
    services: ServicesDep,
    session: SessionDep,
    status: JobStatus | None = None,
    tool_slug: Annotated[str | None, Query(alias="toolSlug")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> JobList:
    """List the workspace's jobs, newest first; closed jobs are hidden."""
    statement = select(Job).where(
        Job.workspace_id == principal.workspace_id, col(Job.closed_at).is_(None)
    )
    if status is not None:
        statement = statement.where(Job.status == status.value)
    if tool_slug is not None:
        if get_tool(tool_slug) is None:
            raise ApiError(
                "invalid_request",
                f"Unknown toolSlug '{tool_slug}'. GET /v1/tools lists the tools.",
                {"toolSlug": tool_slug},
            )
        statement = statement.where(Job.tool_slug == tool_slug)
    if cursor:
        created, last_id = _decode_cursor(cursor)
        statement = statement.where(
            (col(Job.created_at) < created)
            | ((col(Job.created_at) == created) & (col(Job.id) < last_id))
        )
    statement = statement.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
    rows = list((await session.exec(statement)).all())
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1]) if len(rows) > limit else None
    return JobList(data=[to_public(job, services.store) for job in page], next_cursor=next_cursor)


@router.post("/{job_id}/cancel", response_model=JobPublic, response_model_by_alias=True)
async def cancel_job(
    job_id: str, principal: JobsWriter, services: ServicesDep, session: SessionDep
) -> JobPublic:
    """Cancel a queued or running job; the running engine is stopped, not finished.

    Waits up to 10 seconds for the job to reach ``canceled`` and returns it as it is then.
    """
    job = await load_job(session, principal, job_id)
    if job.status in FINISHED_STATUSES:
        raise ApiError(
            "job_not_cancelable",
            f"The job already finished with status '{job.status}'.",
            {"status": job.status},
        )
    handle: WorkflowHandle[JobWorkflow, object] = services.temporal.get_workflow_handle(job_id)
    try:
        await handle.cancel()
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise ApiError(
                "service_unavailable", "Temporal is unreachable; retry the cancel."
            ) from err
    logger.info("Job cancel requested", extra={"job_id": job_id})

    deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        await session.refresh(job)
        if job.status in FINISHED_STATUSES:
            break
        await asyncio.sleep(0.1)
    return await _present(services, job)


@router.post("/{job_id}/close", response_model=JobPublic, response_model_by_alias=True)
async def close_job(
    job_id: str, principal: JobsWriter, services: ServicesDep, session: SessionDep
) -> JobPublic:
    """Hide a finished job from the listing; it stays readable by id with ``closedAt``."""
    job = await load_job(session, principal, job_id)
    if job.status not in FINISHED_STATUSES:
        raise ApiError(
            "job_not_finished",
            f"Only finished jobs can be closed; this job is '{job.status}'. Cancel it first.",
            {"status": job.status},
        )
    if job.closed_at is None:
        job.closed_at = utcnow()
        session.add(job)
        await session.commit()
        await session.refresh(job)
    return to_public(job, services.store)


@router.get(
    "/{job_id}/download-intent",
    response_model=DownloadIntent,
    response_model_by_alias=True,
    operation_id="get_download_intent",
)
@router.post(
    "/{job_id}/download-intent",
    response_model=DownloadIntent,
    response_model_by_alias=True,
    operation_id="create_download_intent",
)
async def download_intent(
    job_id: str, principal: FilesWriter, services: ServicesDep, session: SessionDep
) -> DownloadIntent:
    """Return a short-lived signed URL for the job's output; GET and POST are the same."""
    job = await load_job(session, principal, job_id)
    if job.status != JobStatus.SUCCEEDED or not job.output:
        if job.status in FINISHED_STATUSES:
            message = f"The job ended '{job.status}' and has no output. Create a new job."
        else:
            message = f"The job is '{job.status}'; its output can be downloaded once it succeeds."
        raise ApiError("download_not_ready", message, {"status": job.status})
    output = job.output
    if output.get("expired"):
        raise ApiError(
            "download_expired",
            f"The output expired at {output.get('expiresAt')} and was deleted. Run the job again.",
        )
    return build_download_intent(job, services.store, services.settings.download_intent_ttl_seconds)
