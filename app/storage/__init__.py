"""Blob storage behind the ``BlobStore`` protocol."""

from __future__ import annotations

from app.config import Settings
from app.storage.base import BlobStore
from app.storage.local import LocalBlobStore


def create_store(settings: Settings) -> BlobStore:
    return LocalBlobStore(settings.blob_dir)
