"""Periodic heartbeats for long activities, carrying progress in their details."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from temporalio import activity


class Progress:
    """Heartbeat details of a running conversion: percent done and the engine's process id."""

    def __init__(self) -> None:
        self.percent = 0
        self.engine_pid: int | None = None

    def details(self) -> dict[str, Any]:
        return {"progress": self.percent, "enginePid": self.engine_pid}

    def beat(self) -> None:
        activity.heartbeat(self.details())


@contextlib.asynccontextmanager
async def heartbeating(progress: Progress, interval_seconds: float = 1.0) -> AsyncIterator[None]:
    """Heartbeat every ``interval_seconds`` while the block runs.

    Cancellation reaches an activity only through heartbeats, so a block that waits on an
    engine must run inside this.
    """

    async def _loop() -> None:
        # The first beat waits one interval: most conversions finish before it.
        while True:
            await asyncio.sleep(interval_seconds)
            progress.beat()

    task = asyncio.create_task(_loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
