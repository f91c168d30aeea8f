"""Workspaces and API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db.models import ApiKey, Workspace, utcnow

ALL_SCOPES = ("tools:read", "jobs:read", "jobs:write", "files:write", "billing:read")
KEY_PREFIX = "wl_"


@dataclass(frozen=True)
class Plan:
    """Limits of a workspace plan; an API key may override the request rate."""

    requests_per_second: float
    burst: int
    max_running_jobs: int


PLANS: dict[str, Plan] = {
    "free": Plan(requests_per_second=2, burst=10, max_running_jobs=2),
    "standard": Plan(requests_per_second=20, burst=100, max_running_jobs=10),
    "scale": Plan(requests_per_second=200, burst=1000, max_running_jobs=100),
}


class UnknownScope(ValueError):
    pass


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKey
    secret: str
    """The whole key; it is not stored and cannot be shown again."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


async def create_workspace(session: AsyncSession, name: str, plan: str = "standard") -> Workspace:
    if not name.strip():
        raise ValueError("the workspace name must not be empty")
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}; plans: {', '.join(sorted(PLANS))}")
    workspace = Workspace(id=new_id("ws"), name=name, plan=plan)
    session.add(workspace)
    await session.commit()
    return workspace


async def create_key(
    session: AsyncSession,
    workspace_id: str,
    name: str,
    scopes: list[str] | None = None,
    rate_per_second: float | None = None,
    rate_burst: int | None = None,
) -> CreatedKey:
    requested = list(ALL_SCOPES) if scopes is None else [scope.strip() for scope in scopes]
    chosen = list(dict.fromkeys(scope for scope in requested if scope))
    if not chosen:
        raise UnknownScope(f"no scopes given; choose from {', '.join(ALL_SCOPES)}")
    unknown = [scope for scope in chosen if scope not in ALL_SCOPES]
    if unknown:
        raise UnknownScope(
            f"unknown scope {', '.join(unknown)}; valid scopes: {', '.join(ALL_SCOPES)}"
        )
    if await session.get(Workspace, workspace_id) is None:
        raise LookupError(f"workspace {workspace_id} not found")
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    record = ApiKey(
        id=new_id("key"),
        workspace_id=workspace_id,
        name=name,
        key_hash=hash_key(secret),
        prefix=secret[:10],
        scopes=" ".join(chosen),
        rate_per_second=rate_per_second,
        rate_burst=rate_burst,
    )
    session.add(record)
    await session.commit()
    return CreatedKey(record=record, secret=secret)


async def find_active_key(session: AsyncSession, secret: str) -> tuple[ApiKey, Plan] | None:
    """Return the key and its workspace's plan, or None for an unknown or revoked key."""
    statement = (
        select(ApiKey, Workspace.plan)
        .join(Workspace, col(Workspace.id) == col(ApiKey.workspace_id))
        .where(ApiKey.key_hash == hash_key(secret))
    )
    row = (await session.exec(statement)).first()
    if row is None or row[0].revoked_at is not None:
        return None
    record, plan = row
    return record, PLANS.get(plan, PLANS["standard"])


async def revoke_key(session: AsyncSession, key_id: str) -> tuple[ApiKey, bool]:
    """Revoke a key; the flag is False when it was already revoked."""
    record = await session.get(ApiKey, key_id)
    if record is None:
        raise LookupError(f"API key {key_id} not found")
    if record.revoked_at is not None:
        return record, False
    record.revoked_at = utcnow()
    session.add(record)
    await session.commit()
    return record, True


async def list_keys(session: AsyncSession, workspace_id: str | None = None) -> list[ApiKey]:
    statement = select(ApiKey).order_by(col(ApiKey.created_at))
    if workspace_id:
        statement = statement.where(ApiKey.workspace_id == workspace_id)
    return list((await session.exec(statement)).all())


async def list_workspaces(session: AsyncSession) -> list[Workspace]:
    return list((await session.exec(select(Workspace).order_by(col(Workspace.created_at)))).all())
