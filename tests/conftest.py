"""Fixtures shared by unit and workflow tests: settings, database, store, time-skipping server."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
import pytest
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from app.config import Environment, Settings
from app.db import accounts
from app.db.migrate import upgrade_database
from app.db.session import Database
from app.devstack import free_port
from app.storage.local import LocalBlobStore
from app.temporal import register_search_attributes
from tests.s3server import S3Server

VENV_BIN = Path(sys.executable).parent
POSTGRES_URL_VARIABLE = "WORKLANE_TEST_POSTGRES_URL"


def plain_postgres_url(url: str) -> str:
    """The URL without SQLAlchemy's driver name, as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def venv_tool(name: str) -> str:
    path = VENV_BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; run 'make test', which installs it")
    return found


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worklane-data")


@pytest.fixture(scope="session")
async def database_url(data_dir: Path) -> AsyncIterator[str]:
    """SQLite in the session's data folder, or a new PostgreSQL database when
    WORKLANE_TEST_POSTGRES_URL names a server; the database is dropped afterwards."""
    server = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server:
        yield f"sqlite+aiosqlite:///{data_dir / 'worklane.db'}"
        return
    name = f"worklane_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(plain_postgres_url(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield with_database(server, name)
    admin = await asyncpg.connect(plain_postgres_url(server))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(environment=Environment.TEST, data_dir=data_dir, database_url=database_url)


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await upgrade_database(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def store(settings: Settings) -> LocalBlobStore:
    return LocalBlobStore(settings.blob_dir)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A local S3-compatible server on loopback with an empty bucket."""
    server = S3Server(
        port=free_port(), moto_port=free_port(), log_dir=tmp_path_factory.mktemp("s3-logs")
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def workspace_id(db: Database) -> str:
    async with db.session() as session:
        workspace = await accounts.create_workspace(session, "tests")
    return workspace.id


async def start_time_skipping_env() -> WorkflowEnvironment:
    """Start Temporal's time-skipping test server with the job search attributes."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=venv_tool("temporal-test-server"),
    )
    await register_search_attributes(env.client)
    return env


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()
    # Lets the SDK's bridge finish before the interpreter exits; exiting at once can abort it.
    await asyncio.sleep(0.1)


async def wait_for_engine_pid(handle: WorkflowHandle[Any, Any], timeout: float = 30) -> int:
    """Return the engine process id that the job's running conversion reports in heartbeats."""
    client = handle._client
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        description = await handle.describe()
        for pending in description.raw_description.pending_activities:
            if pending.heartbeat_details.payloads:
                details = await client.data_converter.decode(pending.heartbeat_details.payloads)
                pid = details[-1].get("enginePid") if details else None
                if pid:
                    return int(pid)
        await asyncio.sleep(0.05)
    pytest.fail("the conversion never reported its engine process")


def group_alive(pgid: int) -> bool:
    """Tell whether any process of the group ``pgid``, zombies left out, still runs."""
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != "zombie":
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False
