"""The local blob store and the URL signatures."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.storage.base import (
    BlobExists,
    BlobNotFound,
    BlobSizeMismatch,
    InvalidObjectKey,
    check_object_key,
    job_id_of_key,
    new_object_key,
)
from app.storage.local import LocalBlobStore
from app.storage.signing import SignatureError, SignedRequest, verify

SECRET = "s" * 40


async def chunks_of(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in root.rglob("*") if path.is_file())


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def test_write_then_read_back(store: LocalBlobStore) -> None:
    key = new_object_key("ws_a", "job_b", "input")
    await store.write_stream(key, chunks_of(b"abc", b"def"), size_bytes=6)
    assert await store.size(key) == 6
    read = b"".join([chunk async for chunk in store.read_stream(key)])
    assert read == b"abcdef"


async def test_key_written_once(store: LocalBlobStore) -> None:
    key = new_object_key("ws_a", "job_b", "input")
    await store.write_stream(key, chunks_of(b"abc"), size_bytes=3)
    with pytest.raises(BlobExists):
        await store.write_stream(key, chunks_of(b"xyz"), size_bytes=3)
    assert b"".join([chunk async for chunk in store.read_stream(key)]) == b"abc"


@pytest.mark.parametrize("parts", [(b"ab",), (b"abc", b"d")])
async def test_wrong_size_keeps_nothing(store: LocalBlobStore, parts: tuple[bytes, ...]) -> None:
    key = new_object_key("ws_a", "job_b", "input")
    with pytest.raises(BlobSizeMismatch):
        await store.write_stream(key, chunks_of(*parts), size_bytes=3)
    assert await store.size(key) is None
    assert leftovers(store.root) == []


async def test_missing_object(store: LocalBlobStore, tmp_path: Path) -> None:
    key = new_object_key("ws_a", "job_b", "output")
    assert await store.size(key) is None
    with pytest.raises(BlobNotFound):
        await store.fetch_to_path(key, tmp_path / "copy")
    with pytest.raises(BlobNotFound):
        [chunk async for chunk in store.read_stream(key)]
    await store.delete(key)


async def test_put_fetch_delete(store: LocalBlobStore, tmp_path: Path) -> None:
    source = tmp_path / "result.jpg"
    source.write_bytes(b"jpeg")
    key = new_object_key("ws_a", "job_b", "output")
    assert await store.put_from_path(key, source) == 4
    copy = tmp_path / "copy"
    await store.fetch_to_path(key, copy)
    assert copy.read_bytes() == b"jpeg"
    await store.delete(key)
    assert await store.size(key) is None
    assert leftovers(store.root) == []


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "ws_a/job_b/../../x",
        "ws_a/job_b/input-zz",
        "ws_a/job_b/photo.png",
        "/abs/job_b/input-0123456789abcdef",
        "ws_a/job_b/input-0123456789abcdef/x",
    ],
)
def test_unsafe_keys_rejected(key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        check_object_key(key)


def test_job_id_from_key() -> None:
    assert job_id_of_key(new_object_key("ws_a", "job_b", "input")) == "job_b"


UPLOAD = SignedRequest("PUT", "ws_a/job_b/input-" + "0" * 32, "image/png", 2_000_000_000, 10)


def test_signature_accepts_the_signed_request() -> None:
    verify(UPLOAD, UPLOAD.signature(SECRET), SECRET, now=1_000)


@pytest.mark.parametrize(
    "change",
    [
        {"method": "GET"},
        {"object_key": "ws_a/job_b/input-" + "1" * 32},
        {"content_type": "image/jpeg"},
        {"size_bytes": 11},
        {"expires": 2_000_000_001},
        {"file_name": "a.png"},
    ],
)
def test_signature_binds_every_field(change: dict[str, object]) -> None:
    altered = dataclasses.replace(UPLOAD, **change)  # type: ignore[arg-type]
    with pytest.raises(SignatureError) as failure:
        verify(altered, UPLOAD.signature(SECRET), SECRET, now=1_000)
    assert failure.value.code == "invalid_signature"


def test_signature_from_other_secret_rejected() -> None:
    with pytest.raises(SignatureError) as failure:
        verify(UPLOAD, UPLOAD.signature("t" * 40), SECRET, now=1_000)
    assert failure.value.code == "invalid_signature"


def test_expired_signature_rejected() -> None:
    with pytest.raises(SignatureError) as failure:
        verify(UPLOAD, UPLOAD.signature(SECRET), SECRET, now=UPLOAD.expires + 1)
    assert failure.value.code == "url_expired"


def test_non_ascii_signature_rejected() -> None:
    request = SignedRequest("PUT", "ws_a/job_b/input-" + "0" * 32, "image/png", 2_000_000_000, 5)
    with pytest.raises(SignatureError):
        verify(request, 'ß"Ãã', SECRET, now=0)
