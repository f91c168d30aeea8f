"""End-to-end fixtures: the Temporal dev server, a worker process and the API under uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymupdf
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from app.devstack import DevStack, free_port
from tests.s3server import BUCKET, S3Server

# "s3" runs the suite with the S3 store against a local S3-compatible server.
STORAGE_VARIABLE = "WORKLANE_TEST_STORAGE"

# Short enough that a test can watch an output expire, long enough to download it first.
RETENTION_SECONDS = 20


@dataclass
class Account:
    workspace_id: str
    key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Stack:
    dev: DevStack
    log_dir: Path
    worker_metrics_url: str
    s3: S3Server | None = None

    @property
    def url(self) -> str:
        return self.dev.api_url

    @property
    def storage(self) -> str:
        return "s3" if self.s3 else "local"

    def object_keys(self, job_id: str) -> list[str]:
        """Keys of the objects stored for a job, whichever store the stack uses."""
        if self.s3 is None:
            root = self.dev.data_dir / "blobs"
            return sorted(str(path.relative_to(root)) for path in root.glob(f"*/{job_id}/*"))
        listing = httpx.get(f"{self.s3.endpoint_url}/{BUCKET}", params={"list-type": "2"})
        listing.raise_for_status()
        keys = re.findall(r"<Key>([^<]+)</Key>", listing.text)
        return sorted(key for key in keys if key.split("/")[1:2] == [job_id])

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.dev.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise AssertionError(f"app.cli {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def new_account(
        self, scopes: str | None = None, balance: int = 1000, plan: str = "scale"
    ) -> Account:
        workspace_id = self.cli(
            "workspace", "create", "e2e", "--balance", str(balance), "--plan", plan
        ).strip()
        args = ["key", "create", workspace_id]
        if scopes:
            args += ["--scopes", scopes]
        output = self.cli(*args)
        fields = dict(
            line.split(":", 1)
            for line in output.splitlines()
            if ":" in line and "shown" not in line
        )
        return Account(workspace_id, fields["key"].strip(), fields["key id"].strip())


@contextlib.contextmanager
def running_stack(
    data_dir: Path,
    database_url: str,
    request: pytest.FixtureRequest,
    *,
    worker_lanes: tuple[str, ...] = ("",),
    extra_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Start Temporal, the workers and the API on free ports, with the store the leg selects."""
    log_dir = data_dir / "logs"
    s3: S3Server | None = None
    env = {
        "WORKLANE_ENVIRONMENT": "test",
        "WORKLANE_DATABASE_URL": database_url,
        "WORKLANE_MAX_RETENTION_SECONDS": str(RETENTION_SECONDS),
        "WORKLANE_LOG_FORMAT": "json",
        # Webhook tests run their receivers on 127.0.0.1 over plain HTTP.
        "WORKLANE_WEBHOOK_ALLOW_HTTP": "true",
        "WORKLANE_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "WORKLANE_WEBHOOK_RETRY_INITIAL_SECONDS": "1",
    }
    if os.environ.get(STORAGE_VARIABLE) == "s3":
        s3 = request.getfixturevalue("s3_server")
        env |= s3.settings_env()
    metrics_url = ""
    if len(worker_lanes) == 1:
        metrics_address = f"127.0.0.1:{free_port()}"
        env["WORKLANE_WORKER_METRICS_ADDRESS"] = metrics_address
        metrics_url = f"http://{metrics_address}/metrics"
    dev = DevStack(
        data_dir=data_dir,
        api_port=free_port(),
        temporal_port=free_port(),
        ui_port=None,
        log_dir=log_dir,
        extra_env=env | (extra_env or {}),
        worker_lanes=worker_lanes,
    )
    dev.start()
    try:
        yield Stack(dev, log_dir, metrics_url, s3)
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def stack(data_dir: Path, database_url: str, request: pytest.FixtureRequest) -> Iterator[Stack]:
    with running_stack(data_dir, database_url, request) as started:
        yield started


@pytest.fixture
def local_store(stack: Stack) -> None:
    """Skip a test of the API's own upload and download URLs when the stack uses S3."""
    if stack.s3 is not None:
        pytest.skip("checks the local store's URLs; the S3 leg checks the bucket's instead")


@pytest.fixture
def s3(stack: Stack) -> S3Server:
    """The stack's S3 server; skips the test when the stack uses the local store."""
    if stack.s3 is None:
        pytest.skip(f"runs with {STORAGE_VARIABLE}=s3 only")
    return stack.s3


@pytest.fixture(scope="session")
def account(stack: Stack) -> Account:
    return stack.new_account()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def temporal(stack: Stack) -> Client:
    return await Client.connect(
        f"127.0.0.1:{stack.dev.temporal_port}", data_converter=pydantic_data_converter
    )


async def wait_for_job(
    http: httpx.AsyncClient,
    account: Account,
    job_id: str,
    statuses: tuple[str, ...] = ("succeeded", "failed", "canceled"),
    timeout: float = 60,
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await http.get(f"/v1/jobs/{job_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in statuses:
            return job
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"job {job_id} stayed '{job['status']}' past {timeout} s")
        await asyncio.sleep(0.05)


async def create_file_job(
    http: httpx.AsyncClient,
    account: Account,
    payload: bytes,
    *,
    name: str = "photo.png",
    content_type: str = "image/png",
    options: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "toolSlug": "image-compress-api",
        "input": {
            "kind": "file",
            "name": name,
            "contentType": content_type,
            "sizeBytes": len(payload),
            "options": options or {},
        },
        **extra,
    }
    response = await http.post("/v1/jobs", json=body, headers=account.headers | (headers or {}))
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


async def upload(http: httpx.AsyncClient, job: dict[str, Any], payload: bytes) -> httpx.Response:
    intent = job["uploadIntent"]
    return await http.put(intent["url"], content=payload, headers=intent["headers"])


async def run_file_job(
    http: httpx.AsyncClient, account: Account, payload: bytes, **kwargs: Any
) -> dict[str, Any]:
    job = await create_file_job(http, account, payload, **kwargs)
    response = await upload(http, job, payload)
    assert response.status_code == 200, response.text
    return await wait_for_job(http, account, job["id"])


async def download_pdf(http: httpx.AsyncClient, account: Account, job_id: str) -> pymupdf.Document:
    intent = (await http.post(f"/v1/jobs/{job_id}/download-intent", headers=account.headers)).json()
    response = await http.get(intent["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    return pymupdf.open(stream=response.content, filetype="pdf")
