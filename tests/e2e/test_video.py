"""The video tools over HTTP: outputs checked by probing them, limits, progress and cancel."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image
from temporalio.client import Client

from tests.conftest import wait_for_engine_pid
from tests.e2e.conftest import Account, create_file_job, run_file_job, upload, wait_for_job
from tests.videos import make_clip, moov_before_mdat, probe, standard_clips

pytestmark = pytest.mark.timeout(180)

CONTENT_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return standard_clips(tmp_path_factory.mktemp("e2e-clips"))


async def _convert(
    http: httpx.AsyncClient, account: Account, tool: str, clip: Path, **options: Any
) -> dict[str, Any]:
    return await run_file_job(
        http,
        account,
        clip.read_bytes(),
        toolSlug=tool,
        name=clip.name,
        content_type=CONTENT_TYPES[clip.suffix],
        options=options,
    )


async def _download(
    http: httpx.AsyncClient, account: Account, job: dict[str, Any], folder: Path
) -> Path:
    intent = await http.post(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers)
    response = await http.get(intent.json()["url"])
    assert response.status_code == 200
    path: Path = folder / str(job["output"]["fileName"])
    path.write_bytes(response.content)
    return path


async def test_trim_accurate(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path], tmp_path: Path
) -> None:
    job = await _convert(http, account, "trim-video", clips["mp4"], start=1.2, duration=1.5)
    assert job["status"] == "succeeded", job["error"]
    output = probe(await _download(http, account, job, tmp_path))
    assert output["duration"] == pytest.approx(1.5, abs=1 / 25)
    assert output["audio_codecs"] == ["aac"]
    metadata = job["output"]["metadata"]
    assert metadata["duration"] == pytest.approx(1.5, abs=1 / 25)
    assert metadata["start"] == pytest.approx(1.2, abs=1 / 25)


async def test_trim_fast_from_webm(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path], tmp_path: Path
) -> None:
    job = await _convert(http, account, "trim-video", clips["webm"], end=1.5, mode="fast")
    assert job["status"] == "succeeded", job["error"]
    output = probe(await _download(http, account, job, tmp_path))
    assert output["video_codec"] == "vp9"
    assert job["output"]["contentType"] == "video/mp4"


async def test_trim_fast_reports_keyframe_start(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path]
) -> None:
    # The clips have a keyframe each second, so a copy cut asked at 2.5 s starts at 2 s.
    job = await _convert(http, account, "trim-video", clips["mp4"], start=2.5, mode="fast")
    assert job["status"] == "succeeded", job["error"]
    assert job["output"]["metadata"]["start"] == pytest.approx(2.0)
    assert job["output"]["metadata"]["requestedStart"] == 2.5


async def test_start_in_last_frame_fails(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path]
) -> None:
    job = await _convert(http, account, "video-to-gif", clips["mov"], start=1.99)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_options"
    assert job["attempt"] == 1


async def test_vp8_mute_unsupported(
    http: httpx.AsyncClient, account: Account, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.vp8.webm", seconds=1)
    job = await _convert(http, account, "mute-video", clip)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_unsupported"
    assert "compress-video" in job["error"]["message"]
    assert job["attempt"] == 1


async def test_compress_odd_mov(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path], tmp_path: Path
) -> None:
    job = await _convert(http, account, "compress-video", clips["odd"], crf=30)
    assert job["status"] == "succeeded", job["error"]
    path = await _download(http, account, job, tmp_path)
    output = probe(path)
    assert (output["width"], output["height"]) == (320, 240)
    assert output["video_codec"] == "h264"
    assert moov_before_mdat(path)
    metadata = job["output"]["metadata"]
    assert metadata["inputBytes"] == clips["odd"].stat().st_size
    assert metadata["bytes"] == path.stat().st_size
    assert metadata["compressionRatio"] > 0


async def test_compress_scales_down(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path], tmp_path: Path
) -> None:
    job = await _convert(http, account, "compress-video", clips["mov"], maxHeight=120)
    assert job["status"] == "succeeded", job["error"]
    output = probe(await _download(http, account, job, tmp_path))
    assert (output["width"], output["height"]) == (160, 120)
    assert output["audio_codecs"] == ["aac"]


async def test_gif(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path], tmp_path: Path
) -> None:
    job = await _convert(
        http, account, "video-to-gif", clips["mp4"], start=1, duration=2, fps=5, width=160
    )
    assert job["status"] == "succeeded", job["error"]
    data = (await _download(http, account, job, tmp_path)).read_bytes()
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF"
        assert gif.size == (160, 120)
        assert getattr(gif, "n_frames", 1) == 10
    assert job["output"]["metadata"]["frames"] == 10


@pytest.mark.parametrize("clip", ["mp4", "silent"])
async def test_mute(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path], tmp_path: Path, clip: str
) -> None:
    job = await _convert(http, account, "mute-video", clips[clip])
    assert job["status"] == "succeeded", job["error"]
    output = probe(await _download(http, account, job, tmp_path))
    assert output["audio_codecs"] == []
    assert output["frames"] == probe(clips[clip])["frames"]


async def test_start_past_end_fails(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path]
) -> None:
    job = await _convert(http, account, "trim-video", clips["mov"], start=10)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_options"
    assert "lasts" in job["error"]["message"]


async def test_declared_type_mismatch(
    http: httpx.AsyncClient, account: Account, clips: dict[str, Path]
) -> None:
    data = clips["webm"].read_bytes()
    job = await run_file_job(
        http,
        account,
        data,
        toolSlug="mute-video",
        name="clip.mp4",
        content_type="video/mp4",
    )
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_type_mismatch"
    assert "video/webm" in job["error"]["message"]


async def test_unreadable_video_corrupt(http: httpx.AsyncClient, account: Account) -> None:
    data = b"\x00\x00\x00\x18ftypisom" + bytes(500)
    job = await run_file_job(
        http, account, data, toolSlug="mute-video", name="broken.mp4", content_type="video/mp4"
    )
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_corrupt"
    assert job["attempt"] == 1


async def test_duration_limit(http: httpx.AsyncClient, account: Account, tmp_path: Path) -> None:
    # An hour and a bit of a 16x16 picture at one frame per second encodes in a few seconds.
    clip = make_clip(tmp_path / "long.mp4", seconds=3_605, size="16x16", fps=1, audio=False)
    job = await _convert(http, account, "mute-video", clip)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_too_large"
    assert "3600 s" in job["error"]["message"]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # About 20 s of libx264 at preset medium on a 2-vCPU VM.
    folder = tmp_path_factory.mktemp("long-clip")
    return make_clip(folder / "long.mp4", seconds=40, size="1280x720", fps=30)


async def _start_compression(
    http: httpx.AsyncClient, account: Account, clip: Path, **options: Any
) -> dict[str, Any]:
    data = clip.read_bytes()
    job = await create_file_job(
        http,
        account,
        data,
        toolSlug="compress-video",
        name=clip.name,
        content_type="video/mp4",
        options=options,
    )
    assert (await upload(http, job, data)).status_code == 200
    return job


async def test_progress_moves(http: httpx.AsyncClient, account: Account, long_clip: Path) -> None:
    job = await _start_compression(http, account, long_clip, preset="veryfast")
    seen: set[int] = set()
    while True:
        current = (await http.get(f"/v1/jobs/{job['id']}", headers=account.headers)).json()
        if current["status"] == "running":
            seen.add(current["progress"])
        if current["status"] in ("succeeded", "failed", "canceled"):
            break
        await asyncio.sleep(0.2)
    assert current["status"] == "succeeded", current["error"]
    assert len([value for value in seen if 10 < value < 90]) >= 2, seen


async def test_cancel_stops_ffmpeg(
    http: httpx.AsyncClient, account: Account, temporal: Client, long_clip: Path
) -> None:
    job = await _start_compression(http, account, long_clip, preset="medium")
    pid = await wait_for_engine_pid(temporal.get_workflow_handle(job["id"]))
    ffmpeg = psutil.Process(pid)
    await asyncio.sleep(1.0)
    canceled = await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
    assert canceled.json()["status"] == "canceled"

    deadline = asyncio.get_running_loop().time() + 5
    while ffmpeg.is_running() and ffmpeg.status() != psutil.STATUS_ZOMBIE:
        assert asyncio.get_running_loop().time() < deadline, "ffmpeg outlived the cancel"
        await asyncio.sleep(0.05)
    final = await wait_for_job(http, account, job["id"])
    assert final["output"] is None
