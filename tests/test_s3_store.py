"""The S3 blob store against a local S3-compatible server, and its presigned URLs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from app.config import Settings
from app.storage import create_store
from app.storage.base import BlobExists, BlobNotFound, BlobSizeMismatch, new_object_key
from app.storage.s3 import S3BlobStore
from tests.s3server import S3Server


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
async def s3_store(s3_server: S3Server) -> AsyncIterator[S3BlobStore]:
    store = create_store(Settings.model_validate(s3_server.settings_fields()))
    assert isinstance(store, S3BlobStore)
    yield store
    await store.close()


def soon(seconds: int = 60) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


async def test_objects_round_trip(s3_store: S3BlobStore, tmp_path: Path) -> None:
    key = new_object_key("ws_a", "job_s3", "input")
    await s3_store.write_stream(key, chunks_of(b"abc", b"def"), size_bytes=6)
    assert await s3_store.size(key) == 6
    assert b"".join([chunk async for chunk in s3_store.read_stream(key)]) == b"abcdef"
    assert await s3_store.read_head(key, 4) == b"abcd"
    with pytest.raises(BlobExists):
        await s3_store.write_stream(key, chunks_of(b"xyz"), size_bytes=3)
    with pytest.raises(BlobSizeMismatch):
        await s3_store.write_stream(
            new_object_key("ws_a", "job_s3", "input"), chunks_of(b"ab"), size_bytes=3
        )

    # Larger than one part, so the upload and the download go in parts.
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40_000)
    output = new_object_key("ws_a", "job_s3", "output")
    assert await s3_store.put_from_path(output, big) == big.stat().st_size
    copy = tmp_path / "copy.bin"
    await s3_store.fetch_to_path(output, copy)
    assert copy.read_bytes() == big.read_bytes()

    await s3_store.delete(output)
    await s3_store.delete(output)
    assert await s3_store.size(output) is None
    with pytest.raises(BlobNotFound):
        await s3_store.fetch_to_path(output, tmp_path / "gone.bin")
    with pytest.raises(BlobNotFound):
        await s3_store.read_head(output, 10)
    with pytest.raises(BlobNotFound):
        async for _ in s3_store.read_stream(output):
            pass


async def test_upload_url_binds_type_length_and_expiry(s3_store: S3BlobStore) -> None:
    key = new_object_key("ws_a", "job_put", "input")
    payload = b"%PDF-1.7 example"
    target = s3_store.upload_target(
        key, content_type="application/pdf", size_bytes=len(payload), expires_at=soon()
    )
    assert target.headers == {"Content-Type": "application/pdf", "If-None-Match": "*"}
    signed_headers = parse_qs(urlsplit(target.url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "content-type", "if-none-match"} <= set(signed_headers)

    async with httpx.AsyncClient() as http:
        wrong_type = await http.put(
            target.url, content=payload, headers=target.headers | {"Content-Type": "image/png"}
        )
        assert wrong_type.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in wrong_type.text
        longer = await http.put(target.url, content=payload + b"!", headers=target.headers)
        assert longer.status_code == 403
        shorter = await http.put(target.url, content=payload[:-1], headers=target.headers)
        assert shorter.status_code == 403
        without_condition = await http.put(
            target.url, content=payload, headers={"Content-Type": "application/pdf"}
        )
        assert without_condition.status_code == 403
        other_key = target.url.replace("/input-", "/input-0")
        assert (
            await http.put(other_key, content=payload, headers=target.headers)
        ).status_code == 403
        assert await s3_store.size(key) is None

        stored = await http.put(target.url, content=payload, headers=target.headers)
        assert stored.status_code == 200, stored.text
        again = await http.put(target.url, content=payload, headers=target.headers)
        assert again.status_code == 412
    assert await s3_store.size(key) == len(payload)


async def test_expired_urls_are_refused(s3_store: S3BlobStore) -> None:
    key = new_object_key("ws_a", "job_exp", "input")
    target = s3_store.upload_target(
        key, content_type="image/png", size_bytes=3, expires_at=soon(60)
    )
    # A URL whose signing time was moved back past its lifetime is refused, whether the store
    # looks at the expiry or the signature first.
    query = parse_qs(urlsplit(target.url).query)
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    backdated = with_query(
        target.url, **{"X-Amz-Date": (signed_at - timedelta(minutes=2)).strftime("%Y%m%dT%H%M%SZ")}
    )
    async with httpx.AsyncClient() as http:
        refused = await http.put(backdated, content=b"abc", headers=target.headers)
        assert refused.status_code == 403
        assert "<Code>AccessDenied</Code>" in refused.text

        short_lived = s3_store.upload_target(
            key, content_type="image/png", size_bytes=3, expires_at=soon(1)
        )
        await asyncio.sleep(2.5)
        expired = await http.put(short_lived.url, content=b"abc", headers=short_lived.headers)
        assert expired.status_code == 403
        assert "Request has expired" in expired.text
    assert await s3_store.size(key) is None


async def test_download_url_names_the_file(s3_store: S3BlobStore, tmp_path: Path) -> None:
    key = new_object_key("ws_a", "job_get", "output")
    source = tmp_path / "out.pdf"
    source.write_bytes(b"%PDF-1.7 output")
    await s3_store.put_from_path(key, source)
    url = s3_store.download_url(
        key, content_type="application/pdf", file_name="Résumé 2026.pdf", expires_at=soon()
    )
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.content == b"%PDF-1.7 output"
        assert response.headers["content-type"] == "application/pdf"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="R_sum_ 2026.pdf"')
        assert "filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf" in disposition

        renamed = with_query(url, **{"response-content-disposition": "attachment; filename=x.exe"})
        assert (await http.get(renamed)).status_code == 403
        as_upload = await http.put(url, content=b"x")
        assert as_upload.status_code == 403
        await s3_store.delete(key)
        # S3 returns 404 for a missing key, or 403 where the credentials may not list the
        # bucket. moto returns 403 to a presigned GET of a missing key.
        gone = await http.get(url)
        assert gone.status_code in {403, 404}, gone.text
