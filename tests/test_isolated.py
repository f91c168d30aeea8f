"""Tests for run_isolated, which runs engine functions in killable fork-server children.

The child targets are module-level functions in this module, because the child process
imports them by name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import psutil
import pytest
from PIL import Image

from app.engines.images import compress_image
from app.engines.isolated import EngineCrashed, modules_used_by, run_isolated, start_forkserver
from app.errors import InputError, JobErrorCode

# Child targets


def add(a: int, b: int, *, extra: int = 0) -> int:
    return a + b + extra


def current_pid() -> int:
    return os.getpid()


def raise_input_error(code: JobErrorCode, message: str) -> None:
    raise InputError(code, message)


def raise_value_error(message: str) -> None:
    raise ValueError(message)


class TwoArgumentError(Exception):
    """An exception that pickles but cannot be unpickled, because __init__ takes two arguments."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


def raise_unpicklable_error() -> None:
    raise TwoArgumentError("first", "second")


def return_lock() -> object:
    return threading.Lock()


def exit_immediately(code: int) -> None:
    os._exit(code)


def call_sys_exit(code: int) -> None:
    sys.exit(code)


def kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_for(seconds: float) -> None:
    time.sleep(seconds)


# Helpers


def report_in_steps(steps: int, report_progress: Callable[[float], None]) -> int:
    for step in range(1, steps + 1):
        time.sleep(0.3)
        report_progress(step / steps)
    return steps


def engine_children() -> list[psutil.Process]:
    """Return the engine processes: children of the fork server started by this process.

    Other session fixtures (the Temporal test server) also run as children of the test
    process, so only the fork server's descendants count.
    """
    engines: list[psutil.Process] = []
    for child in psutil.Process().children():
        try:
            command = " ".join(child.cmdline())
            if "from multiprocessing.forkserver import main" in command:
                engines.extend(child.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return engines


class BrokenProxy:
    """An object whose attribute access fails, like a lazy proxy that is not set up."""

    def __getattribute__(self, name: str) -> object:
        raise RuntimeError(f"proxy is not initialized, cannot read {name}")


def is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(autouse=True)
def no_engine_children_left() -> Iterator[None]:
    yield
    assert engine_children() == []


# Tests


async def test_run_isolated_returns_value() -> None:
    assert await run_isolated(add, 2, 3, extra=4) == 9


async def test_run_isolated_uses_child_process() -> None:
    pids: list[int] = []

    child_pid = await run_isolated(current_pid, on_started=pids.append)

    assert child_pid != os.getpid()
    assert pids == [child_pid]


async def test_run_isolated_concurrent_calls() -> None:
    results = await asyncio.gather(*(run_isolated(add, n, n) for n in range(6)))

    assert results == [0, 2, 4, 6, 8, 10]


async def test_run_isolated_reports_progress() -> None:
    seen: list[float] = []
    assert await run_isolated(report_in_steps, 4, on_progress=seen.append) == 4
    assert seen
    assert seen == sorted(seen)
    assert 0 < seen[0] < 1


async def test_run_isolated_reraises_input_error() -> None:
    with pytest.raises(InputError) as caught:
        await run_isolated(raise_input_error, JobErrorCode.INPUT_CORRUPT, "The PNG is damaged.")

    assert caught.value.code is JobErrorCode.INPUT_CORRUPT
    assert caught.value.message == "The PNG is damaged."
    notes = getattr(caught.value, "__notes__", [])
    assert any("raise_input_error" in note for note in notes)


async def test_run_isolated_reraises_value_error() -> None:
    with pytest.raises(ValueError, match="bad argument"):
        await run_isolated(raise_value_error, "bad argument")


async def test_run_isolated_unpicklable_exception() -> None:
    with pytest.raises(RuntimeError, match="TwoArgumentError: first and second"):
        await run_isolated(raise_unpicklable_error)


async def test_run_isolated_unpicklable_result() -> None:
    with pytest.raises(RuntimeError, match="could not be pickled"):
        await run_isolated(return_lock)


async def test_run_isolated_exit_is_crash() -> None:
    with pytest.raises(EngineCrashed) as caught:
        await run_isolated(exit_immediately, 3)

    assert caught.value.exitcode == 3
    assert "exited with code 3" in str(caught.value)


async def test_run_isolated_sys_exit_is_crash() -> None:
    with pytest.raises(EngineCrashed) as caught:
        await run_isolated(call_sys_exit, 5)

    assert caught.value.exitcode == 5


async def test_run_isolated_signal_is_crash() -> None:
    with pytest.raises(EngineCrashed) as caught:
        await run_isolated(kill_self)

    assert caught.value.exitcode == -signal.SIGKILL
    assert "killed by signal 9" in str(caught.value)


async def test_run_isolated_cancel_kills_child() -> None:
    started = asyncio.Event()
    pids: list[int] = []

    def record_start(pid: int) -> None:
        pids.append(pid)
        started.set()

    task = asyncio.create_task(run_isolated(sleep_for, 30.0, on_started=record_start))
    await asyncio.wait_for(started.wait(), timeout=10)
    pid = pids[0]
    assert psutil.pid_exists(pid)
    assert not is_gone(pid)

    cancel_time = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    while not is_gone(pid):
        assert time.monotonic() - cancel_time < 2.0, f"engine process {pid} still runs"
        await asyncio.sleep(0.02)


async def test_run_isolated_timeout_kills_child() -> None:
    pids: list[int] = []

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run_isolated(sleep_for, 30.0, on_started=pids.append), 0.5)

    assert len(pids) == 1
    assert is_gone(pids[0])


async def test_run_isolated_on_started_error_kills_child() -> None:
    pids: list[int] = []

    def fail_after_recording(pid: int) -> None:
        pids.append(pid)
        raise LookupError("job row not found")

    with pytest.raises(LookupError, match="job row not found"):
        await run_isolated(sleep_for, 30.0, on_started=fail_after_recording)

    assert is_gone(pids[0])


async def test_run_isolated_rejects_lambda() -> None:
    with pytest.raises(Exception, match="lambda"):
        await run_isolated(lambda: 1)


async def test_run_isolated_closes_descriptors() -> None:
    await start_forkserver()
    await run_isolated(add, 1, 1)
    before = psutil.Process().num_fds()

    await run_isolated(add, 1, 1)
    with pytest.raises(EngineCrashed):
        await run_isolated(exit_immediately, 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(run_isolated(sleep_for, 30.0), 0.3)

    assert psutil.Process().num_fds() == before


async def test_run_isolated_compress_image(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.new("RGBA", (80, 40), (0, 0, 0, 0)).save(src)
    dest = tmp_path / "out.jpg"

    result = await run_isolated(
        compress_image,
        src,
        dest,
        quality=80,
        max_width=40,
        max_height=None,
        max_pixels=1_000_000,
    )

    assert (result.width, result.height) == (40, 20)
    with Image.open(dest) as output:
        assert output.getpixel((10, 10)) == (255, 255, 255)


async def test_run_isolated_compress_input_error(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_text("not an image")

    with pytest.raises(InputError) as caught:
        await run_isolated(
            compress_image,
            src,
            tmp_path / "out.jpg",
            quality=80,
            max_width=None,
            max_height=None,
            max_pixels=1_000_000,
        )

    assert caught.value.code is JobErrorCode.INPUT_TYPE_MISMATCH


def test_modules_used_by_main_globals() -> None:
    own_function = lambda: None  # noqa: E731
    own_function.__module__ = "fake_main"
    module = ModuleType("fake_main")
    vars(module).update(
        {
            "os": os,
            "Path": Path,
            "logger": logging.getLogger("fake_main"),
            "run_isolated": run_isolated,
            "proxy": BrokenProxy(),
            "own_function": own_function,
            "unknown": type("Unknown", (), {"__module__": "not.loaded.anywhere"}),
        }
    )

    names = modules_used_by(module)

    assert "os" in names
    assert "pathlib" in names
    assert "logging" in names
    assert "app.engines.isolated" in names
    assert "fake_main" not in names
    assert "not.loaded.anywhere" not in names
    assert names == sorted(names)
