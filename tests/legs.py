"""Run the test suite on SQLite, then again on PostgreSQL when a server is configured.

``make test`` runs this. Set WORKLANE_TEST_POSTGRES_URL to an SQLAlchemy URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432/test`` to add the PostgreSQL leg. Each run
creates its own database on that server and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from tests.conftest import POSTGRES_URL_VARIABLE, plain_postgres_url


async def _reachable(url: str) -> str | None:
    """Return None when the server accepts a connection, else the reason it did not."""
    try:
        connection = await asyncpg.connect(plain_postgres_url(url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        return str(err) or type(err).__name__
    await connection.close()
    return None


def _pytest(extra_env: dict[str, str], arguments: list[str]) -> int:
    env = dict(os.environ) | extra_env
    return subprocess.call([sys.executable, "-m", "pytest", *arguments], env=env)


def main() -> int:
    arguments = sys.argv[1:]
    print("== Test leg 1 of 2: SQLite", flush=True)
    sqlite_code = _pytest({POSTGRES_URL_VARIABLE: ""}, arguments)

    server = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if not server:
        print(
            f"== Test leg 2 of 2: PostgreSQL, skipped: set {POSTGRES_URL_VARIABLE}="
            "postgresql+asyncpg://USER@HOST:5432/DATABASE to run it",
            flush=True,
        )
        return sqlite_code
    problem = asyncio.run(_reachable(server))
    if problem is not None:
        print(
            f"== Test leg 2 of 2: PostgreSQL, skipped: {server} is unreachable ({problem}). "
            f"Start the server or correct {POSTGRES_URL_VARIABLE}.",
            flush=True,
        )
        return sqlite_code
    print(f"== Test leg 2 of 2: PostgreSQL at {server}", flush=True)
    postgres_code = _pytest({}, arguments)
    return sqlite_code or postgres_code


if __name__ == "__main__":
    sys.exit(main())
