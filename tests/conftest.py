"""Fixtures shared by unit and workflow tests: settings, database, store, time-skipping server."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.config import Environment, Settings
from app.db import accounts
from app.db.session import Database, create_schema
from app.storage.local import LocalBlobStore
from app.temporal import SEARCH_ATTRIBUTE_NAMES

VENV_BIN = Path(sys.executable).parent


def venv_tool(name: str) -> str:
    path = VENV_BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; run 'make test', which installs it")
    return found


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTE_NAMES
            },
        )
    )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worklane-data")


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    return Settings(environment=Environment.TEST, data_dir=data_dir, database_url="")


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.resolved_database_url)
    await create_schema(database.engine)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def store(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(settings.blob_dir)


@pytest.fixture(scope="session")
async def workspace_id(db: Database) -> str:
    async with db.session() as session:
        workspace = await accounts.create_workspace(session, "tests")
    return workspace.id


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=venv_tool("temporal-test-server"),
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()
    # Lets the SDK's bridge finish before the interpreter exits; exiting at once can abort it.
    await asyncio.sleep(0.1)
