"""Video tools on ffmpeg: probing with PyAV, command lines per tool, and a killable ffmpeg run.

``probe_video`` runs in a child process (``run_isolated``) because a crafted file can crash
the demuxer or decoder, and the worker must survive that. ffmpeg itself runs in a process
group of its own, which a cancel or a passed deadline kills as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import imageio_ffmpeg

from app.engines.process_group import dies_with_worker, stop_group
from app.errors import InputError, JobErrorCode

logger = logging.getLogger(__name__)

_STDERR_TAIL_BYTES = 2000


def find_ffmpeg(configured: str = "") -> str | None:
    """Return the ffmpeg to run: ``configured`` if set, else the one imageio-ffmpeg ships."""
    if configured:
        return shutil.which(configured)
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:
        return None


@dataclass(frozen=True)
class VideoFacts:
    """Facts that a probe read from a video file."""

    container: str
    """PyAV's format name, such as ``mov,mp4,m4a,3gp,3g2,mj2`` or ``matroska,webm``."""
    duration: float
    """Seconds."""
    video_codec: str
    width: int
    """Coded width in pixels, before rotation."""
    height: int
    fps: float
    rotation: int
    """Display rotation in degrees, as ffmpeg applies it when it re-encodes."""
    audio_codecs: tuple[str, ...]

    @property
    def display_width(self) -> int:
        return self.height if self.rotation % 180 else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation % 180 else self.height

    def summary(self) -> dict[str, object]:
        return {
            "duration": round(self.duration, 3),
            "width": self.display_width,
            "height": self.display_height,
            "videoCodec": self.video_codec,
            "fps": round(self.fps, 3),
            "audioStreams": len(self.audio_codecs),
        }


def probe_video(path: Path) -> VideoFacts:
    """Read the container, streams, duration, size and rotation of the video at ``path``.

    Raises InputError with ``input_corrupt`` when the file cannot be read as a video.
    """
    _check_iso_boxes(path)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            # Cover art in an audio file is a one-picture "video" stream marked attached_pic.
            pictures = [
                stream
                for stream in container.streams.video
                if not stream.disposition & av.stream.Disposition.attached_pic
            ]
            if not pictures:
                raise InputError(
                    JobErrorCode.INPUT_CORRUPT,
                    "The file has no video stream. Upload a video with a picture track.",
                )
            stream = pictures[0]
            duration = _duration_seconds(container, stream)
            rotation = _first_frame_rotation(container, stream)
            rate = stream.average_rate or stream.guessed_rate
            return VideoFacts(
                container=str(container.format.name),
                duration=duration,
                video_codec=str(stream.codec_context.name),
                width=int(stream.codec_context.width),
                height=int(stream.codec_context.height),
                fps=float(rate) if rate else 0.0,
                rotation=rotation,
                audio_codecs=tuple(
                    str(audio.codec_context.name) for audio in container.streams.audio
                ),
            )
    except (av.FFmpegError, ValueError, IndexError, OSError) as err:
        raise InputError(
            JobErrorCode.INPUT_CORRUPT,
            f"The video cannot be read ({type(err).__name__}). Check that it plays, then "
            "upload it again.",
        ) from err


def _check_iso_boxes(path: Path) -> None:
    """Reject an MP4 or MOV file whose top-level boxes run past its end: a cut-off upload.

    ffmpeg converts such a file up to the cut without an error, so the output would be short.
    Other containers are left to the probe.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(12)
        if head[4:8] != b"ftyp":
            return
        offset = 0
        while offset < size:
            file.seek(offset)
            header = file.read(16)
            if len(header) < 8:
                break
            box_size = int.from_bytes(header[:4], "big")
            if box_size == 1 and len(header) >= 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                # A last box that runs to the end of the file.
                return
            if box_size < 8 or offset + box_size > size:
                raise InputError(
                    JobErrorCode.INPUT_CORRUPT,
                    f"The video file ends at byte {size} inside a {header[4:8]!r} box that "
                    f"needs {offset + box_size} bytes: the upload was cut off. Upload the "
                    "whole file.",
                )
            offset += box_size


def keyframe_before(path: Path, seconds: float) -> float:
    """Return the time of the video keyframe at or before ``seconds``, where a copy cut starts."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        if stream.time_base is None:
            return seconds
        origin = stream.start_time or 0
        container.seek(origin + int(seconds / stream.time_base), stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.pts is not None and packet.is_keyframe:
                return max(0.0, float((packet.pts - origin) * stream.time_base))
    return seconds


# Codecs that ffmpeg's MP4 muxer takes as they are, for the tools that copy streams.
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "ac3", "eac3", "flac", "alac"})


def check_copyable(facts: VideoFacts, with_audio: bool, alternative: str) -> None:
    """Reject a stream copy into MP4 of a codec that MP4 cannot hold, naming ``alternative``."""
    if facts.video_codec not in MP4_VIDEO_CODECS:
        raise InputError(
            JobErrorCode.INPUT_UNSUPPORTED,
            f"The video codec {facts.video_codec} cannot be copied into MP4 without "
            f"re-encoding. {alternative}",
        )
    unsupported = [codec for codec in facts.audio_codecs if codec not in MP4_AUDIO_CODECS]
    if with_audio and unsupported:
        raise InputError(
            JobErrorCode.INPUT_UNSUPPORTED,
            f"The audio codec {unsupported[0]} cannot be copied into MP4 without re-encoding. "
            f"{alternative}",
        )


def _duration_seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if container.duration is not None:
        return float(container.duration) / av.time_base
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    raise InputError(
        JobErrorCode.INPUT_CORRUPT, "The video has no duration. Remux it, then upload it again."
    )


def _first_frame_rotation(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    for frame in container.decode(stream):
        return round(frame.rotation) % 360
    raise InputError(JobErrorCode.INPUT_CORRUPT, "The video stream has no decodable frame.")


# Commands


def _even_scale(max_width: int | None, max_height: int | None) -> str:
    """Build a scale filter that fits the bounds, keeps the aspect ratio and gives even sides.

    libx264 with 4:2:0 chroma refuses odd widths and heights, so every output side is even.
    The video is never scaled up.
    """
    if not max_width and not max_height:
        return "scale='trunc(iw/2)*2':'trunc(ih/2)*2'"
    width = f"min(iw,{max_width})" if max_width else "iw"
    height = f"min(ih,{max_height})" if max_height else "ih"
    # force_divisible_by applies only together with force_original_aspect_ratio.
    return f"scale='{width}':'{height}':force_original_aspect_ratio=decrease:force_divisible_by=2"


def trim_command(
    ffmpeg: str, source: Path, target: Path, start: float, duration: float, fast: bool
) -> list[str]:
    """Cut ``duration`` seconds from ``start``.

    Fast mode copies the streams, so the cut starts at the keyframe at or before ``start``.
    Accurate mode re-encodes, so the cut is exact to the frame.
    """
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-ss", f"{start:.3f}", "-i", str(source)]
    command += ["-t", f"{duration:.3f}", "-map", "0:v:0", "-map", "0:a?"]
    if fast:
        command += ["-c", "copy", "-avoid_negative_ts", "make_zero"]
    else:
        command += _h264_options(crf=20, preset="veryfast", scale=_even_scale(None, None))
    return [*command, "-movflags", "+faststart", str(target)]


def compress_command(
    ffmpeg: str,
    source: Path,
    target: Path,
    *,
    crf: int,
    preset: str,
    max_width: int | None,
    max_height: int | None,
) -> list[str]:
    command = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(source)]
    command += ["-map", "0:v:0", "-map", "0:a?"]
    command += _h264_options(crf=crf, preset=preset, scale=_even_scale(max_width, max_height))
    return [*command, "-movflags", "+faststart", str(target)]


def _h264_options(*, crf: int, preset: str, scale: str) -> list[str]:
    return [
        "-vf",
        scale,
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
    ]


def gif_command(
    ffmpeg: str, source: Path, target: Path, *, start: float, duration: float, fps: int, width: int
) -> list[str]:
    """Make a GIF with a palette generated from the clip itself, for good colour.

    The GIF is ``width`` pixels wide, or the video's width if that is smaller.
    """
    frames = f"fps={fps},scale='min({width},iw)':-2:flags=lanczos"
    palette = f"[0:v]{frames},split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse"
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-ss",
        f"{start:.3f}",
        "-t",
        f"{duration:.3f}",
        "-i",
        str(source),
        "-filter_complex",
        palette,
        "-loop",
        "0",
        str(target),
    ]


def mute_command(ffmpeg: str, source: Path, target: Path) -> list[str]:
    """Drop every audio stream and copy the video stream as it is."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-y",
        "-i",
        str(source),
        "-map",
        "0:v:0",
        "-c",
        "copy",
        "-an",
        "-movflags",
        "+faststart",
        str(target),
    ]


# Running ffmpeg


class FfmpegFailed(RuntimeError):
    """ffmpeg exited with an error; the message ends with the tail of its log."""


async def run_ffmpeg(
    command: list[str],
    expected_seconds: float,
    *,
    on_started: Callable[[int], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Run ffmpeg in its own process group, reporting the fraction of ``expected_seconds`` done.

    Progress comes from ffmpeg's ``-progress pipe:1`` output, whose ``out_time_us`` field is
    the output position in microseconds. If the awaiting task is canceled, the whole group
    is killed with SIGKILL before CancelledError propagates, so no output is finished.
    """
    full = dies_with_worker([command[0], "-progress", "pipe:1", "-nostats", *command[1:]])
    process = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    if on_started is not None:
        on_started(process.pid)
    errors = asyncio.create_task(_read_tail(process.stderr))
    try:
        await _follow_progress(process.stdout, expected_seconds, on_progress)
        code = await process.wait()
        tail = await errors
    except BaseException:
        await stop_group(process)
        errors.cancel()
        raise
    if code != 0:
        raise FfmpegFailed(f"ffmpeg exited with code {code}: {tail.decode(errors='replace')}")


async def _follow_progress(
    stdout: asyncio.StreamReader | None,
    expected_seconds: float,
    on_progress: Callable[[float], None] | None,
) -> None:
    assert stdout is not None
    while line := await stdout.readline():
        key, _, value = line.decode(errors="replace").strip().partition("=")
        if key == "out_time_us" and on_progress is not None and expected_seconds > 0:
            with contextlib.suppress(ValueError):
                on_progress(min(int(value) / 1_000_000 / expected_seconds, 1.0))


async def _read_tail(stream: asyncio.StreamReader | None) -> bytes:
    assert stream is not None
    tail = b""
    while chunk := await stream.read(65536):
        tail = (tail + chunk)[-_STDERR_TAIL_BYTES:]
    return tail.strip()
