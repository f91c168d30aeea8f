"""Benchmark image-compress-api through the whole service against Pillow called directly.

Starts its own stack (Temporal dev server, one worker, the API) on free ports and prints:

- for a 4000x3000 and a 200x200 PNG, the median time from create to ``succeeded``, upload
  excluded, against the median of the same conversion called in this process, as a ratio
  and as an overhead in milliseconds;
- jobs completed per second with 200 small jobs submitted at once, once with the Temporal
  dev server keeping its state in memory and once in an SQLite file as ``make run`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.devstack import DevStack, free_port
from app.engines import images
from tests.images import noisy_png

POLL_SECONDS = 0.005
SUBMIT_CONCURRENCY = 20
# The throughput run polls the listing, so 200 pollers do not compete with the service for CPU.
THROUGHPUT_POLL_SECONDS = 0.05


async def _create(client: httpx.AsyncClient, headers: dict[str, str], size: int) -> dict[str, Any]:
    body = {
        "toolSlug": "image-compress-api",
        "input": {
            "kind": "file",
            "name": "bench.png",
            "contentType": "image/png",
            "sizeBytes": size,
        },
    }
    response = await client.post("/v1/jobs", json=body, headers=headers)
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    return job


async def _upload(client: httpx.AsyncClient, job: dict[str, Any], payload: bytes) -> None:
    intent = job["uploadIntent"]
    response = await client.put(intent["url"], content=payload, headers=intent["headers"])
    response.raise_for_status()


async def _wait_succeeded(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> None:
    while True:
        response = await client.get(f"/v1/jobs/{job_id}", headers=headers)
        status = response.json()["status"]
        if status == "succeeded":
            return
        if status in ("failed", "canceled"):
            raise RuntimeError(f"job {job_id} ended {status}: {response.json()['error']}")
        await asyncio.sleep(POLL_SECONDS)


async def _wait_all_finished(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Poll the listing until no job is queued or running: two requests a poll, not one a job."""
    while True:
        busy = False
        for status in ("queued", "running"):
            response = await client.get(
                "/v1/jobs", params={"status": status, "limit": 1}, headers=headers
            )
            response.raise_for_status()
            busy = busy or bool(response.json()["data"])
        if not busy:
            return
        await asyncio.sleep(THROUGHPUT_POLL_SECONDS)


async def time_one_job(client: httpx.AsyncClient, headers: dict[str, str], payload: bytes) -> float:
    """Seconds from create to succeeded, less the time the upload took."""
    started = time.perf_counter()
    job = await _create(client, headers, len(payload))
    upload_started = time.perf_counter()
    await _upload(client, job, payload)
    upload_seconds = time.perf_counter() - upload_started
    await _wait_succeeded(client, headers, job["id"])
    return time.perf_counter() - started - upload_seconds


def time_direct(payload: bytes, work_dir: Path) -> float:
    source = work_dir / "direct.png"
    target = work_dir / "direct.jpg"
    source.write_bytes(payload)
    started = time.perf_counter()
    images.compress_image(
        source, target, quality=82, max_width=None, max_height=None, max_pixels=50_000_000
    )
    return time.perf_counter() - started


async def latency(
    client: httpx.AsyncClient, headers: dict[str, str], label: str, payload: bytes, runs: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        time_direct(payload, Path(tmp))
        direct = statistics.median(time_direct(payload, Path(tmp)) for _ in range(runs))
    await time_one_job(client, headers, payload)
    service = statistics.median([await time_one_job(client, headers, payload) for _ in range(runs)])
    print(
        f"{label:>10}: service median {service * 1000:7.1f} ms, direct Pillow median "
        f"{direct * 1000:7.1f} ms, ratio {service / direct:5.2f}x, "
        f"overhead {(service - direct) * 1000:6.1f} ms (target < 150 ms), runs {runs}"
    )


async def throughput(
    client: httpx.AsyncClient, headers: dict[str, str], payload: bytes, count: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        direct = statistics.median(time_direct(payload, Path(tmp)) for _ in range(20))

    # httpx spends CPU quadratic in the requests waiting for a pooled connection, so the client
    # keeps SUBMIT_CONCURRENCY requests in flight instead of 200 that compete with the service.
    in_flight = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def submit() -> None:
        async with in_flight:
            job = await _create(client, headers, len(payload))
            await _upload(client, job, payload)

    started = time.perf_counter()
    await asyncio.gather(*(submit() for _ in range(count)))
    await _wait_all_finished(client, headers)
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(
        f"throughput: {count} small jobs submitted at once finished in {elapsed:.2f} s, "
        f"{rate:.1f} jobs/s (target >= 25); direct Pillow alone: {1 / direct:.0f} conversions/s "
        f"on one core, ratio {rate * direct:.2f}"
    )


async def measure(api_url: str, key: str, runs: int, jobs: int, with_latency: bool) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=SUBMIT_CONCURRENCY)
    async with httpx.AsyncClient(base_url=api_url, timeout=120, limits=limits) as client:
        if with_latency:
            await latency(client, headers, "4000x3000", noisy_png(4000, 3000), runs)
            await latency(client, headers, "200x200", noisy_png(200, 200), runs)
        await throughput(client, headers, noisy_png(200, 200), jobs)


def run_stack(temporal_in_memory: bool, runs: int, jobs: int, with_latency: bool) -> None:
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
            asyncio.run(measure(stack.api_url, key, runs, jobs, with_latency))
        finally:
            stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="jobs per latency median")
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the throughput run")
    args = parser.parse_args()

    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        "shared by the service, Temporal and this client"
    )
    try:
        print("Temporal dev server with its state in memory:")
        run_stack(True, args.runs, args.jobs, with_latency=True)
        print("Temporal dev server with its state in an SQLite file, as 'make run' starts it:")
        run_stack(False, args.runs, args.jobs, with_latency=False)
    except (subprocess.CalledProcessError, RuntimeError) as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
