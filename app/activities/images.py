"""Image conversions with Pillow; large images run in a child process that a cancel kills."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

from temporalio import activity

from app.activities.conversion import conversion_files
from app.activities.inputs import DEFAULT_MAX_PIXELS
from app.catalog import ImageCompressOptions
from app.engines import images
from app.engines.isolated import run_isolated
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import ConvertRequest, ConvertResult

IN_THREAD_MAX_PIXELS = 1_000_000
"""Largest image converted in a worker thread: about 15 ms of Pillow on one core."""


class ImageActivities:
    def __init__(self, store: BlobStore, work_dir: Path, max_processes: int) -> None:
        self.store = store
        self.work_dir = work_dir
        self._slots = asyncio.Semaphore(max_processes)

    @activity.defn(name=names.COMPRESS_IMAGE)
    async def compress_image(self, request: ConvertRequest) -> ConvertResult:
        options = ImageCompressOptions.model_validate(request.options)
        async with conversion_files(
            self.store, self.work_dir, request, "output.jpg", self._slots
        ) as files:
            convert = functools.partial(
                images.compress_image,
                files.source,
                files.target,
                quality=options.quality,
                max_width=options.max_width,
                max_height=options.max_height,
                max_pixels=request.max_pixels or DEFAULT_MAX_PIXELS,
            )
            if request.input_pixels and request.input_pixels <= IN_THREAD_MAX_PIXELS:
                # Small images finish in milliseconds, sooner than a cancel could stop them,
                # so they skip the cost of a child process.
                result = await asyncio.to_thread(convert)
            else:
                result = await run_isolated(convert, on_started=files.started)

        size = files.output_size
        input_bytes = request.input_size_bytes or 0
        return ConvertResult(
            output_object_key=request.output_object_key,
            file_name=request.output_file_name,
            content_type="image/jpeg",
            size_bytes=size,
            attempt=activity.info().attempt,
            metadata={
                "width": result.width,
                "height": result.height,
                "bytes": size,
                "compressionRatio": round(input_bytes / size, 3) if size and input_bytes else None,
            },
        )
