"""Temporal client construction, shared by the API, the worker and the tests."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from app.config import Settings

SEARCH_ATTRIBUTE_NAMES = ("WorkspaceId", "ToolSlug", "JobStatus")


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )
