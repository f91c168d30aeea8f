"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text

from app.api.deps import Services, ServicesDep

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

REQUESTS = Counter(
    "worklane_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
LATENCY = Histogram("worklane_http_request_seconds", "HTTP request latency", ["method", "route"])
JOBS_CREATED = Counter("worklane_jobs_created_total", "Jobs created, repeats excluded", ["tool"])
READINESS_TIMEOUT_SECONDS = 3.0


async def record_metrics(request: Request, call_next: object) -> Response:
    start = time.perf_counter()
    response: Response = await call_next(request)  # type: ignore[operator]
    route = request.scope.get("route")
    path = getattr(route, "path", "unmatched")
    REQUESTS.labels(request.method, path, str(response.status_code)).inc()
    LATENCY.labels(request.method, path).observe(time.perf_counter() - start)
    return response


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process responds."""
    return {"status": "ok"}


async def _check(name: str, probe: Awaitable[object], checks: dict[str, str]) -> None:
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await probe
        checks[name] = "ok"
    except Exception as err:
        logger.warning("Readiness: %s check failed: %s", name, str(err) or repr(err))
        checks[name] = "unreachable"


async def _database_answers(services: Services) -> None:
    async with services.db.session() as session:
        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """Readiness: the database, Temporal and the blob store respond within 3 seconds each."""
    checks: dict[str, str] = {}
    await _check("database", _database_answers(services), checks)
    await _check("temporal", services.temporal.service_client.check_health(), checks)
    await _check("storage", services.store.check(), checks)
    ready = all(value == "ok" for value in checks.values())
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    body = {
        "error": {
            "code": "service_unavailable",
            "message": "A dependency is unreachable.",
            "details": {"checks": checks},
        }
    }
    return JSONResponse(body, status_code=503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus metrics of this API process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
