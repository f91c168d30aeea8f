"""Request bodies of the jobs API, and the job as returned."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RequestModel(CamelModel):
    """Base of request bodies: JSON types are checked strictly, so "10" is not a number."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", strict=True
    )


class JobInputCreate(RequestModel):
    kind: Literal["file", "text", "json"]
    name: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    text: str | None = None
    json_: dict[str, Any] | None = Field(default=None, alias="json")
    options: dict[str, Any] | None = None


class JobCreate(RequestModel):
    tool_slug: str
    input: JobInputCreate
    max_attempts: int | None = None
    deadline_seconds: int | None = None
    metadata: dict[str, str] | None = None
    webhook_url: str | None = None


class UploadIntent(CamelModel):
    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str]
    expires_at: datetime
    object_key: str


class JobInputPublic(CamelModel):
    kind: str
    name: str | None
    content_type: str | None
    size_bytes: int | None


class JobError(CamelModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    code: str
    message: str
    retryable: bool


class JobOutputPublic(CamelModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    file_name: str
    content_type: str
    size_bytes: int
    expires_at: datetime
    expired: bool
    metadata: dict[str, Any] = {}


class JobPublic(CamelModel):
    id: str
    tool_slug: str
    status: str
    progress: int
    attempt: int
    retry_count: int
    max_attempts: int
    deadline_seconds: int
    deadline_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    closed_at: datetime | None
    input: JobInputPublic
    upload_intent: UploadIntent | None
    output: JobOutputPublic | None
    error: JobError | None
    cost_units: int
    credits_charged: int
    credits_refunded: int
    idempotency_key: str | None
    metadata: dict[str, str]
    webhook_url: str | None


class JobList(CamelModel):
    data: list[JobPublic]
    next_cursor: str | None


class DownloadIntent(CamelModel):
    method: Literal["GET"] = "GET"
    url: str
    expires_at: datetime
    file_name: str
    content_type: str
    size_bytes: int


class LedgerEntryPublic(CamelModel):
    id: int
    amount: int
    reason: str
    job_id: str | None
    balance_after: int
    note: str | None
    created_at: datetime


class CreditsPublic(CamelModel):
    workspace_id: str
    plan: str
    balance: int
    data: list[LedgerEntryPublic]
    next_cursor: str | None


class WebhookSecretPublic(CamelModel):
    secret: str
    """Current secret; every delivery carries a signature made with it."""
    previous_secret: str | None
    """Secret replaced by the last rotation, while it still signs deliveries."""
    previous_secret_expires_at: datetime | None


class WebhookDeliveryPublic(CamelModel):
    event_id: str
    event_type: str
    attempt: int
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: datetime


class WebhookDeliveryList(CamelModel):
    data: list[WebhookDeliveryPublic]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorResponse(BaseModel):
    """Body of every error response."""

    error: ErrorDetail
