"""PDF tools: a 50-page text PDF through each tool's job against the same call in this process.

The job is timed from create to ``succeeded`` with the upload left out, the way the image
benchmark times it. The direct figure is the same ``app.engines.pdf`` function called in this
process on the same file. Both are medians, and the script prints their ratio and difference.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from app.engines import pdf
from bench.service import FileInput, create_job, upload, wait_succeeded
from tests.pdfs import text_pdf

PAGES = 50

POLL_SECONDS = 0.02
"""Polling interval for these jobs, which run for hundreds of milliseconds.

Polling every 5 ms, as the image benchmark does, made the API and Temporal take CPU time from
the conversion on two cores: the jobs measured 20 to 80 ms slower (2-vCPU VM).
"""

TOOLS: list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]] = [
    ("pdf-to-text", pdf.pdf_to_text, {}),
    ("pdf-to-markdown", pdf.pdf_to_markdown, {}),
    ("pdf-to-docx", pdf.pdf_to_docx, {}),
    ("pdf-to-images-zip", pdf.pdf_to_images_zip, {"dpi": 150}),
]


async def _time_job(client: httpx.AsyncClient, headers: dict[str, str], source: FileInput) -> float:
    started = time.perf_counter()
    job = await create_job(client, headers, source)
    upload_started = time.perf_counter()
    await upload(client, job, source.payload)
    upload_seconds = time.perf_counter() - upload_started
    await wait_succeeded(client, headers, job["id"], POLL_SECONDS)
    return time.perf_counter() - started - upload_seconds


def _time_direct(
    function: Callable[..., dict[str, Any]], source: Path, target: Path, options: dict[str, Any]
) -> float:
    started = time.perf_counter()
    function(source, target, page_ranges=None, max_pages=None, **options)
    return time.perf_counter() - started


async def measure(api_url: str, key: str, runs: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    payload = text_pdf(pages=PAGES)
    with tempfile.TemporaryDirectory(prefix="worklane-bench-pdf-") as tmp:
        source = Path(tmp) / "input.pdf"
        source.write_bytes(payload)
        target = Path(tmp) / "output"
        async with httpx.AsyncClient(base_url=api_url, timeout=300) as client:
            for tool, function, options in TOOLS:
                job_input = FileInput(tool, "paper.pdf", "application/pdf", payload)
                await _time_job(client, headers, job_input)
                _time_direct(function, source, target, options)
                job = statistics.median(
                    [await _time_job(client, headers, job_input) for _ in range(runs)]
                )
                direct = statistics.median(
                    [_time_direct(function, source, target, options) for _ in range(runs)]
                )
                print(
                    f"{tool:>18}: job {job * 1000:8.1f} ms, direct {direct * 1000:8.1f} ms, "
                    f"ratio {job / direct:5.2f}x, overhead {(job - direct) * 1000:6.1f} ms "
                    f"(target < 150 ms), {PAGES} pages, runs {runs}"
                )
