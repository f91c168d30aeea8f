"""Shared objects of the API process, and the dependencies that hand them to routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from app.api.errors import ApiError
from app.config import Settings
from app.db.accounts import find_active_key
from app.db.session import Database
from app.storage.base import BlobStore


@dataclass
class Services:
    settings: Settings
    db: Database
    temporal: Client
    store: BlobStore


@dataclass(frozen=True)
class Principal:
    """The caller, identified by an API key."""

    workspace_id: str
    key_id: str
    scopes: frozenset[str]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_services(request).db.session() as session:
        yield session


ServicesDep = Annotated[Services, Depends(get_services)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


def require_scope(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """Dependency that authenticates the bearer key and checks that it carries ``scope``."""

    async def _authenticate(request: Request, session: SessionDep) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if not header.strip():
            raise ApiError(
                "unauthorized",
                "Missing API key. Send it as 'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(
                "unauthorized",
                "The Authorization header must use the Bearer scheme: "
                "'Authorization: Bearer <key>'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        record = await find_active_key(session, secret.strip())
        if record is None:
            raise ApiError(
                "unauthorized",
                "The API key is unknown or revoked.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in record.scope_set:
            raise ApiError(
                "forbidden",
                f"The API key lacks the '{scope}' scope required here.",
                {"requiredScope": scope},
            )
        return Principal(record.workspace_id, record.id, record.scope_set)

    return _authenticate


ToolsReader = Annotated[Principal, Depends(require_scope("tools:read"))]
JobsReader = Annotated[Principal, Depends(require_scope("jobs:read"))]
JobsWriter = Annotated[Principal, Depends(require_scope("jobs:write"))]
FilesWriter = Annotated[Principal, Depends(require_scope("files:write"))]
