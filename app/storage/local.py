"""Blob store in a local directory; the API serves its signed URLs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from app.storage.base import (
    BlobExists,
    BlobNotFound,
    BlobSizeMismatch,
    UploadTarget,
    check_object_key,
)
from app.storage.signing import SignedRequest

CHUNK_BYTES = 1024 * 1024


class LocalBlobStore:
    """Objects as files under ``root``; the API at ``base_url`` accepts and serves them."""

    signals_uploads = True

    def __init__(self, root: Path, *, base_url: str = "", secret: str = "") -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url
        self.secret = secret

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_at: datetime
    ) -> UploadTarget:
        signed = SignedRequest(
            "PUT", key, content_type, int(expires_at.timestamp()), size_bytes=size_bytes
        )
        return UploadTarget(signed.url(self.base_url, self.secret), {"Content-Type": content_type})

    def download_url(
        self, key: str, *, content_type: str, file_name: str, expires_at: datetime
    ) -> str:
        signed = SignedRequest(
            "GET", key, content_type, int(expires_at.timestamp()), file_name=file_name
        )
        return signed.url(self.base_url, self.secret)

    def path_for(self, key: str) -> Path:
        check_object_key(key)
        return self.root / key

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, size_bytes: int
    ) -> None:
        final = self.path_for(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.{os.getpid()}.{id(chunks)}.part")
        total = 0
        try:
            with partial.open("xb") as out:
                async for chunk in chunks:
                    total += len(chunk)
                    if total > size_bytes:
                        raise BlobSizeMismatch(size_bytes, total)
                    await asyncio.to_thread(out.write, chunk)
            if total != size_bytes:
                raise BlobSizeMismatch(size_bytes, total)
            # os.link fails when the key exists, so two concurrent uploads cannot both win.
            try:
                os.link(partial, final)
            except FileExistsError as exc:
                raise BlobExists(key) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        with handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk

    async def read_head(self, key: str, limit: int) -> bytes:
        try:
            with self.path_for(key).open("rb") as handle:
                return await asyncio.to_thread(handle.read, limit)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    async def size(self, key: str) -> int | None:
        try:
            return self.path_for(key).stat().st_size
        except FileNotFoundError:
            return None

    async def fetch_to_path(self, key: str, dest: Path) -> None:
        src = self.path_for(key)
        try:
            # A hard link costs nothing; objects are never modified in place.
            os.link(src, dest)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        except OSError:
            await asyncio.to_thread(shutil.copyfile, src, dest)

    async def put_from_path(self, key: str, src: Path) -> int:
        final = self.path_for(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        size = (await asyncio.to_thread(src.stat)).st_size
        try:
            os.replace(src, final)
        except OSError:
            await asyncio.to_thread(shutil.copyfile, src, final)
        return size

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # Remove the job's folder once it is empty.
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    async def check(self) -> None:
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"cannot write to {self.root}")

    async def close(self) -> None:
        return None
