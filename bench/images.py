"""image-compress-api through the whole service against Pillow called directly.

- For a 4000x3000 and a 200x200 PNG, the median time from create to ``succeeded``, upload
  excluded, against the median of the same conversion called in this process, as a ratio
  and as an overhead in milliseconds.
- Jobs completed per second with 200 small jobs submitted at once.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.engines import images
from bench.service import FileInput, create_job, upload, wait_succeeded
from tests.images import noisy_png

SUBMIT_CONCURRENCY = 20
"""Requests in flight while submitting the throughput run's jobs."""
# The throughput run polls the listing, so 200 pollers do not compete with the service for CPU.
THROUGHPUT_POLL_SECONDS = 0.05


def _png_input(payload: bytes) -> FileInput:
    return FileInput("image-compress-api", "bench.png", "image/png", payload)


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
    job = await create_job(client, headers, _png_input(payload))
    upload_started = time.perf_counter()
    await upload(client, job, payload)
    upload_seconds = time.perf_counter() - upload_started
    await wait_succeeded(client, headers, job["id"])
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
            job = await create_job(client, headers, _png_input(payload))
            await upload(client, job, payload)

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
