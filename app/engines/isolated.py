"""Run a blocking function in a child process that is killed when the awaiting task is canceled.

Temporal cancels activities cooperatively, and a thread that runs Pillow cannot be stopped,
so engines run their work through ``run_isolated``. Children come from a fork server: a
clean single-threaded process that imports ``PRELOADED_MODULES`` once and forks a child
per call. Forking the worker itself would be unsafe because it runs threads, among them
Temporal's Rust core.

multiprocessing runs the parent's ``__main__`` module again in every child, unless it is
a package's ``__main__.py``. The fork server therefore also preloads the modules that
``__main__``'s globals come from, so that this rerun finds them already imported. With a
main script that imports the same modules as ``worker.py``, this cut the cost of a call
from 500 ms to 7 ms (2-vCPU Xeon VM, Python 3.11). Passing ``"__main__"`` to
``set_forkserver_preload`` does not help on Python 3.11, because the fork server never
receives the main script's path.

NOTE: The fork server must stay single-threaded, and it imports those modules of the
main program. A module that starts a thread at import time would make its forks unsafe.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import pickle
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from types import ModuleType
from typing import Any, TypeVar, cast

logger = logging.getLogger(__name__)

T = TypeVar("T")

PRELOADED_MODULES = [
    "app.engines.images",
    "app.engines.html",
    "app.engines.pdf",
    "app.engines.video",
    "app.engines.isolated",
]
"""Modules that the fork server imports once, so that each child starts with them loaded.

This module is included because the child's entry point lives here. Without it each
child imports asyncio, which raised the cost of a call from 4 ms to 20 ms (measured on a
2-vCPU Xeon VM with Python 3.11).
"""

_EXIT_TIMEOUT_SECONDS = 5.0
"""Time a child has to exit after it sent its result, before it is killed."""

_JOIN_TIMEOUT_SECONDS = 5.0
"""Time to wait for a child to be reported dead after SIGKILL."""

_PROGRESS_INTERVAL_SECONDS = 0.5

_context_lock = threading.Lock()
_context: ForkServerContext | None = None
_preloaded_modules: list[str] = []
_forkserver_ready = False


class EngineCrashed(RuntimeError):
    """Error raised when the child process exits without sending a result."""

    def __init__(self, pid: int | None, exitcode: int | None) -> None:
        if exitcode is not None and exitcode < 0:
            outcome = f"was killed by signal {-exitcode}"
        else:
            outcome = f"exited with code {exitcode}"
        super().__init__(f"Engine process {pid} {outcome} without returning a result")
        self.pid = pid
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[type[EngineCrashed], tuple[int | None, int | None]]:
        return (EngineCrashed, (self.pid, self.exitcode))


async def start_forkserver() -> None:
    """Start the fork server and wait until it has imported its preloaded modules.

    ``run_isolated`` calls this itself. A worker can call it at startup so that the
    first conversion does not wait for the fork server.
    """
    if not _forkserver_ready:
        await asyncio.to_thread(_start_forkserver_blocking)


class ProgressReporter:
    """Fraction of the work done, from 0 to 1, that a child sets and its parent reads.

    It is a double in shared memory, so reporting costs the child no system call.
    """

    def __init__(self, context: ForkServerContext) -> None:
        self._value = context.Value("d", 0.0, lock=False)

    def __call__(self, fraction: float) -> None:
        self._value.value = min(max(fraction, 0.0), 1.0)

    @property
    def fraction(self) -> float:
        return float(self._value.value)


async def run_isolated(
    func: Callable[..., T],
    /,
    *args: Any,
    on_started: Callable[[int], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    **kwargs: Any,
) -> T:
    """Run ``func(*args, **kwargs)`` in a child process and return its result.

    ``func``, the arguments and the result must be picklable, so ``func`` must be a
    module-level function. ``on_started`` is called with the child's pid once the child
    runs. With ``on_progress``, ``func`` also receives a ``report_progress`` keyword
    argument to call with the fraction done, and ``on_progress`` is called with that
    fraction about twice a second. An exception that ``func`` raises is raised again here,
    without the child's traceback object but with its text as a note. Raises EngineCrashed
    when the child exits without a result. If the awaiting task is canceled, the child is
    killed with SIGKILL before CancelledError propagates.
    """
    await start_forkserver()
    context = _get_context()
    result_reader, result_writer = context.Pipe(duplex=False)
    reporter = None
    if on_progress is not None:
        reporter = ProgressReporter(context)
        kwargs = {**kwargs, "report_progress": reporter}
    started = False
    watcher: asyncio.Task[None] | None = None
    try:
        process = context.Process(
            target=_run_in_child,
            args=(result_writer, func, args, kwargs),
            name=f"engine-{getattr(func, '__qualname__', 'function')}",
            daemon=True,
        )
        # With the fork server running, start() only sends the pickled call over a Unix
        # socket and reads back the pid. If the fork server has died, start() restarts it
        # and blocks the event loop until it has imported its preloaded modules.
        process.start()
        started = True
        result_writer.close()
        pid = _pid_of(process)
        logger.debug("Started engine process %d for %s", pid, process.name)
        if on_started is not None:
            on_started(pid)
        if on_progress is not None and reporter is not None:
            watcher = asyncio.create_task(_watch_progress(reporter, on_progress))

        payload = await _receive_payload(process, result_reader)
        await _wait_for_exit(process)
        if payload is None:
            raise EngineCrashed(pid, process.exitcode)
        return cast(T, _unpack_payload(payload, pid))
    except asyncio.CancelledError:
        if started:
            logger.info("Killing engine process %s because its task was canceled", process.pid)
        raise
    finally:
        if watcher is not None:
            watcher.cancel()
        if started:
            _reap(process)
        result_writer.close()
        result_reader.close()


async def _watch_progress(reporter: ProgressReporter, on_progress: Callable[[float], None]) -> None:
    last = -1.0
    while True:
        await asyncio.sleep(_PROGRESS_INTERVAL_SECONDS)
        if reporter.fraction != last:
            last = reporter.fraction
            on_progress(last)


def _get_context() -> ForkServerContext:
    global _context, _preloaded_modules
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            _preloaded_modules = _preload_list()
            # Only has an effect before the fork server starts, which happens lazily on the
            # first Process.start() with this context.
            context.set_forkserver_preload(_preloaded_modules)
            _context = context
        return _context


def _preload_list() -> list[str]:
    main_module = sys.modules.get("__main__")
    if main_module is None:
        return list(PRELOADED_MODULES)
    extra = [name for name in modules_used_by(main_module) if name not in PRELOADED_MODULES]
    return [*PRELOADED_MODULES, *extra]


def modules_used_by(module: ModuleType) -> list[str]:
    """Return the sorted names of the imported modules that ``module``'s globals come from.

    A global that is a module counts by its own name, and any other global by its
    ``__module__``. Only modules in ``sys.modules`` whose import spec has the same name
    are returned, because the fork server imports them by name and exits on any error
    other than ImportError. ``module`` itself is never returned.
    """
    names: set[str] = set()
    for global_name, value in list(vars(module).items()):
        if global_name.startswith("__"):
            # Module attributes such as __spec__ and __loader__ point at importlib.
            continue
        try:
            name = value.__name__ if isinstance(value, ModuleType) else value.__module__
        except Exception:
            # Objects without __module__, or proxies whose attribute access fails.
            continue
        if isinstance(name, str) and _is_importable_by_name(name):
            names.add(name)
    names.discard(module.__name__)
    names.difference_update({"__main__", "__mp_main__"})
    return sorted(names)


def _is_importable_by_name(name: str) -> bool:
    loaded = sys.modules.get(name)
    spec = getattr(loaded, "__spec__", None)
    return spec is not None and getattr(spec, "name", None) == name


def _start_forkserver_blocking() -> None:
    """Start a no-op child, which starts the fork server and waits until it forks."""
    global _forkserver_ready
    context = _get_context()
    with _context_lock:
        if _forkserver_ready:
            return
        process = context.Process(target=_do_nothing, name="engine-forkserver-check", daemon=True)
        process.start()
        process.join()
        process.close()
        _forkserver_ready = True
    logger.info("Started the engine fork server with preloaded modules %s", _preloaded_modules)


def _do_nothing() -> None:
    pass


def _pid_of(process: BaseProcess) -> int:
    pid = process.pid
    if pid is None:
        raise RuntimeError(f"Engine process {process.name} has no pid after start()")
    return pid


async def _receive_payload(process: BaseProcess, result_reader: Connection) -> bytes | None:
    """Wait until the child sends its result or exits, and return the pickled result.

    Returns None when the child exited or closed the pipe without sending a result.
    """
    await _wait_readable((result_reader.fileno(), process.sentinel))
    if not result_reader.poll():
        return None
    try:
        # The child writes the whole message at once, so this blocks only while the
        # bytes are copied. Results are expected to be small.
        return result_reader.recv_bytes()
    except (EOFError, OSError):
        return None


async def _wait_for_exit(process: BaseProcess) -> None:
    """Wait up to _EXIT_TIMEOUT_SECONDS for the child to exit. ``_reap`` kills it if it has not."""
    try:
        await asyncio.wait_for(_wait_readable((process.sentinel,)), _EXIT_TIMEOUT_SECONDS)
    except TimeoutError:
        logger.warning(
            "Engine process %s did not exit within %.0f s after it finished; killing it",
            process.pid,
            _EXIT_TIMEOUT_SECONDS,
        )


async def _wait_readable(descriptors: Sequence[int]) -> None:
    """Wait until any of the file descriptors is readable or at end of file."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def mark_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    for descriptor in descriptors:
        loop.add_reader(descriptor, mark_ready)
    try:
        await ready
    finally:
        for descriptor in descriptors:
            loop.remove_reader(descriptor)


def _unpack_payload(payload: bytes, pid: int) -> Any:
    try:
        succeeded, value, child_traceback = pickle.loads(payload)
    except Exception as exc:
        raise RuntimeError(f"The result of engine process {pid} could not be unpickled") from exc

    if succeeded:
        return value
    if child_traceback:
        value.add_note(f"Traceback in engine process {pid}:\n{child_traceback}")
    raise value


def _reap(process: BaseProcess) -> None:
    """Kill the child if it still runs, wait for its exit status and release its file descriptors.

    The fork server is the child's parent and reaps it, so no zombie remains once the
    exit status has been reported here.
    """
    if process.is_alive():
        process.kill()
    process.join(_JOIN_TIMEOUT_SECONDS)
    if process.exitcode is None:
        logger.error(
            "Engine process %s is still running %.0f s after SIGKILL, so its pipe stays open",
            process.pid,
            _JOIN_TIMEOUT_SECONDS,
        )
        return
    process.close()


def _run_in_child(
    result_writer: Connection,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Call ``func`` in the child process and send the pickled outcome to the parent.

    BaseExceptions that are not Exceptions, such as SystemExit, end the child without a
    result, so the parent raises EngineCrashed with the exit code.
    """
    try:
        result = func(*args, **kwargs)
    except Exception as exc:
        payload = _pickle_failure(exc, traceback.format_exc())
    else:
        try:
            payload = pickle.dumps((True, result, None))
        except Exception as exc:
            error = RuntimeError(
                f"The return value of {getattr(func, '__qualname__', func)!r} could not be "
                f"pickled: {exc}"
            )
            payload = _pickle_failure(error, traceback.format_exc())
    result_writer.send_bytes(payload)
    result_writer.close()


def _pickle_failure(exc: Exception, child_traceback: str) -> bytes:
    """Pickle the exception, or a RuntimeError describing it if it does not survive pickling."""
    try:
        payload = pickle.dumps((False, exc, child_traceback))
        # Exceptions whose __init__ takes other arguments than they pass to
        # Exception.__init__ pickle fine but fail to unpickle, so check both directions.
        pickle.loads(payload)
    except Exception as pickle_error:
        replacement = RuntimeError(
            f"{type(exc).__module__}.{type(exc).__qualname__}: {exc} "
            f"(the exception could not be sent to the parent process: {pickle_error})"
        )
        payload = pickle.dumps((False, replacement, child_traceback))
    return payload
