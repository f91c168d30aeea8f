"""SQL tables: workspaces, API keys, the credit ledger, the job index and webhook deliveries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to a timestamp read back from SQLite, which drops the zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _timestamp(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Workspace(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    plan: str = "standard"
    balance: int = Field(default=0, sa_type=BigInteger)
    """Sum of the workspace's ledger entries, updated in the same transaction as each entry.

    A conditional UPDATE on this column is what keeps concurrent debits from overdrawing.
    """
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    webhook_secret: str | None = None
    """Current ``whsec_`` secret that signs webhook deliveries; created on first need.

    Stored in plain text, because signing needs the secret itself and not a hash of it."""
    webhook_previous_secret: str | None = None
    """Secret replaced by the last rotation; it also signs until its expiry."""
    webhook_previous_secret_expires_at: datetime | None = _timestamp()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", index=True)
    name: str
    key_hash: str = Field(unique=True, index=True)
    """SHA-256 of the whole key; keys are random, so a plain hash is enough."""
    prefix: str
    """The first characters of the key, shown in listings to tell keys apart."""
    scopes: str
    """Space-separated scope names."""
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    revoked_at: datetime | None = _timestamp()
    rate_per_second: float | None = None
    """Override of the plan's request rate for this key."""
    rate_burst: int | None = None
    """Override of the plan's burst size for this key."""

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())


class Job(SQLModel, table=True):
    """One row per job, written by the API at create and by the workflow at every state change."""

    __table_args__ = (
        UniqueConstraint("workspace_id", "idempotency_key"),
        # Serves the running-jobs count of the per-workspace cap and the status filter.
        Index("ix_job_workspace_status", "workspace_id", "status"),
    )

    id: str = Field(primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", index=True)
    tool_slug: str = Field(index=True)
    status: str = Field(index=True)
    state_version: int = 0
    """Ordinal of the last state change written; older writes are ignored."""
    idempotency_key: str | None = None
    request_hash: str
    input_kind: str
    input_name: str | None = None
    input_content_type: str | None = None
    input_size_bytes: int | None = None
    input_object_key: str | None = None
    upload_expires_at: datetime | None = _timestamp()
    input_uploaded_at: datetime | None = _timestamp()
    progress: int = 0
    attempt: int = 0
    max_attempts: int
    deadline_seconds: int
    deadline_at: datetime | None = _timestamp()
    cost_units: int
    credits_charged: int = 0
    credits_refunded: int = 0
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )
    started_at: datetime | None = _timestamp()
    finished_at: datetime | None = _timestamp()
    closed_at: datetime | None = _timestamp()
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    job_metadata: dict[str, str] | None = Field(default=None, sa_column=Column("metadata", JSON))
    webhook_url: str | None = None
    """URL that receives the event of the job's final state."""


class LedgerEntry(SQLModel, table=True):
    """One credit movement; entries are only ever added."""

    __tablename__ = "ledger_entry"
    # A job is debited once and refunded once, whatever retries or replays happen.
    __table_args__ = (UniqueConstraint("job_id", "reason"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: str = Field(foreign_key="workspace.id", index=True)
    job_id: str | None = Field(default=None, index=True)
    reason: str
    amount: int = Field(sa_type=BigInteger)
    """Credits added (positive) or taken (negative)."""
    balance_after: int = Field(sa_type=BigInteger)
    note: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver a webhook event, whatever its outcome."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True)
    event_id: str
    event_type: str
    attempt: int
    url: str
    status_code: int | None = None
    """HTTP status of the receiver's response; ``None`` when no response arrived."""
    error: str | None = None
    """Reason the attempt failed without a response, or the target was rejected."""
    duration_ms: int
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
