"""Video tools: each tool's job on a 20 s 720p clip against the same ffmpeg command run directly.

A job is timed by its own ``createdAt`` and ``finishedAt`` fields, less the upload, and is
polled only every 250 ms. Polling every 20 ms made the API and Temporal take CPU time from
ffmpeg, which uses both cores: a 3.5 s compression measured 0.7 s slower (2-vCPU VM). The
direct figure runs the command that the tool builds, with the same options, as a plain
subprocess. Both are medians, printed with their ratio and difference.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx

from app.engines import video
from bench.service import FileInput, create_job, upload, wait_succeeded
from tests.videos import make_clip

POLL_SECONDS = 0.25

CLIP_SECONDS = 20

Builder = Callable[[str, Path, Path], list[str]]

TOOLS: list[tuple[str, str, Builder]] = [
    (
        "trim-video",
        "accurate 5 s",
        lambda ffmpeg, source, target: video.trim_command(
            ffmpeg, source, target, 5.0, 5.0, fast=False
        ),
    ),
    (
        "trim-video",
        "fast 5 s",
        lambda ffmpeg, source, target: video.trim_command(
            ffmpeg, source, target, 5.0, 5.0, fast=True
        ),
    ),
    (
        "compress-video",
        "crf 28 veryfast",
        lambda ffmpeg, source, target: video.compress_command(
            ffmpeg, source, target, crf=28, preset="veryfast", max_width=None, max_height=None
        ),
    ),
    (
        "video-to-gif",
        "5 s, 10 fps, 480 px",
        lambda ffmpeg, source, target: video.gif_command(
            ffmpeg, source, target.with_suffix(".gif"), start=0, duration=5, fps=10, width=480
        ),
    ),
    ("mute-video", "stream copy", video.mute_command),
]

TOOL_OPTIONS: dict[str, dict[str, object]] = {
    "accurate 5 s": {"start": 5, "duration": 5},
    "fast 5 s": {"start": 5, "duration": 5, "mode": "fast"},
}


async def _time_job(
    client: httpx.AsyncClient, headers: dict[str, str], source: FileInput, label: str
) -> float:
    job = await create_job(client, headers, source, TOOL_OPTIONS.get(label))
    upload_started = time.perf_counter()
    await upload(client, job, source.payload)
    upload_seconds = time.perf_counter() - upload_started
    finished = await wait_succeeded(client, headers, job["id"], POLL_SECONDS)
    created = datetime.fromisoformat(finished["createdAt"])
    ended = datetime.fromisoformat(finished["finishedAt"])
    return (ended - created).total_seconds() - upload_seconds


def _time_direct(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


async def measure(api_url: str, key: str, runs: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    ffmpeg = video.find_ffmpeg()
    assert ffmpeg is not None
    with tempfile.TemporaryDirectory(prefix="worklane-bench-video-") as tmp:
        folder = Path(tmp)
        clip = make_clip(folder / "clip.mp4", seconds=CLIP_SECONDS, size="1280x720", fps=30)
        payload = clip.read_bytes()
        async with httpx.AsyncClient(base_url=api_url, timeout=600) as client:
            for tool, label, build in TOOLS:
                command = build(ffmpeg, clip, folder / "direct.mp4")
                job_input = FileInput(tool, "clip.mp4", "video/mp4", payload)
                await _time_job(client, headers, job_input, label)
                _time_direct(command)
                job = statistics.median(
                    [await _time_job(client, headers, job_input, label) for _ in range(runs)]
                )
                direct = statistics.median([_time_direct(command) for _ in range(runs)])
                print(
                    f"{tool:>15} ({label}): job {job * 1000:8.1f} ms, direct ffmpeg "
                    f"{direct * 1000:8.1f} ms, ratio {job / direct:5.2f}x, overhead "
                    f"{(job - direct) * 1000:6.1f} ms, {CLIP_SECONDS} s 720p clip, runs {runs}"
                )
