"""The input check that runs before any conversion: size, real type and tool limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio import activity

from app.activities.errors import input_failure
from app.engines import images, office_formats
from app.engines.files import job_folder
from app.engines.sniff import SNIFF_BYTES, sniff_content_type
from app.errors import InputError, JobErrorCode
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import InputFacts, InspectRequest

# Pixel limit used when a tool sets none: about 200 MB of RGBA once decoded.
DEFAULT_MAX_PIXELS = 50_000_000

# Container that each video content type must have, as sniffing reports it. MP4 and QuickTime
# are one container format (ISO base media) that differs only in its brand, so either is
# accepted for the other.
VIDEO_CONTAINERS: dict[str, frozenset[str]] = {
    "video/mp4": frozenset({"video/mp4", "video/quicktime"}),
    "video/quicktime": frozenset({"video/mp4", "video/quicktime"}),
    "video/webm": frozenset({"video/webm"}),
}


class InputActivities:
    def __init__(self, store: BlobStore, work_dir: Path) -> None:
        self.store = store
        self.work_dir = work_dir

    @activity.defn(name=names.INSPECT_INPUT)
    async def inspect_input(self, request: InspectRequest) -> InputFacts:
        try:
            return await self._inspect(request)
        except InputError as err:
            raise input_failure(err) from err

    async def _check_video_container(self, object_key: str, declared: str) -> None:
        head = await self.store.read_head(object_key, SNIFF_BYTES)
        detected = sniff_content_type(head)
        if detected not in VIDEO_CONTAINERS[declared]:
            raise InputError(
                JobErrorCode.INPUT_TYPE_MISMATCH,
                f"The file was declared as {declared} but its bytes are "
                f"{detected or 'not a known video container'}. Upload an MP4, MOV or WebM "
                "video and declare its real type.",
            )

    async def _inspect(self, request: InspectRequest) -> InputFacts:
        size = await self.store.size(request.object_key)
        if size is None:
            raise InputError(
                JobErrorCode.INPUT_MISSING,
                "The input file is missing from storage. Create a new job.",
            )
        if size != request.declared_size_bytes:
            raise InputError(
                JobErrorCode.INPUT_SIZE_MISMATCH,
                f"The uploaded file has {size} bytes but the job declared "
                f"{request.declared_size_bytes}. Declare the exact size in input.sizeBytes.",
            )
        facts = InputFacts(content_type=request.declared_content_type, size_bytes=size)
        declared = request.declared_content_type.lower()
        if declared in VIDEO_CONTAINERS:
            await self._check_video_container(request.object_key, declared)
            return facts
        is_image = declared in images.IMAGE_INPUT_TYPES
        is_office = declared in office_formats.OFFICE_TYPES
        if not is_image and not is_office:
            return facts

        self.work_dir.mkdir(parents=True, exist_ok=True)
        with job_folder(self.work_dir, request.job_id) as tmp:
            path = Path(tmp) / "input"
            await self.store.fetch_to_path(request.object_key, path)
            if is_office:
                document = await asyncio.to_thread(
                    office_formats.identify_office_file, path, declared
                )
                return facts.model_copy(update={"content_type": document.content_type})
            image = await asyncio.to_thread(
                images.inspect_image,
                path,
                request.declared_content_type,
                request.max_pixels or DEFAULT_MAX_PIXELS,
            )
        return facts.model_copy(
            update={
                "content_type": image.content_type,
                "width": image.width,
                "height": image.height,
            }
        )
