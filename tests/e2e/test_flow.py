"""The job lifecycle over HTTP, against a real worker, Temporal dev server and Pillow."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import psutil
from PIL import Image
from temporalio.client import Client

from tests.e2e.conftest import (
    RETENTION_SECONDS,
    Account,
    Stack,
    create_file_job,
    run_file_job,
    upload,
    wait_for_job,
)
from tests.images import encode, gradient_png, noisy_png, slow_webp
from tests.test_images_engine import write_png_header_only


async def download(http: httpx.AsyncClient, account: Account, job_id: str) -> httpx.Response:
    intent = await http.post(f"/v1/jobs/{job_id}/download-intent", headers=account.headers)
    assert intent.status_code == 200, intent.text
    body = intent.json()
    assert body["method"] == "GET"
    return await http.get(body["url"])


async def test_png_roundtrip(http: httpx.AsyncClient, account: Account) -> None:
    payload = gradient_png(800, 600)
    job = await run_file_job(http, account, payload, options={"quality": 70, "maxWidth": 400})

    assert job["status"] == "succeeded"
    assert job["progress"] == 100
    assert job["attempt"] == 1
    assert job["retryCount"] == 0
    output = job["output"]
    assert output["fileName"] == "photo.jpg"
    assert output["contentType"] == "image/jpeg"
    assert output["metadata"]["width"] == 400
    assert output["metadata"]["height"] == 300
    assert output["expired"] is False

    response = await download(http, account, job["id"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert 'filename="photo.jpg"' in response.headers["content-disposition"]
    assert len(response.content) == output["sizeBytes"]
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG"
        assert image.size == (400, 300)


async def test_jpeg_with_exif_rotation_comes_out_upright(
    http: httpx.AsyncClient, account: Account
) -> None:
    # Stored 80x40 with its left half red; orientation 6 means "rotate 90 degrees clockwise".
    stored = Image.new("RGB", (80, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    payload = encode(stored, "JPEG", exif=exif.tobytes(), quality=95)

    job = await run_file_job(http, account, payload, name="phone.jpeg", content_type="image/jpeg")
    assert job["status"] == "succeeded", job["error"]
    response = await download(http, account, job["id"])
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (40, 80)
        assert image.getexif().get(0x0112) in (None, 1)
        pixel = image.convert("RGB").getpixel((20, 10))
        assert isinstance(pixel, tuple)
        assert pixel[0] > 200
        assert pixel[2] < 60


async def test_webp_with_alpha_flattened_on_white(
    http: httpx.AsyncClient, account: Account
) -> None:
    source = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    source.paste((0, 128, 0, 255), (0, 0, 30, 60))
    payload = encode(source, "WEBP", lossless=True)

    job = await run_file_job(http, account, payload, name="logo.webp", content_type="image/webp")
    assert job["status"] == "succeeded", job["error"]
    response = await download(http, account, job["id"])
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (60, 60)
        pixel = image.convert("RGB").getpixel((50, 30))
        assert isinstance(pixel, tuple)
        assert min(pixel) > 240


async def test_text_declared_as_png_fails_type_mismatch(
    http: httpx.AsyncClient, account: Account
) -> None:
    job = await run_file_job(http, account, b"just some text, not an image\n" * 20)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_type_mismatch"
    assert job["error"]["retryable"] is False
    assert "image/png" in job["error"]["message"]


async def test_decompression_bomb_fails_too_large(
    http: httpx.AsyncClient, account: Account, tmp_path: Path
) -> None:
    bomb = write_png_header_only(tmp_path / "bomb.png", 100_000, 100_000).read_bytes()
    job = await run_file_job(http, account, bomb)
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_too_large"


async def test_truncated_png_fails_corrupt(http: httpx.AsyncClient, account: Account) -> None:
    payload = noisy_png(500, 500)
    job = await run_file_job(http, account, payload[: len(payload) // 2])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "input_corrupt"


async def test_running_job_shows_progress_then_cancel_stops_engine(
    http: httpx.AsyncClient, account: Account
) -> None:
    payload = slow_webp()
    job = await create_file_job(
        http,
        account,
        payload,
        name="big.webp",
        content_type="image/webp",
        options={"maxWidth": 6000},
    )
    assert (await upload(http, job, payload)).status_code == 200

    running = await _wait_until(http, account, job["id"], lambda j: j["progress"] >= 10)
    assert running["status"] == "running"
    assert running["attempt"] == 1
    assert running["startedAt"] is not None
    assert running["deadlineAt"] is not None
    engines = _engine_processes()
    assert engines, "no engine child process found while the job runs"

    response = await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
    assert response.status_code == 200, response.text
    canceled = response.json()
    assert canceled["status"] == "canceled"
    assert canceled["error"]["code"] == "canceled"
    assert canceled["error"]["canceledWhile"] == "running"
    await asyncio.sleep(0.5)
    assert not any(process.is_running() for process in engines)


def _engine_processes() -> list[psutil.Process]:
    """Children of the fork server that run conversions for the stack's worker."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "multiprocessing.forkserver" in cmdline:
            found.extend(process.children())
    return found


async def _wait_until(
    http: httpx.AsyncClient, account: Account, job_id: str, predicate: Any, timeout: float = 30
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}", headers=account.headers)).json()
        if predicate(job):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} never matched; last seen {job}")


async def test_cancel_queued_job(stack: Stack, http: httpx.AsyncClient, account: Account) -> None:
    job = await create_file_job(http, account, gradient_png())
    response = await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert response.json()["error"]["canceledWhile"] == "queued"
    assert response.json()["uploadIntent"] is None

    again = await http.post(f"/v1/jobs/{job['id']}/cancel", headers=account.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_not_cancelable"

    late_upload = await upload(http, job, gradient_png())
    if stack.s3 is None:
        assert late_upload.status_code == 409
        assert late_upload.json()["error"]["code"] == "upload_not_accepted"
    else:
        # A presigned URL cannot be revoked: the bucket takes the upload, and the workflow
        # deletes it once the URL has expired (tested on the time-skipping server).
        assert late_upload.status_code == 200


async def test_list_filters_pagination_and_close(stack: Stack, http: httpx.AsyncClient) -> None:
    account = stack.new_account()
    finished = [await run_file_job(http, account, gradient_png(32 + i, 32)) for i in range(3)]
    queued = await create_file_job(http, account, gradient_png())

    everything = await http.get("/v1/jobs", headers=account.headers)
    assert everything.status_code == 200
    ids = [job["id"] for job in everything.json()["data"]]
    assert ids == [queued["id"]] + [job["id"] for job in reversed(finished)]

    only_queued = await http.get("/v1/jobs", params={"status": "queued"}, headers=account.headers)
    assert [job["id"] for job in only_queued.json()["data"]] == [queued["id"]]
    other_tool = await http.get(
        "/v1/jobs", params={"toolSlug": "word-to-pdf"}, headers=account.headers
    )
    assert other_tool.json()["data"] == []

    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await http.get("/v1/jobs", params=params, headers=account.headers)).json()
        pages.extend(job["id"] for job in page["data"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == ids

    not_finished = await http.post(f"/v1/jobs/{queued['id']}/close", headers=account.headers)
    assert not_finished.status_code == 409
    assert not_finished.json()["error"]["code"] == "job_not_finished"

    closed = await http.post(f"/v1/jobs/{finished[0]['id']}/close", headers=account.headers)
    assert closed.status_code == 200
    assert closed.json()["closedAt"] is not None
    assert closed.json()["output"]["fileName"] == "photo.jpg"
    listed = (await http.get("/v1/jobs", headers=account.headers)).json()["data"]
    assert finished[0]["id"] not in [job["id"] for job in listed]
    still_readable = await http.get(f"/v1/jobs/{finished[0]['id']}", headers=account.headers)
    assert still_readable.status_code == 200
    assert still_readable.json()["closedAt"] == closed.json()["closedAt"]


async def test_search_attributes_follow_status(
    http: httpx.AsyncClient, account: Account, temporal: Client
) -> None:
    job = await run_file_job(http, account, gradient_png())
    query = (
        f'WorkspaceId = "{account.workspace_id}" AND ToolSlug = "image-compress-api" '
        f'AND JobStatus = "succeeded" AND WorkflowId = "{job["id"]}"'
    )
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline:
        found = [execution.id async for execution in temporal.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [job["id"]]


async def test_idempotent_create_under_concurrency(
    stack: Stack, http: httpx.AsyncClient, temporal: Client
) -> None:
    account = stack.new_account()
    body: dict[str, Any] = {
        "toolSlug": "image-compress-api",
        "input": {"kind": "file", "name": "a.png", "contentType": "image/png", "sizeBytes": 100},
    }
    headers = account.headers | {"Idempotency-Key": "order-42"}
    responses = await asyncio.gather(
        *(http.post("/v1/jobs", json=body, headers=headers) for _ in range(50))
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * 49 + [201], [r.text for r in responses if r.status_code >= 300]
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1
    replayed = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(replayed) == 49

    job_id = ids.pop()
    runs = [execution async for execution in temporal.list_workflows(f'WorkflowId = "{job_id}"')]
    assert len(runs) == 1
    listed = (await http.get("/v1/jobs", headers=account.headers)).json()["data"]
    assert [job["id"] for job in listed] == [job_id]

    other_body = {**body, "input": {**body["input"], "sizeBytes": 101}}
    conflict = await http.post("/v1/jobs", json=other_body, headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"

    other_workspace = stack.new_account()
    elsewhere = await http.post(
        "/v1/jobs", json=body, headers=other_workspace.headers | {"Idempotency-Key": "order-42"}
    )
    assert elsewhere.status_code == 201
    assert elsewhere.json()["id"] != job_id


async def test_idempotent_replay_after_job_finished(
    http: httpx.AsyncClient, account: Account
) -> None:
    payload = gradient_png()
    key = {"Idempotency-Key": "finished-then-replayed"}
    job = await create_file_job(http, account, payload, headers=key)
    await upload(http, job, payload)
    finished = await wait_for_job(http, account, job["id"])
    assert finished["status"] == "succeeded"

    body = {
        "toolSlug": "image-compress-api",
        "input": {
            "kind": "file",
            "name": "photo.png",
            "contentType": "image/png",
            "sizeBytes": len(payload),
            "options": {},
        },
    }
    replay = await http.post("/v1/jobs", json=body, headers=account.headers | key)
    assert replay.status_code == 200
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == job["id"]
    assert replay.json()["status"] == "succeeded"


async def test_output_expires_after_retention(
    stack: Stack, http: httpx.AsyncClient, account: Account
) -> None:
    job = await run_file_job(http, account, gradient_png())
    assert job["status"] == "succeeded"
    intent = (
        await http.get(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers)
    ).json()

    expired = await _wait_until(
        http, account, job["id"], lambda j: j["output"]["expired"], timeout=RETENTION_SECONDS + 30
    )
    assert expired["status"] == "succeeded"
    response = await http.get(f"/v1/jobs/{job['id']}/download-intent", headers=account.headers)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "download_expired"
    stale_url = await http.get(intent["url"])
    if stack.s3 is None:
        assert stale_url.status_code == 410
        assert stale_url.json()["error"]["code"] == "download_expired"
    else:
        assert stale_url.status_code in {403, 404}
    assert stack.object_keys(job["id"]) == []
