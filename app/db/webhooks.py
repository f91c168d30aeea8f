"""Webhook signing secrets of a workspace, and the log of delivery attempts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db.models import WebhookDelivery, Workspace, as_utc
from app.webhooks.signing import new_secret

logger = logging.getLogger(__name__)

# Concurrent rotations each retry their compare-and-set; more conflicts than this are a bug.
MAX_SECRET_WRITE_TRIES = 5


class WorkspaceNotFound(Exception):
    pass


@dataclass(frozen=True)
class SigningSecrets:
    current: str
    previous: str | None
    previous_expires_at: datetime | None

    def previous_valid_at(self, now: datetime) -> bool:
        return (
            self.previous is not None
            and self.previous_expires_at is not None
            and self.previous_expires_at > now
        )

    def valid_at(self, now: datetime) -> list[str]:
        """Return the secrets that sign a delivery sent at ``now``, the current one first."""
        if self.previous_valid_at(now):
            assert self.previous is not None
            return [self.current, self.previous]
        return [self.current]


async def _load(session: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await session.get(Workspace, workspace_id, populate_existing=True)
    if workspace is None:
        raise WorkspaceNotFound(workspace_id)
    return workspace


def _secrets_of(workspace: Workspace) -> SigningSecrets:
    assert workspace.webhook_secret is not None
    return SigningSecrets(
        current=workspace.webhook_secret,
        previous=workspace.webhook_previous_secret,
        previous_expires_at=as_utc(workspace.webhook_previous_secret_expires_at),
    )


async def _replace_secret(
    session: AsyncSession, workspace: Workspace, values: dict[str, object]
) -> bool:
    """Write ``values`` only if the current secret is still the one read; True when written.

    The condition makes concurrent creations and rotations safe on SQLite and PostgreSQL alike:
    the loser reads again instead of overwriting a secret that was already handed out.
    """
    current = col(Workspace.webhook_secret)
    unchanged: ColumnElement[bool]
    if workspace.webhook_secret is None:
        unchanged = current.is_(None)
    else:
        unchanged = current == workspace.webhook_secret
    statement = update(Workspace).where(col(Workspace.id) == workspace.id, unchanged)
    connection = await session.connection()
    result = await connection.execute(statement.values(**values))
    await session.commit()
    return result.rowcount > 0


async def get_signing_secrets(session: AsyncSession, workspace_id: str) -> SigningSecrets:
    """Return the workspace's secrets, creating the first secret when it has none."""
    for _ in range(MAX_SECRET_WRITE_TRIES):
        workspace = await _load(session, workspace_id)
        if workspace.webhook_secret is not None:
            return _secrets_of(workspace)
        if await _replace_secret(session, workspace, {"webhook_secret": new_secret()}):
            logger.info("Created webhook signing secret", extra={"workspace_id": workspace_id})
    raise RuntimeError(f"could not create a webhook secret for workspace {workspace_id}")


async def rotate_signing_secret(
    session: AsyncSession, workspace_id: str, grace: timedelta, now: datetime
) -> SigningSecrets:
    """Replace the current secret by a new one; the old one keeps signing for ``grace``.

    Only one previous secret is kept: a second rotation within the grace period ends the
    older one at once.
    """
    for _ in range(MAX_SECRET_WRITE_TRIES):
        workspace = await _load(session, workspace_id)
        values: dict[str, object] = {"webhook_secret": new_secret()}
        if workspace.webhook_secret is not None:
            values["webhook_previous_secret"] = workspace.webhook_secret
            values["webhook_previous_secret_expires_at"] = now + grace
        if await _replace_secret(session, workspace, values):
            logger.info("Rotated webhook signing secret", extra={"workspace_id": workspace_id})
            return _secrets_of(await _load(session, workspace_id))
    raise RuntimeError(f"could not rotate the webhook secret of workspace {workspace_id}")


async def record_delivery(session: AsyncSession, delivery: WebhookDelivery) -> None:
    session.add(delivery)
    await session.commit()


async def list_deliveries(session: AsyncSession, job_id: str) -> list[WebhookDelivery]:
    """Return the job's delivery attempts, oldest first."""
    statement = (
        select(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id)
        .order_by(col(WebhookDelivery.created_at), col(WebhookDelivery.id))
    )
    return list((await session.exec(statement)).all())
