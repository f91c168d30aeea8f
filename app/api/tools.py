"""Routes of ``/v1/tools``: the tool catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ToolsReader
from app.api.errors import ApiError
from app.catalog import get_tool, list_tools

router = APIRouter(prefix="/v1/tools", tags=["tools"])


@router.get("")
async def get_tools(_principal: ToolsReader) -> dict[str, list[dict[str, Any]]]:
    """List every tool, including browser-only ones (``apiJobs: false``)."""
    return {"data": [tool.public() for tool in list_tools()]}


@router.get("/{slug}")
async def get_tool_entry(slug: str, _principal: ToolsReader) -> dict[str, Any]:
    """Return one tool's catalog entry."""
    tool = get_tool(slug)
    if tool is None:
        raise ApiError(
            "tool_not_found", f"No tool with slug '{slug}'. GET /v1/tools lists the tools."
        )
    return tool.public()
