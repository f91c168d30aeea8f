"""Blob store in an S3 bucket (AWS S3 or an S3-compatible server such as MinIO).

Clients upload and download directly from the bucket through presigned URLs. An upload URL
signs the content type, the exact content length and ``If-None-Match: *``, so the store itself
refuses another type, another size, or a second upload while the input exists. Workers stream
objects to and from files; no object is held in memory whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aioboto3
import botocore.session
from aiobotocore.config import AioConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from app.storage.base import (
    BlobExists,
    BlobNotFound,
    BlobSizeMismatch,
    UploadTarget,
    attachment_disposition,
    check_object_key,
)

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_EXISTS_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _seconds_until(expires_at: datetime) -> int:
    remaining = (expires_at - datetime.now(UTC)).total_seconds()
    return max(1, math.ceil(remaining))


class S3BlobStore:
    signals_uploads = False

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        endpoint_url: str = "",
        public_endpoint_url: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        addressing_style: str = "auto",
    ) -> None:
        if addressing_style == "auto" and endpoint_url:
            # S3-compatible servers on a plain host name or address serve buckets as paths.
            addressing_style = "path"
        credentials: dict[str, Any] = {}
        if access_key_id:
            credentials = {
                "aws_access_key_id": access_key_id,
                "aws_secret_access_key": secret_access_key,
            }
        s3_options = {"addressing_style": addressing_style}
        self.bucket = bucket
        self._endpoint_url = endpoint_url or None
        self._session = aioboto3.Session(region_name=region, **credentials)
        self._config = AioConfig(
            signature_version="s3v4",
            s3=s3_options,
            retries={"max_attempts": 5, "mode": "standard"},
        )
        # Presigning is a local computation; it uses the address that clients reach.
        self._presigner = botocore.session.get_session().create_client(
            "s3",
            region_name=region,
            endpoint_url=public_endpoint_url or endpoint_url or None,
            config=Config(signature_version="s3v4", s3=s3_options),
            **credentials,
        )
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._exit_stack = contextlib.AsyncExitStack()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._exit_stack.enter_async_context(
                        self._session.client(
                            "s3", endpoint_url=self._endpoint_url, config=self._config
                        )
                    )
        return self._client

    async def check(self) -> None:
        client = await self._s3()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            code = _error_code(err)
            if code in {"404", "NoSuchBucket", "NotFound"}:
                raise RuntimeError(f"bucket '{self.bucket}' does not exist") from err
            if code in {"403", "AccessDenied"}:
                raise RuntimeError(
                    f"access to bucket '{self.bucket}' is denied; check the credentials"
                ) from err
            raise

    async def close(self) -> None:
        self._client = None
        await self._exit_stack.aclose()

    def upload_target(
        self, key: str, *, content_type: str, size_bytes: int, expires_at: datetime
    ) -> UploadTarget:
        check_object_key(key)
        url = self._presigner.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size_bytes,
                "IfNoneMatch": "*",
            },
            ExpiresIn=_seconds_until(expires_at),
        )
        return UploadTarget(str(url), {"Content-Type": content_type, "If-None-Match": "*"})

    def download_url(
        self, key: str, *, content_type: str, file_name: str, expires_at: datetime
    ) -> str:
        check_object_key(key)
        url = self._presigner.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentType": content_type,
                "ResponseContentDisposition": attachment_disposition(file_name),
            },
            ExpiresIn=_seconds_until(expires_at),
        )
        return str(url)

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, size_bytes: int
    ) -> None:
        # Only inputs sent inside the JSON request come here, and the API bounds their size.
        check_object_key(key)
        parts: list[bytes] = []
        total = 0
        async for chunk in chunks:
            total += len(chunk)
            if total > size_bytes:
                raise BlobSizeMismatch(size_bytes, total)
            parts.append(chunk)
        if total != size_bytes:
            raise BlobSizeMismatch(size_bytes, total)
        client = await self._s3()
        try:
            await client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=b"".join(parts),
                ContentLength=size_bytes,
                IfNoneMatch="*",
            )
        except ClientError as err:
            if _error_code(err) in _EXISTS_CODES:
                raise BlobExists(key) from err
            raise

    async def _get(self, key: str, **extra: str) -> Any:
        check_object_key(key)
        client = await self._s3()
        try:
            return await client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as err:
            if _error_code(err) in _MISSING_CODES:
                raise BlobNotFound(key) from err
            raise

    async def read_stream(self, key: str) -> AsyncIterator[bytes]:
        body = (await self._get(key))["Body"]
        # The body's context manager releases the connection, also when the reader stops early.
        async with body:
            async for chunk in body.iter_chunks(CHUNK_BYTES):
                yield chunk

    async def read_head(self, key: str, limit: int) -> bytes:
        try:
            response = await self._get(key, Range=f"bytes=0-{limit - 1}")
        except ClientError as err:
            if _error_code(err) == "InvalidRange":  # an empty object
                return b""
            raise
        body = response["Body"]
        async with body:
            data: bytes = await body.read()
        return data[:limit]

    async def size(self, key: str) -> int | None:
        check_object_key(key)
        client = await self._s3()
        try:
            head = await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _error_code(err) in _MISSING_CODES:
                return None
            raise
        return int(head["ContentLength"])

    async def fetch_to_path(self, key: str, dest: Path) -> None:
        check_object_key(key)
        client = await self._s3()
        try:
            await client.download_file(self.bucket, key, str(dest))
        except ClientError as err:
            if _error_code(err) in _MISSING_CODES:
                raise BlobNotFound(key) from err
            raise

    async def put_from_path(self, key: str, src: Path) -> int:
        check_object_key(key)
        client = await self._s3()
        size = (await asyncio.to_thread(src.stat)).st_size
        # Large files go up in parts, read from the file a part at a time.
        await client.upload_file(str(src), self.bucket, key)
        return size

    async def delete(self, key: str) -> None:
        check_object_key(key)
        client = await self._s3()
        await client.delete_object(Bucket=self.bucket, Key=key)
