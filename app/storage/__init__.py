"""Blob storage behind the ``BlobStore`` protocol."""

from __future__ import annotations

from app.config import Settings, StorageKind
from app.storage.base import BlobStore
from app.storage.local import LocalBlobStore


def create_store(settings: Settings) -> BlobStore:
    if settings.storage is StorageKind.S3:
        # Imported here so that the local store does not load the AWS libraries.
        from app.storage.s3 import S3BlobStore

        return S3BlobStore(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            public_endpoint_url=settings.s3_public_endpoint_url,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style=settings.s3_addressing_style,
        )
    return LocalBlobStore(
        settings.blob_dir,
        base_url=settings.resolved_public_base_url,
        secret=settings.signing_secret,
    )
