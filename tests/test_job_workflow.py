"""JobWorkflow on the time-skipping test server, with the real activities and Pillow."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.activities.bookkeeping import BookkeepingActivities
from app.activities.images import ImageActivities
from app.activities.inputs import InputActivities
from app.activities.webhooks import WebhookActivities
from app.config import Settings
from app.db import accounts, webhooks
from app.db.models import Job, as_utc
from app.db.session import Database
from app.storage.base import new_object_key
from app.storage.local import LocalBlobStore
from app.webhooks import signing
from app.workflows import names
from app.workflows.job import JobWorkflow
from app.workflows.types import (
    ConvertRequest,
    ConvertResult,
    JobParams,
    WebhookConfig,
    WebhookOutcome,
)
from app.workflows.webhook import WebhookWorkflow, child_workflow_id
from tests.conftest import start_time_skipping_env, wait_for_engine_pid
from tests.images import gradient_png, noisy_png, slow_webp
from tests.webhook_receiver import running_receiver

RETENTION_SECONDS = 24 * 3600
HISTORY_DIR = Path(__file__).parent / "histories"
HISTORY_VERSION = "v4"
"""Prefix of the histories recorded from the current JobWorkflow.

Raise it when the workflow's commands change. Keep the older files, so the replay test still
covers them."""


async def record_history(handle: WorkflowHandle[Any, Any], scenario: str) -> None:
    """Save the workflow's history for the replay test when WORKLANE_RECORD_HISTORIES=1."""
    if os.environ.get("WORKLANE_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORY_DIR.mkdir(exist_ok=True)
    (HISTORY_DIR / f"{HISTORY_VERSION}-{scenario}.json").write_text(history.to_json())


@dataclass
class Harness:
    env: WorkflowEnvironment
    db: Database
    store: LocalBlobStore
    settings: Settings
    workspace_id: str
    task_queue: str

    async def create_job(
        self,
        payload: bytes | None,
        *,
        declared_type: str = "image/png",
        declared_size: int | None = None,
        upload_in_seconds: float = 900,
        deadline_seconds: int = 120,
        max_attempts: int = 3,
        options: dict[str, Any] | None = None,
        upload_signal_expected: bool = True,
        webhook_url: str | None = None,
    ) -> tuple[JobParams, WorkflowHandle[JobWorkflow, Any]]:
        """Start a job; with a payload, store it and signal the upload unless the job polls."""
        job_id = f"job_{uuid.uuid4().hex[:24]}"
        key = new_object_key(self.workspace_id, job_id, "input")
        size = declared_size if declared_size is not None else len(payload or b"")
        now = await self.env.get_current_time()
        params = JobParams(
            job_id=job_id,
            workspace_id=self.workspace_id,
            tool_slug="image-compress-api",
            input_kind="file",
            input_name="photo.png",
            input_content_type=declared_type,
            input_size_bytes=size,
            input_object_key=key,
            upload_expires_at=now + timedelta(seconds=upload_in_seconds),
            options=options or {"quality": 82},
            max_attempts=max_attempts,
            deadline_seconds=deadline_seconds,
            retention_seconds=RETENTION_SECONDS,
            max_pixels=50_000_000,
            output_content_type="image/jpeg",
            output_extension=".jpg",
            inspect_activity=names.INSPECT_INPUT,
            convert_activity=names.COMPRESS_IMAGE,
            convert_task_queue=self.task_queue,
            heartbeat_timeout_seconds=5,
            upload_signal_expected=upload_signal_expected,
            webhook=WebhookConfig(url=webhook_url, retry_initial_seconds=1)
            if webhook_url
            else None,
        )
        async with self.db.session() as session:
            session.add(
                Job(
                    id=job_id,
                    workspace_id=self.workspace_id,
                    tool_slug=params.tool_slug,
                    status="queued",
                    request_hash="test",
                    input_kind="file",
                    input_content_type=declared_type,
                    input_size_bytes=size,
                    input_object_key=key,
                    max_attempts=max_attempts,
                    deadline_seconds=deadline_seconds,
                    cost_units=1,
                    webhook_url=webhook_url,
                )
            )
            await session.commit()
        handle = await self.env.client.start_workflow(
            JobWorkflow.run, params, id=job_id, task_queue=self.task_queue
        )
        if payload is not None:
            await put_bytes(self.store, key, payload)
            if upload_signal_expected:
                await handle.signal(JobWorkflow.input_uploaded)
        return params, handle

    async def job(self, job_id: str) -> Job:
        async with self.db.session() as session:
            job = await session.get(Job, job_id)
            assert job is not None
            return job

    async def wait_for(
        self, job_id: str, predicate: Callable[[Job], bool], timeout: float = 30
    ) -> Job:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            job = await self.job(job_id)
            if predicate(job):
                return job
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"job {job_id} did not reach the expected state; last: {job.status}")
            await asyncio.sleep(0.05)


async def put_bytes(store: LocalBlobStore, key: str, payload: bytes) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield payload

    await store.write_stream(key, chunks(), size_bytes=len(payload))


def real_activities(
    settings: Settings, db: Database, store: LocalBlobStore
) -> list[Callable[..., Any]]:
    bookkeeping = BookkeepingActivities(db, store)
    inputs = InputActivities(store, settings.work_dir)
    images = ImageActivities(store, settings.work_dir, max_processes=2)
    # The test receivers listen on 127.0.0.1 over plain HTTP.
    receiver_settings = settings.model_copy(
        update={"webhook_allow_http": True, "webhook_allow_private_targets": True}
    )
    webhooks = WebhookActivities(db, store, receiver_settings)
    return [
        bookkeeping.record_job_state,
        bookkeeping.object_exists,
        bookkeeping.delete_objects,
        webhooks.deliver_webhook,
        inputs.inspect_input,
        images.compress_image,
    ]


@pytest.fixture
async def harness(
    time_skipping_env: WorkflowEnvironment,
    db: Database,
    store: LocalBlobStore,
    settings: Settings,
    workspace_id: str,
) -> Harness:
    return Harness(time_skipping_env, db, store, settings, workspace_id, f"tq-{uuid.uuid4().hex}")


def worker(harness: Harness, activities: list[Callable[..., Any]] | None = None) -> Worker:
    return Worker(
        harness.env.client,
        task_queue=harness.task_queue,
        workflows=[JobWorkflow, WebhookWorkflow],
        activities=activities or real_activities(harness.settings, harness.db, harness.store),
        max_heartbeat_throttle_interval=timedelta(seconds=0.2),
        default_heartbeat_throttle_interval=timedelta(seconds=0.2),
    )


def leftover_work_dirs(settings: Settings, job_id: str) -> list[str]:
    if not settings.work_dir.exists():
        return []
    return [p.name for p in settings.work_dir.iterdir() if p.name.startswith(job_id)]


async def test_png_compressed_then_purged_after_retention(harness: Harness) -> None:
    async with worker(harness):
        params, handle = await harness.create_job(gradient_png(64, 48))
        job = await harness.wait_for(params.job_id, lambda j: j.status == "succeeded")
        assert job.output is not None
        assert job.output["contentType"] == "image/jpeg"
        assert job.output["metadata"]["width"] == 64
        assert job.output["metadata"]["height"] == 48
        assert job.output["expired"] is False
        assert job.attempt == 1
        assert job.progress == 100
        output_key = job.output["objectKey"]
        assert await harness.store.size(output_key) == job.output["sizeBytes"]
        with Image.open(harness.store.path_for(output_key)) as image:
            assert image.format == "JPEG"

        # Awaiting the result lets the test server skip the 24-hour retention timer.
        await handle.result()
        await record_history(handle, "succeeded-then-purged")

    job = await harness.job(params.job_id)
    assert job.output is not None
    assert job.output["expired"] is True
    assert await harness.store.size(output_key) is None
    assert params.input_object_key is not None
    assert await harness.store.size(params.input_object_key) is None
    assert leftover_work_dirs(harness.settings, params.job_id) == []


async def test_retry_succeeds_on_third_attempt(harness: Harness) -> None:
    real = ImageActivities(harness.store, harness.settings.work_dir, max_processes=1)

    @activity.defn(name=names.COMPRESS_IMAGE)
    async def flaky_compress(request: ConvertRequest) -> ConvertResult:
        if activity.info().attempt < 3:
            raise RuntimeError("engine crashed (simulated worker fault)")
        return await real.compress_image(request)

    activities = [
        *real_activities(harness.settings, harness.db, harness.store)[:-1],
        flaky_compress,
    ]
    async with worker(harness, activities):
        params, handle = await harness.create_job(gradient_png())
        job = await harness.wait_for(params.job_id, lambda j: j.status == "succeeded")
        await record_history(handle, "retried-then-succeeded")
    assert job.attempt == 3
    assert job.error is None


async def test_deadline_fails_with_deadline_exceeded(harness: Harness) -> None:
    @activity.defn(name=names.COMPRESS_IMAGE)
    async def endless_compress(request: ConvertRequest) -> ConvertResult:
        while True:
            activity.heartbeat({"progress": 1})
            await asyncio.sleep(0.2)

    activities = [
        *real_activities(harness.settings, harness.db, harness.store)[:-1],
        endless_compress,
    ]
    async with worker(harness, activities):
        params, handle = await harness.create_job(gradient_png(), deadline_seconds=5)
        job = await harness.wait_for(params.job_id, lambda j: j.status == "failed")
        await _wait_closed(handle)
        await record_history(handle, "deadline-exceeded")
    assert job.error is not None
    assert job.error["code"] == "deadline_exceeded"
    assert job.error["retryable"] is True
    assert params.input_object_key is not None
    assert await harness.store.size(params.input_object_key) is None


async def test_upload_expiry_fails_job(harness: Harness) -> None:
    async with worker(harness):
        params, handle = await harness.create_job(None, declared_size=100, upload_in_seconds=600)
        outcome = await handle.result()
        await record_history(handle, "upload-expired")
    assert outcome.status == "failed"
    job = await harness.job(params.job_id)
    assert job.status == "failed"
    assert job.error is not None
    assert job.error["code"] == "upload_expired"
    assert job.started_at is None


async def test_text_declared_as_png_fails_type_mismatch(harness: Harness) -> None:
    async with worker(harness):
        params, handle = await harness.create_job(b"hello, this is not an image\n" * 10)
        job = await harness.wait_for(params.job_id, lambda j: j.status == "failed")
        await _wait_closed(handle)
        await record_history(handle, "input-type-mismatch")
    assert job.error is not None
    assert job.error["code"] == "input_type_mismatch"
    assert job.error["retryable"] is False


async def test_truncated_png_fails_corrupt_without_retry(harness: Harness) -> None:
    payload = noisy_png(600, 400)
    async with worker(harness):
        params, _ = await harness.create_job(payload[: len(payload) // 2])
        job = await harness.wait_for(params.job_id, lambda j: j.status == "failed")
    assert job.error is not None
    assert job.error["code"] == "input_corrupt"
    assert job.attempt == 1


async def test_cancel_while_queued(harness: Harness) -> None:
    async with worker(harness):
        params, handle = await harness.create_job(None, declared_size=100)
        await _wait_for_event(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        await record_history(handle, "canceled-while-queued")
    assert isinstance(failure.value.cause, CancelledError)
    job = await harness.job(params.job_id)
    assert job.status == "canceled"
    assert job.error is not None
    assert job.error["code"] == "canceled"
    assert job.error["canceledWhile"] == "queued"


async def test_cancel_while_running_kills_engine(harness: Harness) -> None:
    async with worker(harness):
        params, handle = await harness.create_job(
            slow_webp(),
            declared_type="image/webp",
            deadline_seconds=300,
            options={"maxWidth": 6000},
        )
        engine_pid = await wait_for_engine_pid(handle)
        assert psutil.pid_exists(engine_pid)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        await record_history(handle, "canceled-while-running")
        assert isinstance(failure.value.cause, CancelledError)

    job = await harness.job(params.job_id)
    assert job.status == "canceled"
    assert job.error is not None
    assert job.error["canceledWhile"] == "running"
    assert not _is_running(engine_pid)
    assert leftover_work_dirs(harness.settings, params.job_id) == []


async def _wait_for_event(
    handle: WorkflowHandle[Any, Any], event_type: EventType.ValueType, timeout: float = 30
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async for event in handle.fetch_history_events():
            if event.event_type == event_type:
                return
        await asyncio.sleep(0.05)
    pytest.fail(f"the workflow history never showed {EventType.Name(event_type)}")


async def _wait_for_statuses(
    harness: Harness,
    jobs: list[JobParams],
    predicate: Callable[[list[str]], bool],
    timeout: float = 30,
) -> list[str]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        statuses = [(await harness.job(params.job_id)).status for params in jobs]
        if predicate(statuses):
            return statuses
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"jobs never reached the expected states; last: {statuses}")
        await asyncio.sleep(0.05)


async def _wait_closed(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> None:
    """Wait for the run to close without awaiting its result, which would skip time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the workflow did not close")


def _is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_running_cap_keeps_extra_jobs_queued(harness: Harness) -> None:
    async with harness.db.session() as session:
        capped = await accounts.create_workspace(session, "capped", plan="free")
    harness.workspace_id = capped.id
    cap = accounts.PLANS["free"].max_running_jobs
    release = asyncio.Event()
    real = ImageActivities(harness.store, harness.settings.work_dir, max_processes=2)

    @activity.defn(name=names.COMPRESS_IMAGE)
    async def gated_compress(request: ConvertRequest) -> ConvertResult:
        while not release.is_set():
            activity.heartbeat({"progress": 5})
            await asyncio.sleep(0.1)
        return await real.compress_image(request)

    activities = [
        *real_activities(harness.settings, harness.db, harness.store)[:-1],
        gated_compress,
    ]
    async with worker(harness, activities):
        created = [await harness.create_job(gradient_png()) for _ in range(cap + 1)]
        jobs = [params for params, _ in created]
        # Jobs claim slots in whatever order their uploads are processed; count, do not name.
        statuses = await _wait_for_statuses(
            harness, jobs, lambda found: found.count("running") == cap
        )
        await asyncio.sleep(2.5)
        statuses = [(await harness.job(params.job_id)).status for params in jobs]
        assert statuses.count("running") == cap
        assert statuses.count("queued") == 1
        waiting = await harness.job(jobs[statuses.index("queued")].job_id)
        assert waiting.started_at is None
        waiting_handle = created[statuses.index("queued")][1]

        release.set()
        for params in jobs:
            finished = await harness.wait_for(params.job_id, lambda j: j.status == "succeeded")
            assert finished.error is None
        await record_history(waiting_handle, "waited-for-run-slot")


async def test_polling_job_finds_its_upload(harness: Harness) -> None:
    # The store sends no signal (S3): the workflow looks for the object after growing pauses.
    payload = gradient_png()
    async with worker(harness):
        params, handle = await harness.create_job(
            None, declared_size=len(payload), upload_signal_expected=False
        )
        await _wait_for_event(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        assert params.input_object_key is not None
        await put_bytes(harness.store, params.input_object_key, payload)
        job = await harness.wait_for(params.job_id, lambda j: j.status == "succeeded")
        await record_history(handle, "polled-upload")
    assert job.attempt == 1
    history = await handle.fetch_history()
    timers = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    # Pauses of 1, 2, 4 ... seconds; the first check comes after one second.
    assert timers[0] == 1
    assert timers == sorted(timers)


async def test_late_upload_deleted_when_url_expires(harness: Harness) -> None:
    # A server of its own: the shared one contains other tests' unfinished workflows, which
    # can keep it from skipping the ten minutes this test waits for.
    env = await start_time_skipping_env()
    harness = dataclasses.replace(harness, env=env)
    try:
        await _late_upload_deleted(harness)
    finally:
        await env.shutdown()


async def _late_upload_deleted(harness: Harness) -> None:
    async with worker(harness):
        params, handle = await harness.create_job(
            None, declared_size=100, upload_in_seconds=600, upload_signal_expected=False
        )
        await _wait_for_event(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        await handle.cancel()
        await harness.wait_for(params.job_id, lambda j: j.status == "canceled")
        # The presigned URL still works after the cancel: an upload arrives.
        assert params.input_object_key is not None
        await put_bytes(harness.store, params.input_object_key, b"x" * 100)
        assert await harness.store.size(params.input_object_key) == 100
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        await record_history(handle, "late-upload-deleted")
    assert await harness.store.size(params.input_object_key) is None


async def _webhook_outcome(
    harness: Harness, job_id: str
) -> tuple[WebhookOutcome, WorkflowHandle[Any, Any]]:
    handle = harness.env.client.get_workflow_handle(
        child_workflow_id(job_id), result_type=WebhookOutcome
    )
    outcome = await handle.result()
    return outcome, handle


async def _signing_secrets(harness: Harness) -> list[str]:
    async with harness.db.session() as session:
        signing = await webhooks.get_signing_secrets(session, harness.workspace_id)
    return signing.valid_at(datetime.now(UTC))


async def test_webhook_retried_until_delivered(harness: Harness) -> None:
    # A server of its own, so that it can skip the day of retention (see the late-upload test).
    env = await start_time_skipping_env()
    try:
        await _webhook_retried_until_delivered(dataclasses.replace(harness, env=env))
    finally:
        await env.shutdown()


async def _webhook_retried_until_delivered(harness: Harness) -> None:
    async with running_receiver([500, 200]) as receiver, worker(harness):
        params, handle = await harness.create_job(gradient_png(), webhook_url=receiver.url)
        job = await harness.wait_for(params.job_id, lambda j: j.status == "succeeded")
        outcome, webhook_handle = await _webhook_outcome(harness, params.job_id)
        await record_history(webhook_handle, "webhook-retried-then-delivered")
        await handle.result()
        await record_history(handle, "succeeded-with-webhook")

    assert outcome.delivered is True
    assert len(receiver.requests) == 2
    secrets = await _signing_secrets(harness)
    event_ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert event_ids == {"evt_" + params.job_id.removeprefix("job_")}
    for request in receiver.requests:
        signing.verify(secrets[0], request.headers, request.body, now=time.time())
    event = json.loads(receiver.requests[-1].body)
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == params.job_id
    assert event["data"]["status"] == "succeeded"
    assert event["data"]["webhookUrl"] == receiver.url
    assert event["data"]["downloadIntent"]["method"] == "GET"
    finished_at = as_utc(job.finished_at)
    assert finished_at is not None
    assert event["timestamp"] == finished_at.isoformat()

    async with harness.db.session() as session:
        deliveries = await webhooks.list_deliveries(session, params.job_id)
    assert [row.status_code for row in deliveries] == [500, 200]
    assert [row.attempt for row in deliveries] == [1, 2]


async def test_webhook_reports_failed_job(harness: Harness) -> None:
    async with running_receiver([204]) as receiver, worker(harness):
        params, handle = await harness.create_job(
            b"not an image at all\n" * 10, webhook_url=receiver.url
        )
        await harness.wait_for(params.job_id, lambda j: j.status == "failed")
        outcome, _ = await _webhook_outcome(harness, params.job_id)
        await _wait_closed(handle)
        await record_history(handle, "failed-with-webhook")
    assert outcome.delivered is True
    event = json.loads(receiver.requests[0].body)
    assert event["type"] == "job.failed"
    assert event["data"]["error"]["code"] == "input_type_mismatch"
    assert "downloadIntent" not in event["data"]


async def test_webhook_reports_canceled_job(harness: Harness) -> None:
    async with running_receiver([200]) as receiver, worker(harness):
        params, handle = await harness.create_job(None, declared_size=100, webhook_url=receiver.url)
        await _wait_for_event(handle, EventType.EVENT_TYPE_TIMER_STARTED)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        outcome, _ = await _webhook_outcome(harness, params.job_id)
        await record_history(handle, "canceled-with-webhook")
    assert outcome.delivered is True
    event = json.loads(receiver.requests[0].body)
    assert event["type"] == "job.canceled"
    assert event["data"]["error"]["canceledWhile"] == "queued"


async def test_webhook_redirect_stops_retries(harness: Harness) -> None:
    async with running_receiver([302, 200]) as receiver, worker(harness):
        params, _ = await harness.create_job(gradient_png(), webhook_url=receiver.url)
        await harness.wait_for(params.job_id, lambda j: j.status == "succeeded")
        outcome, _ = await _webhook_outcome(harness, params.job_id)
    assert outcome.delivered is False
    assert outcome.error is not None
    assert "302" in outcome.error
    assert len(receiver.requests) == 1
    async with harness.db.session() as session:
        deliveries = await webhooks.list_deliveries(session, params.job_id)
    assert [row.status_code for row in deliveries] == [302]
