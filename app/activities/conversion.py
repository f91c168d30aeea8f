"""The frame every conversion activity runs in: heartbeats, a private folder, input and output."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.activities.errors import input_failure
from app.activities.heartbeat import Progress, heartbeating
from app.engines.files import job_folder
from app.errors import InputError
from app.storage.base import BlobStore
from app.workflows.types import ConvertRequest, ConvertResult

_ENGINE_START_PERCENT = 10
_ENGINE_PERCENT_SPAN = 80


@dataclass
class ConversionFiles:
    source: Path
    target: Path
    progress: Progress
    output_size: int = 0
    """Bytes of the stored output, set when the block has finished."""

    def started(self, pid: int) -> None:
        """Report the engine process at once, so that operators and tests can see it."""
        self.progress.engine_pid = pid
        self.progress.beat()

    def engine_progress(self, fraction: float) -> None:
        """Set the job's progress from the engine's fraction done.

        The engine's share runs from 10 to 90 %: fetching the input comes before it, and
        checking and storing the output after it.
        """
        self.progress.percent = _ENGINE_START_PERCENT + int(_ENGINE_PERCENT_SPAN * fraction)


@contextlib.asynccontextmanager
async def conversion_files(
    store: BlobStore,
    work_dir: Path,
    request: ConvertRequest,
    output_name: str,
    slots: asyncio.Semaphore | None = None,
) -> AsyncIterator[ConversionFiles]:
    """Run the block with the input in a private folder, then store what it wrote to ``target``.

    Heartbeats start first, so a job waiting for one of the engine's ``slots`` can still be
    canceled. An InputError from the block becomes the job's non-retryable error, and the
    folder is removed on every path, cancellation included.
    """
    assert request.input_object_key is not None
    context = {"job_id": request.job_id, "tool": request.tool_slug}
    activity.logger.info("Conversion started", extra=context)
    started = time.monotonic()
    outcome = "internal_error"
    try:
        progress = Progress()
        await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
        async with heartbeating(progress), slots or contextlib.nullcontext():
            with job_folder(work_dir, request.job_id) as folder:
                files = ConversionFiles(
                    Path(folder) / "input", Path(folder) / output_name, progress
                )
                await store.fetch_to_path(request.input_object_key, files.source)
                progress.percent = 10
                try:
                    yield files
                except InputError as err:
                    raise input_failure(err) from err
                progress.percent = 90
                files.output_size = await store.put_from_path(
                    request.output_object_key, files.target
                )
        outcome = "succeeded"
    except ApplicationError as err:
        outcome = err.type or "internal_error"
        raise
    except asyncio.CancelledError:
        outcome = "canceled"
        raise
    finally:
        _record_conversion(request.tool_slug, outcome, time.monotonic() - started)
    activity.logger.info("Conversion finished", extra=context)


def _record_conversion(tool: str, outcome: str, seconds: float) -> None:
    """Count the conversion in the worker's metrics, by tool and outcome (an error code)."""
    meter = activity.metric_meter().with_additional_attributes({"tool": tool, "outcome": outcome})
    meter.create_histogram_float(
        "worklane_conversion_duration", "Time one conversion attempt took", "s"
    ).record(seconds)
    if outcome != "succeeded":
        meter.create_counter(
            "worklane_conversion_failures", "Conversion attempts that did not succeed"
        ).add(1)


def file_result(
    request: ConvertRequest, files: ConversionFiles, content_type: str, metadata: dict[str, Any]
) -> ConvertResult:
    """Build the result of a conversion that stored its output, with ``bytes`` in the metadata."""
    return ConvertResult(
        output_object_key=request.output_object_key,
        file_name=request.output_file_name,
        content_type=content_type,
        size_bytes=files.output_size,
        attempt=activity.info().attempt,
        metadata={**metadata, "bytes": files.output_size},
    )


def pdf_result(
    request: ConvertRequest, files: ConversionFiles, page_count: int, engine_version: str
) -> ConvertResult:
    """Build the result of a conversion that stored a PDF, with the metadata PDF tools report."""
    metadata = {"pageCount": page_count, "engineVersion": engine_version}
    return file_result(request, files, "application/pdf", metadata)
