"""The Python client and the ``worklane`` command line against the real stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import Account, Stack
from tests.images import gradient_png
from worklane_client import ApiError, AsyncClient, Client, JobFailedError


def _cli(stack: Stack, account: Account, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"WORKLANE_API_URL": stack.url, "WORKLANE_API_KEY": account.key, "PATH": "/usr/bin"}
    return subprocess.run(
        [sys.executable, "-m", "worklane_client", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_converts_with_progress(stack: Stack, account: Account, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(gradient_png(300, 200))
    result = _cli(
        stack, account, "convert", "image-compress-api", "photo.png", "-o", "small.jpg",
        "-O", "quality=60", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout
    for stage in ("upload", "job", "download"):
        assert any(
            (line.startswith(stage) and line.endswith(("100%", "succeeded"))) or "100%" in line
            for line in result.stderr.splitlines()
            if line.startswith(stage)
        ), result.stderr
    with Image.open(tmp_path / "small.jpg") as image:
        assert image.format == "JPEG"
        assert image.size == (300, 200)


def test_cli_failed_job_exit_code(stack: Stack, account: Account, tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_bytes(b"this is text, not an image\n" * 20)
    result = _cli(stack, account, "convert", "image-compress-api", "fake.png", "-q", cwd=tmp_path)
    assert result.returncode == 1
    assert "input_type_mismatch" in result.stderr
    assert not (tmp_path / "fake.jpg").exists()


def test_cli_usage_errors(stack: Stack, account: Account, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(gradient_png())
    unknown = _cli(stack, account, "convert", "no-such-tool", "a.png", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "tool_not_found" in unknown.stderr
    missing = _cli(stack, account, "convert", "image-compress-api", "nope.png", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no file at nope.png" in missing.stderr
    no_folder = _cli(
        stack, account, "convert", "image-compress-api", "a.png", "-o", "none/a.jpg", cwd=tmp_path
    )
    assert no_folder.returncode == 2
    assert "no folder at none" in no_folder.stderr
    no_wait = _cli(
        stack, account, "convert", "image-compress-api", "a.png", "--wait", "0", cwd=tmp_path
    )
    assert no_wait.returncode == 2
    assert "must be more than 0 seconds" in no_wait.stderr
    wrong_kind = _cli(stack, account, "convert", "word-to-pdf", "a.png", cwd=tmp_path)
    assert wrong_kind.returncode == 2
    assert "does not take '.png' files" in wrong_kind.stderr


def test_cli_unreachable_api(account: Account, tmp_path: Path) -> None:
    env = {"WORKLANE_API_URL": "http://127.0.0.1:9", "WORKLANE_API_KEY": account.key}
    result = subprocess.run(
        [sys.executable, "-m", "worklane_client", "jobs", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3
    assert "connection_failed" not in result.stdout
    assert "127.0.0.1:9" in result.stderr

    env["WORKLANE_API_URL"] = "127.0.0.1:9"
    no_scheme = subprocess.run(
        [sys.executable, "-m", "worklane_client", "tools"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no_scheme.returncode == 2
    assert "must start with http:// or https://" in no_scheme.stderr


def test_cli_lists_and_cancels(stack: Stack, account: Account, tmp_path: Path) -> None:
    with Client(stack.url, account.key) as client:
        queued = client.create_file_job("image-compress-api", _png(tmp_path))
    listed = _cli(stack, account, "jobs", "list", "--status", "queued", cwd=tmp_path)
    assert listed.returncode == 0
    assert queued.id in listed.stdout
    canceled = _cli(stack, account, "jobs", "cancel", queued.id, cwd=tmp_path)
    assert canceled.returncode == 0
    assert f"{queued.id} canceled" in canceled.stdout
    again = _cli(stack, account, "jobs", "cancel", queued.id, cwd=tmp_path)
    assert again.returncode == 2
    assert "job_not_cancelable" in again.stderr


def _png(folder: Path) -> Path:
    path = folder / "input.png"
    path.write_bytes(gradient_png(64, 64))
    return path


async def test_async_client_round_trip(stack: Stack, account: Account, tmp_path: Path) -> None:
    async with AsyncClient(stack.url, account.key) as client:
        updates: list[str] = []
        job = await client.convert(
            "image-compress-api",
            _png(tmp_path),
            tmp_path,
            on_update=lambda current: updates.append(current.status),
        )
        assert job.status == "succeeded"
        assert updates[-1] == "succeeded"
        assert (tmp_path / "input.jpg").is_file()

        body = {"kind": "text", "text": "<h1>Hello</h1>"}
        first = await client.create_job("html-to-pdf-api", body, idempotency_key="client-key-1")
        repeat = await client.create_job("html-to-pdf-api", body, idempotency_key="client-key-1")
        assert repeat.id == first.id

        with pytest.raises(ApiError) as missing:
            await client.get_job("job_000000000000000000000000")
        assert missing.value.code == "job_not_found"
        assert missing.value.status == 404


def test_sync_client_raises_job_failed(stack: Stack, account: Account, tmp_path: Path) -> None:
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not an image" * 30)
    with Client(stack.url, account.key) as client, pytest.raises(JobFailedError) as failure:
        client.convert("image-compress-api", fake, tmp_path / "out.jpg")
    assert failure.value.code == "input_type_mismatch"
    assert failure.value.job.status == "failed"
