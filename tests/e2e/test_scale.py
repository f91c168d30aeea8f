"""Several workers by lane, and jobs that survive a killed worker, a Temporal restart and an
API restart, with real processes.

The stack here has three workers: one for the light and documents lanes and two for the media
lane, so that a media worker can be killed while the other takes its work over.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests import documents, pdfs
from tests.conftest import wait_for_engine_pid
from tests.e2e.conftest import (
    Account,
    Stack,
    create_file_job,
    run_file_job,
    running_stack,
    upload,
    wait_for_job,
)
from tests.images import gradient_png
from tests.videos import make_clip

LANES = ("light,documents", "media", "media")
HEARTBEAT_SECONDS = 2


@pytest.fixture(scope="module")
def scale_stack(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("scale-data")
    extra = {
        "WORKLANE_ACTIVITY_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        # Production's default, which the main stack turns off for its loopback receivers.
        "WORKLANE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "false",
    }
    with running_stack(
        data_dir, database_url, request, worker_lanes=LANES, extra_env=extra
    ) as stack:
        yield stack


@pytest.fixture
async def api(scale_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=scale_stack.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def scale_account(scale_stack: Stack) -> Account:
    return scale_stack.new_account(balance=100)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # A few seconds of libx264 at preset medium on a 2-vCPU VM.
    path = make_clip(
        tmp_path_factory.mktemp("scale-clip") / "clip.mp4", seconds=12, size="960x540", fps=30
    )
    return path.read_bytes()


async def _temporal(stack: Stack) -> Client:
    return await Client.connect(
        f"127.0.0.1:{stack.dev.temporal_port}", data_converter=pydantic_data_converter
    )


def _workers_that_logged(stack: Stack, job_id: str, message: str) -> set[str]:
    found = set()
    for name in stack.dev.worker_names:
        for line in (stack.log_dir / f"{name}.log").read_text().splitlines():
            if not line.startswith("{"):
                continue
            record = json.loads(line)
            if record.get("job_id") == job_id and record.get("message") == message:
                found.add(name)
    return found


async def _start_compression(
    api: httpx.AsyncClient, account: Account, clip: bytes
) -> dict[str, Any]:
    job = await create_file_job(
        api,
        account,
        clip,
        toolSlug="compress-video",
        name="clip.mp4",
        content_type="video/mp4",
        options={"preset": "medium"},
    )
    assert (await upload(api, job, clip)).status_code == 200
    return job


async def test_split_lanes_run_every_tool(
    scale_stack: Stack, api: httpx.AsyncClient, scale_account: Account, tmp_path: Path
) -> None:
    small_clip = make_clip(tmp_path / "small.mp4", seconds=2).read_bytes()
    inputs: list[tuple[str, str, str, bytes]] = [
        ("image-compress-api", "photo.png", "image/png", gradient_png()),
        ("word-to-pdf", "letter.docx", documents.DOCX_TYPE, documents.make_docx()),
        ("pdf-to-text", "paper.pdf", "application/pdf", pdfs.mixed_pdf()),
        ("mute-video", "clip.mp4", "video/mp4", small_clip),
    ]
    jobs = await asyncio.gather(
        *(
            run_file_job(api, scale_account, data, toolSlug=tool, name=name, content_type=kind)
            for tool, name, kind, data in inputs
        )
    )
    for job in jobs:
        assert job["status"] == "succeeded", job["error"]
    lanes = {
        job["toolSlug"]: _workers_that_logged(scale_stack, job["id"], "Conversion started")
        for job in jobs
    }
    assert lanes["image-compress-api"] == {"worker-1"}
    assert lanes["word-to-pdf"] == {"worker-1"}
    assert lanes["pdf-to-text"] == {"worker-1"}
    assert len(lanes["mute-video"]) == 1
    assert lanes["mute-video"] <= {"worker-2", "worker-3"}


async def test_killed_worker_job_retried(
    scale_stack: Stack, api: httpx.AsyncClient, scale_account: Account, clip: bytes
) -> None:
    dev = scale_stack.dev
    balance_before = (await api.get("/v1/credits", headers=scale_account.headers)).json()
    job = await _start_compression(api, scale_account, clip)
    temporal = await _temporal(scale_stack)
    ffmpeg_pid = await wait_for_engine_pid(temporal.get_workflow_handle(job["id"]))
    ffmpeg = psutil.Process(ffmpeg_pid)
    worker_pid = ffmpeg.ppid()
    victim = next(name for name in dev.worker_names if dev.processes[name].pid == worker_pid)
    assert victim in {"worker-2", "worker-3"}
    await asyncio.sleep(1.0)

    os.kill(worker_pid, signal.SIGKILL)
    dev.processes[victim].wait(timeout=10)
    # ffmpeg dies with its worker instead of running on as an orphan.
    deadline = asyncio.get_running_loop().time() + 5
    while ffmpeg.is_running() and ffmpeg.status() != psutil.STATUS_ZOMBIE:
        assert asyncio.get_running_loop().time() < deadline, "ffmpeg outlived its worker"
        await asyncio.sleep(0.05)
    running = (await api.get(f"/v1/jobs/{job['id']}", headers=scale_account.headers)).json()
    assert running["status"] == "running"

    finished = await wait_for_job(api, scale_account, job["id"], timeout=120)
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["attempt"] == 2
    assert finished["creditsCharged"] == finished["costUnits"]
    assert finished["creditsRefunded"] == 0
    outputs = [key for key in scale_stack.object_keys(job["id"]) if "/output-" in key]
    assert len(outputs) == 1
    balance_after = (await api.get("/v1/credits", headers=scale_account.headers)).json()
    assert balance_after["balance"] == balance_before["balance"] - finished["costUnits"]
    debits = [entry for entry in balance_after["data"] if entry.get("jobId") == job["id"]]
    assert len(debits) == 1

    # The killed worker's folder stays until a worker starts again on this machine.
    work_dir = dev.data_dir / "work"
    orphans = [path for path in work_dir.iterdir() if path.name.startswith(job["id"])]
    assert orphans
    dev.start_worker(victim)
    deadline = asyncio.get_running_loop().time() + 30
    while any(path.exists() for path in orphans):
        assert asyncio.get_running_loop().time() < deadline, "the new worker left the folder"
        await asyncio.sleep(0.2)


async def test_temporal_restart_keeps_jobs(
    scale_stack: Stack, api: httpx.AsyncClient, scale_account: Account, clip: bytes
) -> None:
    running = await _start_compression(api, scale_account, clip)
    temporal = await _temporal(scale_stack)
    await wait_for_engine_pid(temporal.get_workflow_handle(running["id"]))
    waiting = await create_file_job(api, scale_account, gradient_png())

    scale_stack.dev.restart_temporal()

    assert (await upload(api, waiting, gradient_png())).status_code == 200
    for job in (running, waiting):
        finished = await wait_for_job(api, scale_account, job["id"], timeout=120)
        assert finished["status"] == "succeeded", finished["error"]
    after = await run_file_job(api, scale_account, gradient_png(40, 40))
    assert after["status"] == "succeeded"


async def test_api_restart_keeps_jobs(
    scale_stack: Stack, api: httpx.AsyncClient, scale_account: Account, clip: bytes
) -> None:
    running = await _start_compression(api, scale_account, clip)
    waiting = await create_file_job(api, scale_account, gradient_png())

    scale_stack.dev.stop_process("api", signal.SIGKILL)
    with pytest.raises(httpx.TransportError):
        await api.get("/healthz")
    scale_stack.dev.start_api()

    # The upload URL issued before the restart still works.
    assert (await upload(api, waiting, gradient_png())).status_code == 200
    for job in (running, waiting):
        finished = await wait_for_job(api, scale_account, job["id"], timeout=120)
        assert finished["status"] == "succeeded", finished["error"]


async def test_loopback_webhook_rejected_at_create(
    api: httpx.AsyncClient, scale_account: Account
) -> None:
    for url in ("https://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data"):
        job = {
            "toolSlug": "image-compress-api",
            "input": {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 9},
            "webhookUrl": url,
        }
        response = await api.post("/v1/jobs", json=job, headers=scale_account.headers)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_job"
        fields = {entry["field"]: entry["message"] for entry in error["details"]["fields"]}
        assert "not a public address" in fields["webhookUrl"]
