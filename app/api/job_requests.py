"""Validation of a create request against the tool's catalog entry."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.api.errors import ApiError
from app.api.schemas import JobCreate
from app.catalog import FieldError, InputKind, Tool, get_tool, validate_options
from app.config import Settings
from app.webhooks.targets import WebhookTargetError, resolve_target

MAX_FILE_NAME_CHARS = 255
MAX_METADATA_ENTRIES = 20
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500
MAX_IDEMPOTENCY_KEY_CHARS = 255
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]+$")


@dataclass(frozen=True)
class ValidJob:
    tool: Tool
    options: dict[str, Any]
    max_attempts: int
    deadline_seconds: int


def request_hash(body: JobCreate) -> str:
    """Fingerprint of a create request, to tell a retry from a different request."""
    fields = body.model_dump(mode="json", by_alias=True)
    if body.webhook_url is None:
        # Requests made before webhooks existed keep their fingerprint, so their retries with
        # the same Idempotency-Key still replay instead of being rejected as another request.
        del fields["webhookUrl"]
    canonical = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_CHARS or not key.isprintable():
        raise ApiError(
            "invalid_job_payload",
            f"The Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable "
            "characters.",
        )
    return key


def find_api_tool(slug: str) -> Tool:
    tool = get_tool(slug)
    if tool is None:
        raise ApiError(
            "tool_not_found",
            f"No tool with slug '{slug}'. GET /v1/tools lists the tools.",
            {"toolSlug": slug},
        )
    if tool.browser_only:
        raise ApiError("browser_only_tool", tool.api_jobs_reason or "", {"toolSlug": slug})
    if not tool.api_jobs:
        raise ApiError("tool_unavailable", tool.api_jobs_reason or "", {"toolSlug": slug})
    return tool


def _file_name_problem(name: str) -> str | None:
    if not name.strip():
        return "must not be empty"
    if len(name) > MAX_FILE_NAME_CHARS:
        return f"must be at most {MAX_FILE_NAME_CHARS} characters"
    if "/" in name or "\\" in name:
        return "must be a file name, not a path (no '/' or '\\')"
    if name in (".", "..") or name.startswith("."):
        return "must not start with '.'"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in name):
        return "must not contain control characters"
    return None


def _check_file_input(tool: Tool, body: JobCreate, errors: list[FieldError]) -> None:
    assert tool.limits is not None
    source = body.input
    accepted = ", ".join(kind.content_type for kind in tool.accepted_types)
    if source.name is None:
        errors.append(FieldError("input.name", "is required for a file input"))
    elif problem := _file_name_problem(source.name):
        errors.append(FieldError("input.name", problem))

    entry = None
    if source.content_type is None:
        errors.append(FieldError("input.contentType", f"is required; accepted: {accepted}"))
    else:
        entry = next(
            (t for t in tool.accepted_types if t.content_type == source.content_type.lower()), None
        )
        if entry is None:
            errors.append(
                FieldError(
                    "input.contentType",
                    f"'{source.content_type}' is not accepted by {tool.slug}; accepted: {accepted}",
                )
            )
    if entry is not None and source.name and not _file_name_problem(source.name):
        suffix = "." + source.name.rsplit(".", 1)[-1].lower() if "." in source.name else ""
        if suffix not in entry.extensions:
            errors.append(
                FieldError(
                    "input.name",
                    f"extension '{suffix or '(none)'}' does not match {entry.content_type}; "
                    f"use {', '.join(entry.extensions)}",
                )
            )

    if source.size_bytes is None:
        errors.append(FieldError("input.sizeBytes", "is required: the exact size of the file"))
    elif source.size_bytes < 0:
        errors.append(FieldError("input.sizeBytes", "must be the file's size in bytes, above 0"))
    elif source.size_bytes == 0:
        errors.append(FieldError("input.sizeBytes", "is 0, so the file is empty; upload a file"))
    elif source.size_bytes > tool.limits.max_bytes:
        errors.append(
            FieldError(
                "input.sizeBytes",
                f"{source.size_bytes} bytes is over the limit of {tool.limits.max_bytes} bytes",
            )
        )
    for field in ("text", "json_"):
        if getattr(source, field) is not None:
            errors.append(
                FieldError(f"input.{field.rstrip('_')}", "is not allowed for kind 'file'")
            )


def _check_inline_input(tool: Tool, body: JobCreate, errors: list[FieldError]) -> None:
    assert tool.limits is not None
    source = body.input
    if source.kind == InputKind.TEXT.value:
        if not source.text:
            errors.append(FieldError("input.text", "is required and must not be empty"))
        elif len(source.text.encode()) > tool.limits.max_bytes:
            errors.append(
                FieldError("input.text", f"is over the limit of {tool.limits.max_bytes} bytes")
            )
    else:
        if source.json_ is None:
            errors.append(FieldError("input.json", "is required for kind 'json'"))
        elif len(json.dumps(source.json_).encode()) > tool.limits.max_bytes:
            errors.append(
                FieldError("input.json", f"is over the limit of {tool.limits.max_bytes} bytes")
            )
    for field in ("name", "content_type", "size_bytes"):
        if getattr(source, field) is not None and field != "name":
            camel = "contentType" if field == "content_type" else "sizeBytes"
            errors.append(FieldError(f"input.{camel}", "is only allowed for kind 'file'"))


def _check_metadata(metadata: dict[str, str] | None, errors: list[FieldError]) -> None:
    if not metadata:
        return
    if len(metadata) > MAX_METADATA_ENTRIES:
        errors.append(FieldError("metadata", f"must have at most {MAX_METADATA_ENTRIES} entries"))
    for key, value in metadata.items():
        if not _METADATA_KEY.fullmatch(key) or len(key) > MAX_METADATA_KEY_CHARS:
            errors.append(
                FieldError(
                    f"metadata.{key}",
                    f"keys must be 1 to {MAX_METADATA_KEY_CHARS} characters of A-Z a-z 0-9 _ . : -",
                )
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            errors.append(
                FieldError(
                    f"metadata.{key}", f"must be at most {MAX_METADATA_VALUE_CHARS} characters"
                )
            )


async def check_webhook_url(url: str | None, settings: Settings) -> FieldError | None:
    """Check the URL's form and that its host resolves to public addresses only."""
    if url is None:
        return None
    try:
        await resolve_target(
            url,
            allow_http=settings.webhook_allow_http,
            allow_private=settings.webhook_allow_private_targets,
        )
    except WebhookTargetError as err:
        return FieldError("webhookUrl", str(err))
    return None


async def validate_create(body: JobCreate, settings: Settings) -> ValidJob:
    """Check the request against the tool's entry; every problem is listed in ``details``."""
    tool = find_api_tool(body.tool_slug)
    assert tool.max_attempts is not None and tool.deadline_seconds is not None
    errors: list[FieldError] = []

    if body.input.kind not in tool.input_kinds:
        kinds = ", ".join(kind.value for kind in tool.input_kinds)
        errors.append(
            FieldError(
                "input.kind", f"'{body.input.kind}' is not accepted by {tool.slug}; use {kinds}"
            )
        )
    elif body.input.kind == InputKind.FILE.value:
        _check_file_input(tool, body, errors)
    else:
        _check_inline_input(tool, body, errors)

    options, option_errors = validate_options(tool, body.input.options)
    errors.extend(option_errors)

    max_attempts = body.max_attempts or tool.max_attempts.default
    if body.max_attempts is not None and not 1 <= body.max_attempts <= tool.max_attempts.max:
        errors.append(
            FieldError("maxAttempts", f"must be from 1 to {tool.max_attempts.max} for {tool.slug}")
        )
    bounds = tool.deadline_seconds
    deadline_seconds = body.deadline_seconds or bounds.default
    if body.deadline_seconds is not None and not bounds.min <= body.deadline_seconds <= bounds.max:
        errors.append(
            FieldError(
                "deadlineSeconds", f"must be from {bounds.min} to {bounds.max} for {tool.slug}"
            )
        )
    _check_metadata(body.metadata, errors)
    if webhook_error := await check_webhook_url(body.webhook_url, settings):
        errors.append(webhook_error)

    if errors:
        raise ApiError(
            "invalid_job",
            "The job request is invalid: " + "; ".join(f"{e.field} {e.message}" for e in errors),
            {"fields": [{"field": e.field, "message": e.message} for e in errors]},
        )
    assert options is not None or tool.options_model is None
    dumped = options.model_dump(mode="json", by_alias=True) if options is not None else {}
    return ValidJob(tool, dumped, max_attempts, deadline_seconds)
