"""Drive a running Worklane stack over HTTP, for the benchmarks."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.devstack import DevStack, free_port

POLL_SECONDS = 0.005


@dataclass(frozen=True)
class FileInput:
    tool: str
    name: str
    content_type: str
    payload: bytes


async def create_job(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    source: FileInput,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {
        "toolSlug": source.tool,
        "input": {
            "kind": "file",
            "name": source.name,
            "contentType": source.content_type,
            "sizeBytes": len(source.payload),
            "options": options or {},
        },
    }
    response = await client.post("/v1/jobs", json=body, headers=headers)
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


async def upload(client: httpx.AsyncClient, job: dict[str, Any], payload: bytes) -> None:
    intent = job["uploadIntent"]
    response = await client.put(intent["url"], content=payload, headers=intent["headers"])
    response.raise_for_status()


async def wait_succeeded(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    job_id: str,
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, Any]:
    while True:
        response = await client.get(f"/v1/jobs/{job_id}", headers=headers)
        job: dict[str, Any] = response.json()
        if job["status"] == "succeeded":
            return job
        if job["status"] in ("failed", "canceled"):
            raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
        await asyncio.sleep(poll_seconds)


async def download(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> bytes:
    intent = await client.post(f"/v1/jobs/{job_id}/download-intent", headers=headers)
    intent.raise_for_status()
    response = await client.get(intent.json()["url"])
    response.raise_for_status()
    return response.content


@contextmanager
def running_stack(temporal_in_memory: bool) -> Iterator[tuple[str, str]]:
    """Start a stack on free ports in a temporary folder; yield its API URL and a key."""
    with tempfile.TemporaryDirectory(prefix="worklane-bench-") as data:
        stack = DevStack(
            data_dir=Path(data),
            api_port=free_port(),
            temporal_port=free_port(),
            ui_port=None,
            log_dir=Path(data) / "logs",
            temporal_in_memory=temporal_in_memory,
        )
        try:
            key = stack.create_dev_key()
            stack.start()
            yield stack.api_url, key
        finally:
            stack.stop()
