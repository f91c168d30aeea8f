"""Rate limits over HTTP, shared by two API processes through Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from app.devstack import free_port
from tests.e2e.conftest import Stack
from tests.test_ratelimit import REDIS_URL, redis_available


def _start_api(stack: Stack, port: int) -> subprocess.Popen[bytes]:
    env = stack.dev.env() | {"WORKLANE_REDIS_URL": REDIS_URL, "WORKLANE_API_PORT": str(port)}
    return subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "app.api.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture(scope="module")
def two_apis(stack: Stack) -> Iterator[list[str]]:
    if not asyncio.run(redis_available()):
        pytest.skip(f"Redis is not reachable at {REDIS_URL}; start it to test shared limits")
    ports = [free_port(), free_port()]
    processes = [_start_api(stack, port) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url in urls:
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                pytest.fail(f"the API at {url} did not start")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)


async def test_limit_shared_by_two_api_processes(stack: Stack, two_apis: list[str]) -> None:
    workspace_id = stack.cli("workspace", "create", "limits", "--plan", "free").strip()
    output = stack.cli("key", "create", workspace_id, "--rate", "0.2", "--burst", "4")
    key = next(
        line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("key:")
    )
    headers = {"Authorization": f"Bearer {key}"}

    async with httpx.AsyncClient(timeout=10) as client:
        responses = [
            await client.get(f"{two_apis[i % 2]}/v1/tools/image-compress-api", headers=headers)
            for i in range(8)
        ]
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 4 + [429] * 4
    limited = responses[-1]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert limited.json()["error"]["details"] == {"requestsPerSecond": 0.2, "burst": 4}
    assert 1 <= int(limited.headers["Retry-After"]) <= 5


async def test_plan_limit_without_override(stack: Stack) -> None:
    # The stack's API keeps its buckets in its own memory; the free plan allows bursts of 10.
    account = stack.new_account(plan="free")
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        statuses = [
            (await client.get("/v1/tools", headers=account.headers)).status_code for _ in range(12)
        ]
    assert statuses[:10] == [200] * 10
    assert 429 in statuses[10:]
