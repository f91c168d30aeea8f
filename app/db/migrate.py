"""Schema migrations with Alembic, run at start by the API, the worker and the command line."""

from __future__ import annotations

import asyncio
import fcntl
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; a password may contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_blocking(url: str) -> None:
    config = alembic_config(url)
    if not url.startswith("sqlite"):
        command.upgrade(config, "head")
        return
    # SQLite has no advisory lock; a lock file beside the database serializes processes.
    database = Path(url.split("///", 1)[1])
    database.parent.mkdir(parents=True, exist_ok=True)
    with (database.parent / f"{database.name}.migrate.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        command.upgrade(config, "head")


async def upgrade_database(url: str) -> None:
    """Bring the schema to the newest revision; a database already there is left unchanged."""
    # env.py runs its own event loop, so the upgrade runs in a thread.
    await asyncio.to_thread(_upgrade_blocking, url)
    logger.info("Database schema is at the newest revision")
