"""Video clips that the tests generate with ffmpeg: a test pattern plus a tone."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import av

from app.engines.video import find_ffmpeg

CODECS = {
    "mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    "vp8.webm": ["-c:v", "libvpx", "-deadline", "realtime", "-b:v", "300k", "-c:a", "libopus"],
    "mov": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"],
    "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "300k", "-c:a", "libopus"],
}


def make_clip(
    path: Path,
    *,
    seconds: float = 3,
    size: str = "320x240",
    fps: int = 25,
    audio: bool = True,
    pixel_format: str = "yuv420p",
) -> Path:
    """Write a clip of ``seconds`` with a moving test pattern and, if ``audio``, a 440 Hz tone.

    The container follows the suffix of ``path``: ``.mp4``, ``.mov`` or ``.webm`` (VP9), or
    ``.vp8.webm`` for VP8. Every clip has a keyframe each second.
    """
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    width, height = size.split("x")
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={fps}"]
    if audio:
        command += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    command += ["-t", str(seconds), "-vf", f"scale={width}:{height}", "-pix_fmt", pixel_format]
    command += ["-g", str(fps)]
    codec = "vp8.webm" if path.name.endswith(".vp8.webm") else path.suffix.lstrip(".")
    command += CODECS[codec]
    if not audio:
        command += ["-an"]
    command += [str(path)]
    subprocess.run(command, check=True, timeout=300)
    return path


def standard_clips(folder: Path) -> dict[str, Path]:
    """A 4 s MP4, a 2 s MOV, WebM and silent MP4, and a 321x241 MP4 in 4:4:4 chroma."""
    return {
        "mp4": make_clip(folder / "clip.mp4", seconds=4),
        "mov": make_clip(folder / "clip.mov", seconds=2),
        "webm": make_clip(folder / "clip.webm", seconds=2),
        "silent": make_clip(folder / "silent.mp4", seconds=2, audio=False),
        "odd": make_clip(folder / "odd.mp4", seconds=2, size="321x241", pixel_format="yuv444p"),
    }


def audio_with_cover(folder: Path) -> Path:
    """An MP4 of AAC audio whose only picture is cover art, an attached picture stream."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    cover = folder / "cover.png"
    target = folder / "song.mp4"
    base = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y"]
    subprocess.run(
        [*base, "-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1", str(cover)],
        check=True,
        timeout=60,
    )
    command = [*base, "-f", "lavfi", "-i", "sine", "-i", str(cover), "-t", "2"]
    command += ["-map", "0:a", "-map", "1:v", "-c:a", "aac", "-c:v", "png"]
    command += ["-disposition:v", "attached_pic", str(target)]
    subprocess.run(command, check=True, timeout=60)
    return target


def rotate_clip(source: Path, target: Path, degrees: int) -> Path:
    """Copy ``source`` with a display matrix that rotates it by ``degrees`` when played."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y"]
    command += ["-display_rotation", str(degrees), "-i", str(source), "-c", "copy", str(target)]
    subprocess.run(command, check=True, timeout=60)
    return target


def probe(path: Path) -> dict[str, Any]:
    """Return the duration, size, codecs and stream counts of a file, for assertions."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {
            "duration": float(container.duration or 0) / av.time_base,
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "video_codec": video.codec_context.name,
            "audio_codecs": [audio.codec_context.name for audio in container.streams.audio],
            "frames": video.frames,
        }


def moov_before_mdat(path: Path) -> bool:
    """Tell whether an MP4's index comes before its media data, as +faststart arranges."""
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")
