"""Shared objects of the API process, and the dependencies that hand them to routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from app.api.errors import ApiError
from app.api.ratelimit import RateLimiter, retry_after_header
from app.config import Settings
from app.db.accounts import Plan, find_active_key
from app.db.models import ApiKey
from app.db.session import Database
from app.storage.base import BlobStore


@dataclass
class Services:
    settings: Settings
    db: Database
    temporal: Client
    store: BlobStore
    rate_limiter: RateLimiter


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


async def _check_rate(services: Services, record: ApiKey, plan: Plan) -> None:
    rate = float(record.rate_per_second or plan.requests_per_second)
    burst = record.rate_burst or plan.burst
    wait = await services.rate_limiter.acquire(record.id, rate, burst)
    if wait is not None:
        raise ApiError(
            "rate_limited",
            f"Too many requests for this API key: the limit is {rate:g} per second with bursts "
            f"of {burst}. Retry after {retry_after_header(wait)} s.",
            {"requestsPerSecond": rate, "burst": burst},
            headers={"Retry-After": retry_after_header(wait)},
        )


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
        found = await find_active_key(session, secret.strip())
        if found is None:
            raise ApiError(
                "unauthorized",
                "The API key is unknown or revoked.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        record, plan = found
        await _check_rate(get_services(request), record, plan)
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
