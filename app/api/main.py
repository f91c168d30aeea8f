"""FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.api import blobs, credits, health, jobs, tools, webhooks
from app.api.deps import Services
from app.api.errors import ERROR_RESPONSES, install_error_handlers
from app.api.limits import BodySizeLimit
from app.api.ratelimit import create_rate_limiter
from app.config import Settings, get_settings
from app.db.migrate import upgrade_database
from app.db.session import Database
from app.logs import configure_logging
from app.storage import create_store
from app.temporal import connect_checked

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade_database(settings.resolved_database_url)
        db = Database(settings.resolved_database_url)
        temporal = await connect_checked(settings)
        limiter = create_rate_limiter(settings.redis_url)
        store = create_store(settings)
        app.state.services = Services(settings, db, temporal, store, limiter)
        logger.info(
            "API started on %s with the %s store",
            settings.resolved_public_base_url,
            settings.storage,
        )
        yield
        await store.close()
        await limiter.close()
        await db.dispose()
        logger.info("API stopped")

    app = FastAPI(
        responses=ERROR_RESPONSES,
        title="Worklane",
        version="1",
        description="File-conversion jobs: create a job, upload its input, poll it, download "
        "its output. Compatible with the BoringKit v1 jobs API.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.middleware("http")(health.record_metrics)
    for module in (tools, jobs, webhooks, credits, blobs, health):
        app.include_router(module.router)
    app.openapi = lambda: _openapi_with_bearer_key(app)  # type: ignore[method-assign]
    return app


def _openapi_with_bearer_key(app: FastAPI) -> dict[str, Any]:
    """Build the OpenAPI document once, declaring the bearer key on the routes that need it.

    Keys are checked by a dependency of their own, which FastAPI cannot describe.
    """
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        document.setdefault("components", {})["securitySchemes"] = {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key, sent as 'Authorization: Bearer wl_...'.",
            }
        }
        for path, operations in document["paths"].items():
            if path.startswith("/v1/") and not path.startswith("/v1/blobs/"):
                for operation in operations.values():
                    operation["security"] = [{"apiKey": []}]
        app.openapi_schema = document
    return app.openapi_schema
