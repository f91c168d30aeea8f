"""Signed upload and download URLs of the local blob store."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from temporalio.service import RPCError

from app.api.deps import ServicesDep, SessionDep
from app.api.errors import ApiError
from app.db.models import Job, utcnow
from app.storage.base import (
    BlobExists,
    BlobNotFound,
    BlobSizeMismatch,
    InvalidObjectKey,
    attachment_disposition,
    job_id_of_key,
)
from app.storage.signing import BLOB_PATH, SignatureError, SignedRequest, verify
from app.workflows.job import JobWorkflow
from app.workflows.types import JobStatus

logger = logging.getLogger(__name__)
router = APIRouter(prefix=BLOB_PATH.rstrip("/"), tags=["files"])


def _verified(request: SignedRequest, signature: str | None, secret: str) -> None:
    if not signature or not request.content_type or not request.expires:
        raise ApiError(
            "invalid_signature",
            "The URL is missing its signature parameters. Use the intent's URL unchanged.",
        )
    try:
        verify(request, signature, secret, time.time())
    except SignatureError as err:
        raise ApiError(err.code, err.message) from err


def _job_id(key: str) -> str:
    try:
        return job_id_of_key(key)
    except InvalidObjectKey as err:
        raise ApiError("invalid_signature", "The URL does not name a valid object.") from err


@router.put("/{key:path}")
async def upload(
    key: str,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    content_type: Annotated[str, Query(alias="contentType")] = "",
    expires: int = 0,
    signature: str | None = None,
    size: int | None = None,
) -> dict[str, object]:
    """Store a job's input. The body must have exactly the signed content type and size."""
    signed = SignedRequest("PUT", key, content_type, expires, size_bytes=size)
    _verified(signed, signature, services.settings.signing_secret)
    # A verified upload URL always carries its size; this narrows the type.
    assert size is not None
    job_id = _job_id(key)

    sent_type = request.headers.get("content-type", "")
    if sent_type.split(";")[0].strip().lower() != content_type:
        raise ApiError(
            "input_type_mismatch",
            f"Send the header 'Content-Type: {content_type}' declared for this upload "
            f"(received '{sent_type or 'none'}').",
        )
    length = request.headers.get("content-length")
    if length is not None and length != str(size):
        raise ApiError(
            "input_size_mismatch",
            f"The body has {length} bytes but the job declared {size}. Upload the exact file.",
            {"declaredBytes": size, "receivedBytes": int(length) if length.isdigit() else length},
        )
    job = await session.get(Job, job_id)
    if job is not None and job.input_uploaded_at is not None:
        raise ApiError(
            "upload_already_used", "This upload URL was already used; the input is stored."
        )
    if job is None or job.status != JobStatus.QUEUED:
        raise ApiError(
            "upload_not_accepted",
            "The job no longer accepts an upload"
            + (f" because it is '{job.status}'." if job else "."),
        )

    try:
        await services.store.write_stream(key, request.stream(), size_bytes=size)
    except BlobExists as err:
        raise ApiError(
            "upload_already_used", "This upload URL was already used; the input is stored."
        ) from err
    except BlobSizeMismatch as err:
        raise ApiError(
            "input_size_mismatch",
            f"The body had {err.received} or more bytes but the job declared {size}. "
            "Upload the exact file.",
            {"declaredBytes": size, "receivedBytes": err.received},
        ) from err

    job.input_uploaded_at = utcnow()
    session.add(job)
    await session.commit()
    try:
        await services.temporal.get_workflow_handle(job_id).signal(JobWorkflow.input_uploaded)
    except RPCError as err:
        # The workflow also checks the store when the upload window closes.
        logger.warning("Upload signal failed", extra={"job_id": job_id, "error": str(err)})
    logger.info("Input uploaded", extra={"job_id": job_id, "size_bytes": size})
    return {"objectKey": key, "sizeBytes": size}


@router.get("/{key:path}")
async def download(
    key: str,
    services: ServicesDep,
    content_type: Annotated[str, Query(alias="contentType")] = "",
    expires: int = 0,
    signature: str | None = None,
    file_name: Annotated[str | None, Query(alias="fileName")] = None,
) -> StreamingResponse:
    """Stream a job's output as an attachment."""
    signed = SignedRequest("GET", key, content_type, expires, file_name=file_name)
    _verified(signed, signature, services.settings.signing_secret)
    _job_id(key)
    # A verified download URL always carries its file name; this narrows the type.
    assert file_name is not None

    size = await services.store.size(key)
    if size is None:
        raise ApiError("download_expired", "The output expired and was deleted. Run the job again.")
    chunks = services.store.read_stream(key)

    async def _stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        except BlobNotFound:
            logger.warning("Output deleted during download", extra={"object_key": key})

    return StreamingResponse(
        _stream(),
        media_type=content_type,
        headers={
            "Content-Disposition": attachment_disposition(file_name),
            "Content-Length": str(size),
        },
    )
