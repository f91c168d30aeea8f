"""The API's error shape: ``{"error": {"code", "message", "details"}}``, one status per code."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.schemas import ErrorResponse

logger = logging.getLogger(__name__)

STATUS_BY_CODE: dict[str, int] = {
    "invalid_job_payload": 400,
    "invalid_request": 400,
    "input_size_mismatch": 400,
    "unauthorized": 401,
    "insufficient_credits": 402,
    "forbidden": 403,
    "invalid_signature": 403,
    "url_expired": 403,
    "not_found": 404,
    "tool_not_found": 404,
    "job_not_found": 404,
    "method_not_allowed": 405,
    "idempotency_key_reused": 409,
    "job_not_cancelable": 409,
    "job_not_finished": 409,
    "download_not_ready": 409,
    "upload_already_used": 409,
    "upload_not_accepted": 409,
    "download_expired": 410,
    "request_too_large": 413,
    "input_type_mismatch": 415,
    "invalid_job": 422,
    "browser_only_tool": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "tool_unavailable": 503,
    "service_unavailable": 503,
}


def _codes_of(status: int) -> str:
    return ", ".join(f"`{code}`" for code, value in STATUS_BY_CODE.items() if value == status)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": f"Error: {_codes_of(status)}"}
    for status in sorted(set(STATUS_BY_CODE.values()))
}
"""The error statuses in the OpenAPI document, each with the shared error body."""


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers
        self.status_code = STATUS_BY_CODE[code]


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _describe(error: Any) -> dict[str, str]:
    """Describe one validation error as a field name and a message."""
    location = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":
        position = location[1] if len(location) > 1 else "?"
        reason = (error.get("ctx") or {}).get("error", "invalid JSON")
        return {"field": "body", "message": f"is not valid JSON ({reason} at character {position})"}
    return {"field": _field_name(location), "message": str(error.get("msg", "is invalid"))}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        fields = [_describe(error) for error in errors]
        summary = "; ".join(f"{item['field']} {item['message']}" for item in fields[:5])
        if not any(error.get("loc", ("",))[0] == "body" for error in errors):
            code, message = "invalid_request", f"Invalid request parameters: {summary}."
        elif any(error.get("type") == "json_invalid" for error in errors):
            code, message = "invalid_job_payload", f"The request body is not valid JSON: {summary}."
        elif any(tuple(error.get("loc", ())) == ("body",) for error in errors):
            code = "invalid_job_payload"
            message = (
                "The request body must be a JSON object sent with 'Content-Type: application/json'."
            )
        else:
            code = "invalid_job_payload"
            message = f"The request body does not have the expected shape: {summary}."
        return JSONResponse(error_body(code, message, {"fields": fields}), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI raises this when it cannot parse the body at all, for example JSON nested
            # deeper than the parser allows.
            body = error_body(
                "invalid_job_payload",
                "The request body could not be parsed. Send a JSON object with "
                "'Content-Type: application/json'.",
            )
        elif exc.status_code == 404:
            body = error_body("not_found", "No such endpoint. See /docs for the API.")
        elif exc.status_code == 405:
            body = error_body("method_not_allowed", "This method is not allowed on this endpoint.")
        else:
            body = error_body("invalid_request", str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("Unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "internal_error", "An unexpected error occurred; the operator's log has the cause."
            ),
            status_code=500,
            # The server drops the connection after an unhandled error; tell the client so.
            headers={"Connection": "close"},
        )
