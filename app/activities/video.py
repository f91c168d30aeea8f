"""Video tools with ffmpeg: probe in a child process, check limits, run, probe the output."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image
from temporalio import activity
from temporalio.exceptions import ApplicationError

from app.activities.conversion import ConversionFiles, conversion_files, file_result
from app.catalog import (
    CompressVideoOptions,
    TrimVideoOptions,
    VideoToGifOptions,
    get_tool,
)
from app.engines import video
from app.engines.isolated import run_isolated
from app.engines.video import FfmpegFailed, VideoFacts
from app.errors import InputError, JobErrorCode
from app.storage.base import BlobStore
from app.workflows import names
from app.workflows.types import ConvertRequest, ConvertResult

MP4 = "video/mp4"


def check_limits(request: ConvertRequest, facts: VideoFacts) -> None:
    """Fail with ``input_too_large``, naming the limit, before any work starts."""
    tool = get_tool(request.tool_slug)
    limits = tool.limits if tool else None
    if limits is None:
        return
    if limits.max_seconds is not None and facts.duration > limits.max_seconds:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The video lasts {facts.duration:.1f} s; {request.tool_slug} takes at most "
            f"{limits.max_seconds} s. Trim it first.",
        )
    if limits.max_pixels is not None and facts.width * facts.height > limits.max_pixels:
        raise InputError(
            JobErrorCode.INPUT_TOO_LARGE,
            f"The video is {facts.width}x{facts.height} pixels; {request.tool_slug} takes at "
            f"most {limits.max_pixels:,} pixels per frame, such as 3840x2160.",
        )


def check_start(start: float, facts: VideoFacts) -> None:
    """Reject a start at or after the last frame's, where no frame would be left to keep."""
    last_frame = facts.duration - (1 / facts.fps if facts.fps else 0)
    if start >= facts.duration or start > last_frame:
        raise InputError(
            JobErrorCode.INVALID_OPTIONS,
            f"start is {start:g} s but the video lasts {facts.duration:.3f} s and its last "
            f"frame starts at {max(last_frame, 0):.3f} s. Choose a start before that.",
        )


# ffmpeg's messages when it wrote no frame, such as for a clip that its fps filter emptied.
_NO_FRAMES = ("Nothing was written into output file", "Output file is empty")

# Tools whose options choose the part of the video to keep.
_TOOLS_WITH_START = frozenset({"trim-video", "video-to-gif"})


def _no_frames_error(request: ConvertRequest) -> InputError:
    if request.tool_slug in _TOOLS_WITH_START:
        return InputError(
            JobErrorCode.INVALID_OPTIONS,
            "ffmpeg found no frame to keep in the selected part of the video. Choose an "
            "earlier start or a longer duration.",
        )
    return InputError(
        JobErrorCode.INPUT_CORRUPT,
        "ffmpeg found no frame to keep in the video. Check that it plays, then upload it again.",
    )


class VideoActivities:
    def __init__(self, store: BlobStore, work_dir: Path, ffmpeg: str, max_processes: int) -> None:
        self.store = store
        self.work_dir = work_dir
        self.ffmpeg = ffmpeg
        self._slots = asyncio.Semaphore(max_processes)

    async def _run(
        self,
        request: ConvertRequest,
        output_name: str,
        content_type: str,
        plan: Callable[
            [ConversionFiles, VideoFacts], Awaitable[tuple[list[str], float, dict[str, Any]]]
        ],
    ) -> ConvertResult:
        """Probe the input, check limits, run the command ``plan`` returns, and probe the output.

        ``plan`` returns the ffmpeg command, the expected output duration for progress, and
        metadata to report besides the output's own.
        """
        async with conversion_files(
            self.store, self.work_dir, request, output_name, self._slots
        ) as files:
            facts = await run_isolated(video.probe_video, files.source)
            check_limits(request, facts)
            command, expected_seconds, extra = await plan(files, facts)

            try:
                await video.run_ffmpeg(
                    command,
                    expected_seconds,
                    on_started=files.started,
                    on_progress=files.engine_progress,
                )
            except FfmpegFailed as err:
                if any(text in str(err) for text in _NO_FRAMES):
                    raise _no_frames_error(request) from err
                activity.logger.warning(
                    "ffmpeg failed: %s",
                    err,
                    extra={"job_id": request.job_id, "attempt": activity.info().attempt},
                )
                raise ApplicationError(str(err), type=JobErrorCode.ENGINE_FAILED.value) from err
            try:
                metadata = await self._describe_output(files.target, content_type)
            except InputError as err:
                raise _no_frames_error(request) from err

        metadata = {**metadata, **extra, "inputBytes": request.input_size_bytes}
        return file_result(request, files, content_type, metadata)

    @staticmethod
    async def _describe_output(target: Path, content_type: str) -> dict[str, Any]:
        """Probe the output; raises InputError when it contains no frame."""
        if content_type == "image/gif":
            return await asyncio.to_thread(_describe_gif, target)
        output = await run_isolated(video.probe_video, target)
        return output.summary()

    @activity.defn(name=names.TRIM_VIDEO)
    async def trim_video(self, request: ConvertRequest) -> ConvertResult:
        options = TrimVideoOptions.model_validate(request.options)

        async def plan(
            files: ConversionFiles, facts: VideoFacts
        ) -> tuple[list[str], float, dict[str, Any]]:
            check_start(options.start, facts)
            if options.mode == "fast":
                video.check_copyable(
                    facts, with_audio=True, alternative='Use mode "accurate", which re-encodes.'
                )
            end = options.end if options.end is not None else facts.duration
            if options.duration is not None:
                end = options.start + options.duration
            length = min(end, facts.duration) - options.start
            command = video.trim_command(
                self.ffmpeg,
                files.source,
                files.target,
                options.start,
                length,
                fast=options.mode == "fast",
            )
            start = options.start
            if options.mode == "fast":
                # A copy cut begins at the keyframe at or before the requested start.
                start = await run_isolated(video.keyframe_before, files.source, options.start)
            extra = {"start": round(start, 3), "requestedStart": options.start}
            return command, length, {**extra, "mode": options.mode}

        return await self._run(request, "output.mp4", MP4, plan)

    @activity.defn(name=names.COMPRESS_VIDEO)
    async def compress_video(self, request: ConvertRequest) -> ConvertResult:
        options = CompressVideoOptions.model_validate(request.options)

        async def plan(
            files: ConversionFiles, facts: VideoFacts
        ) -> tuple[list[str], float, dict[str, Any]]:
            command = video.compress_command(
                self.ffmpeg,
                files.source,
                files.target,
                crf=options.crf,
                preset=options.preset,
                max_width=options.max_width,
                max_height=options.max_height,
            )
            return command, facts.duration, {"crf": options.crf, "preset": options.preset}

        result = await self._run(request, "output.mp4", MP4, plan)
        input_bytes = request.input_size_bytes or 0
        ratio = round(input_bytes / result.size_bytes, 3) if result.size_bytes else None
        return result.model_copy(
            update={"metadata": {**result.metadata, "compressionRatio": ratio}}
        )

    @activity.defn(name=names.VIDEO_TO_GIF)
    async def video_to_gif(self, request: ConvertRequest) -> ConvertResult:
        options = VideoToGifOptions.model_validate(request.options)

        async def plan(
            files: ConversionFiles, facts: VideoFacts
        ) -> tuple[list[str], float, dict[str, Any]]:
            check_start(options.start, facts)
            length = min(options.duration, facts.duration - options.start)
            command = video.gif_command(
                self.ffmpeg,
                files.source,
                files.target,
                start=options.start,
                duration=length,
                fps=options.fps,
                width=options.width,
            )
            return command, length, {"start": options.start, "fps": options.fps}

        return await self._run(request, "output.gif", "image/gif", plan)

    @activity.defn(name=names.MUTE_VIDEO)
    async def mute_video(self, request: ConvertRequest) -> ConvertResult:
        async def plan(
            files: ConversionFiles, facts: VideoFacts
        ) -> tuple[list[str], float, dict[str, Any]]:
            video.check_copyable(
                facts,
                with_audio=False,
                alternative="Use compress-video, which re-encodes it, then mute the result.",
            )
            command = video.mute_command(self.ffmpeg, files.source, files.target)
            return command, facts.duration, {"removedAudioStreams": len(facts.audio_codecs)}

        return await self._run(request, "output.mp4", MP4, plan)


def _describe_gif(path: Path) -> dict[str, Any]:
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        duration_ms = 0
        for index in range(frames):
            image.seek(index)
            duration_ms += int(image.info.get("duration", 0))
        return {
            "frames": frames,
            "width": image.width,
            "height": image.height,
            "duration": round(duration_ms / 1000, 3),
        }
