"""Stopping an engine that runs in a process group of its own, with everything it started."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal

KILL_WAIT_SECONDS = 5.0
"""Time to wait for the group's leader to be reported dead after SIGKILL."""


def kill_group(pid: int) -> None:
    """Send SIGKILL to the process group that ``pid`` leads; a gone group is not an error.

    This is synchronous, so it also runs in a canceled task before the cancel propagates.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def stop_group(process: asyncio.subprocess.Process) -> None:
    """Kill the group that ``process`` leads and wait for ``process`` to exit."""
    kill_group(process.pid)
    with contextlib.suppress(TimeoutError, ProcessLookupError):
        await asyncio.wait_for(process.wait(), timeout=KILL_WAIT_SECONDS)


def dies_with_worker(command: list[str]) -> list[str]:
    """Prefix ``command`` so the kernel kills it when the worker process dies, even by SIGKILL.

    util-linux's ``setpriv --pdeathsig`` sets the signal and then runs the command; without
    ``setpriv`` the command runs as given.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "KILL", "--", *command]
