"""Alembic migrations: an empty database upgrades to the newest revision, matching the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from app.db.migrate import upgrade_database
from app.db.session import Database


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_matches_models(db: Database, database_url: str) -> None:
    # The session fixture already upgraded this database; a second upgrade changes nothing.
    await upgrade_database(database_url)
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_revision) == "0004"
        assert await connection.run_sync(_differences) == []
