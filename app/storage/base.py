"""The ``BlobStore`` protocol that inputs and outputs are kept behind."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

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


class BlobStore(Protocol):
    """Storage of job inputs and outputs under generated keys."""

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
