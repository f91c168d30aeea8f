"""Run the test suite on SQLite, then on PostgreSQL, then the end-to-end tests on S3.

``make test`` runs this. Set WORKLANE_TEST_POSTGRES_URL to an SQLAlchemy URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432/test`` to add the PostgreSQL leg. Each run
creates its own database on that server and drops it afterwards. The S3 leg runs the
end-to-end tests again with the S3 store against a local S3-compatible server that the tests
start on 127.0.0.1, on PostgreSQL when it is reachable.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from tests.conftest import POSTGRES_URL_VARIABLE, plain_postgres_url
from tests.e2e.conftest import STORAGE_VARIABLE

LEGS = 3


async def _reachable(url: str) -> str | None:
    """Return None when the server accepts a connection, else the reason it did not."""
    try:
        connection = await asyncpg.connect(plain_postgres_url(url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        return str(err) or type(err).__name__
    await connection.close()
    return None


def _pytest(extra_env: dict[str, str], arguments: list[str]) -> int:
    env = dict(os.environ) | {STORAGE_VARIABLE: "local"} | extra_env
    return subprocess.call([sys.executable, "-m", "pytest", *arguments], env=env)


def _postgres_server() -> str:
    """The PostgreSQL URL to test on, or "" after saying why that leg is skipped."""
    server = os.environ.get(POSTGRES_URL_VARIABLE, "")
    if not server:
        print(
            f"== Test leg 2 of {LEGS}: PostgreSQL, skipped: set {POSTGRES_URL_VARIABLE}="
            "postgresql+asyncpg://USER@HOST:5432/DATABASE to run it",
            flush=True,
        )
        return ""
    problem = asyncio.run(_reachable(server))
    if problem is not None:
        print(
            f"== Test leg 2 of {LEGS}: PostgreSQL, skipped: {server} is unreachable ({problem}). "
            f"Start the server or correct {POSTGRES_URL_VARIABLE}.",
            flush=True,
        )
        return ""
    return server


def main() -> int:
    arguments = sys.argv[1:]
    print(f"== Test leg 1 of {LEGS}: SQLite", flush=True)
    codes = [_pytest({POSTGRES_URL_VARIABLE: ""}, arguments)]

    server = _postgres_server()
    if server:
        print(f"== Test leg 2 of {LEGS}: PostgreSQL at {server}", flush=True)
        codes.append(_pytest({}, arguments))

    database = f"PostgreSQL at {server}" if server else "SQLite"
    print(f"== Test leg 3 of {LEGS}: end-to-end tests with the S3 store, on {database}", flush=True)
    s3_arguments = arguments or ["tests/e2e"]
    codes.append(_pytest({STORAGE_VARIABLE: "s3", POSTGRES_URL_VARIABLE: server}, s3_arguments))
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main())
