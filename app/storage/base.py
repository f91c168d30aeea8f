"""The ``BlobStore`` protocol that inputs and outputs are kept behind."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

# Generated keys only: "<workspace id>/<job id>/<role>-<random hex>". File names never reach a key.
_OBJECT_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}/[A-Za-z0-9_]{1,64}/(input|output)-[0-9a-f]{16,64}$")


class BlobError(Exception):
    """Base class of the store's errors."""


class BlobNotFound(BlobError):
    pass


class BlobExists(BlobError):
    """The key was written before; every key is written once."""


class BlobSizeMismatch(BlobError):
    def __init__(self, expected: int, received: int) -> None:
        super().__init__(f"expected {expected} bytes, received {received}")
        self.expected = expected
        self.received = received


class InvalidObjectKey(BlobError):
    pass


def new_object_key(workspace_id: str, job_id: str, role: str) -> str:
    key = f"{workspace_id}/{job_id}/{role}-{secrets.token_hex(16)}"
    check_object_key(key)
    return key


def check_object_key(key: str) -> None:
    if not _OBJECT_KEY.fullmatch(key):
        raise InvalidObjectKey(f"invalid object key {key!r}")


def job_id_of_key(key: str) -> str:
    check_object_key(key)
    return key.split("/")[1]


def attachment_disposition(file_name: str) -> str:
    """``Content-Disposition`` value that saves the download under ``file_name``."""
    ascii_name = file_name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(file_name)}"


@dataclass(frozen=True)
class UploadTarget:
    """Upload destination of an input: a URL for ``PUT`` and the headers to send with it."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


class BlobStore(Protocol):
    """Storage of job inputs and outputs under generated keys."""

    signals_uploads: bool
    """True when uploads pass through the API, which signals the job's workflow; otherwise
    the workflow polls the store until the upload URL expires."""

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_at: datetime
    ) -> UploadTarget:
        """Return a URL that accepts one upload of exactly this type and size until expiry."""
        ...

    def download_url(
        self, key: str, *, content_type: str, file_name: str, expires_at: datetime
    ) -> str:
        """Return a URL that serves the object as an attachment named ``file_name``."""
        ...

    async def read_head(self, key: str, limit: int) -> bytes:
        """Return up to ``limit`` bytes from the start of the object; raises ``BlobNotFound``."""
        ...

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, size_bytes: int
    ) -> None:
        """Store exactly ``size_bytes`` bytes from the chunks under a new key.

        Raises ``BlobExists`` when the key was written before and ``BlobSizeMismatch`` when
        the chunks hold more or fewer bytes; nothing is kept after an error.
        """
        ...

    def read_stream(self, key: str) -> AsyncIterator[bytes]:
        """Yield the object's bytes; raises ``BlobNotFound``."""
        ...

    async def size(self, key: str) -> int | None:
        """Return the object's size, or ``None`` when it does not exist."""
        ...

    async def fetch_to_path(self, key: str, dest: Path) -> None:
        """Copy the object to a local file for an engine; raises ``BlobNotFound``."""
        ...

    async def put_from_path(self, key: str, src: Path) -> int:
        """Store a local file under the key (the file may be moved) and return its size."""
        ...

    async def delete(self, key: str) -> None:
        """Delete the object; deleting a missing object is not an error."""
        ...

    async def check(self) -> None:
        """Raise unless the store can be reached and written to."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
