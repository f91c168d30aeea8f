"""Alembic environment: runs migrations on the database of ``WORKLANE_DATABASE_URL``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app.db import models  # noqa: F401  (registers the tables)
from app.db.session import create_engine

# Any constant shared by every process that migrates: two processes starting at once wait
# for each other instead of both creating the same tables.
POSTGRES_MIGRATION_LOCK = 7_306_611


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({POSTGRES_MIGRATION_LOCK})"))
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


url = context.config.get_main_option("sqlalchemy.url")
if not url:
    from app.config import get_settings

    url = get_settings().resolved_database_url
asyncio.run(_run_async(url))
