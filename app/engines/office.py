"""A pool of warm LibreOffice processes that convert Office documents to PDF.

Each pool slot runs ``office_bridge.py`` under the Python that has LibreOffice's UNO bindings.
The bridge starts ``soffice`` with the slot's own user profile and temporary folder, in a
process group that the bridge leads, so one ``killpg`` stops the bridge, the ``soffice``
wrapper and ``soffice.bin`` together. Where the worker may create network namespaces (root on
Linux), the group also runs in an empty one, so a document cannot reach any host.

A slot's process is killed and replaced when it crashes, when a conversion passes the time
limit or is canceled, and after a set number of conversions. The last is because a resident
LibreOffice keeps growing: one took 90 MB at start and 260 MB after 99 small DOCX, XLSX and
PPTX conversions (LibreOffice 7.4, 2-vCPU VM).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.engines.files import owned_prefix, remove_orphaned_folders
from app.engines.process_group import kill_group, stop_group
from app.errors import NON_RETRYABLE_CODES, InputError, JobErrorCode

logger = logging.getLogger(__name__)

BRIDGE_SCRIPT = Path(__file__).with_name("office_bridge.py")

_AVAILABILITY_CHECK_SECONDS = 20.0


@dataclass(frozen=True)
class OfficeSettings:
    soffice: str
    """LibreOffice's ``soffice`` launcher, as a path or a name on PATH."""
    python: str
    """Python interpreter that can import LibreOffice's ``uno`` module."""
    pool_size: int
    max_conversions: int
    """Conversions after which a process is replaced."""
    start_timeout_seconds: float
    conversion_timeout_seconds: float
    profile_root: Path
    """Folder for the slots' user profiles and temporary folders."""
    isolate_network: bool = True
    """Run LibreOffice in an empty network namespace when the system allows it."""


@dataclass(frozen=True)
class OfficeJob:
    """One conversion request; see ``office_bridge.py`` for how each field is applied."""

    source: Path
    target: Path
    kind: str
    """``writer``, ``calc`` or ``impress``: the kind of document the tool converts."""
    import_filter: str | None = None
    import_options: str | None = None
    page_range: str | None = None
    landscape: bool = False
    fit_to_width: bool = False
    single_page_sheets: bool = False
    pdf_a: bool = False
    max_pages: int | None = None

    def message(self) -> dict[str, Any]:
        # The source is not resolved: it may be a link whose path LibreOffice should show.
        return {
            "input": str(self.source.absolute()),
            "output": str(self.target.resolve()),
            "kind": self.kind,
            "importFilter": self.import_filter,
            "importOptions": self.import_options,
            "pageRange": self.page_range,
            "landscape": self.landscape,
            "fitToWidth": self.fit_to_width,
            "singlePageSheets": self.single_page_sheets,
            "pdfA": self.pdf_a,
            "maxPages": self.max_pages,
        }


@dataclass(frozen=True)
class OfficeResult:
    version: str
    kind: str
    seconds: float


class OfficeFailed(RuntimeError):
    """A conversion failed for a reason other than its input; a retry may succeed."""


@functools.lru_cache(maxsize=4)
def office_missing_reason(soffice: str, python: str) -> str | None:
    """Return why LibreOffice cannot run here, or None when it can.

    Runs the UNO import once per interpreter and caches the result.
    """
    if shutil.which(soffice) is None:
        return f"LibreOffice ({soffice}) is not installed"
    if shutil.which(python) is None:
        return f"the Python for LibreOffice's UNO bindings ({python}) is not installed"
    try:
        check = subprocess.run(
            [python, "-c", "import uno"],
            capture_output=True,
            timeout=_AVAILABILITY_CHECK_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{python} could not be run: {err}"
    if check.returncode != 0:
        return f"{python} cannot import LibreOffice's uno module (install python3-uno)"
    return None


@functools.lru_cache(maxsize=1)
def network_isolation_available() -> bool:
    """Check once whether this process may start a child in a new network namespace."""
    if shutil.which("unshare") is None:
        return False
    try:
        check = subprocess.run(
            ["unshare", "--net", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return check.returncode == 0


def _input_error_code(reply: dict[str, Any]) -> JobErrorCode | None:
    """Return the job error code of a reply that rejected the input, or None."""
    try:
        code = JobErrorCode(str(reply.get("code")))
    except ValueError:
        return None
    return code if code in NON_RETRYABLE_CODES else None


@dataclass
class OfficeProcess:
    """One running bridge and its LibreOffice, serving one conversion at a time."""

    process: asyncio.subprocess.Process
    version: str
    office_pid: int
    conversions: int = 0

    @classmethod
    async def start(cls, settings: OfficeSettings, slot_dir: Path) -> OfficeProcess:
        temp_dir = slot_dir / "tmp"
        shutil.rmtree(temp_dir, ignore_errors=True)
        temp_dir.mkdir(parents=True)
        command = [
            settings.python,
            str(BRIDGE_SCRIPT),
            "--soffice",
            settings.soffice,
            "--profile",
            str(slot_dir / "profile"),
            "--start-timeout",
            str(settings.start_timeout_seconds),
        ]
        if settings.isolate_network and network_isolation_available():
            command = ["unshare", "--net", "--", *command]
        environment = {**os.environ, "TMPDIR": str(temp_dir), "SAL_USE_VCLPLUGIN": "svp"}

        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        try:
            ready = await asyncio.wait_for(
                _read_message(process), timeout=settings.start_timeout_seconds + 5
            )
        except BaseException:
            await stop_group(process)
            raise
        if ready.get("event") != "ready":
            await stop_group(process)
            raise OfficeFailed(f"LibreOffice did not start: {ready.get('message', ready)}")
        logger.info(
            "LibreOffice started",
            extra={"bridge_pid": process.pid, "office_pid": ready["officePid"]},
        )
        return cls(process, str(ready["version"]), int(ready["officePid"]))

    async def convert(self, job: OfficeJob) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.conversions += 1
        self.process.stdin.write((json.dumps(job.message()) + "\n").encode())
        await self.process.stdin.drain()
        return await _read_message(self.process)

    async def stop(self) -> None:
        await stop_group(self.process)


async def _read_message(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            code = await process.wait()
            raise OfficeFailed(f"LibreOffice bridge exited with code {code}")
        try:
            message = json.loads(line)
        except ValueError:
            logger.warning("Ignored a line from the LibreOffice bridge: %r", line[:200])
            continue
        if isinstance(message, dict):
            return message


@dataclass
class _Slot:
    index: int
    folder: Path
    process: OfficeProcess | None = None
    replacing: asyncio.Task[None] | None = field(default=None, repr=False)


class OfficePool:
    """Warm LibreOffice processes, each with its own profile, shared by the activities."""

    def __init__(self, settings: OfficeSettings) -> None:
        self.settings = settings
        self._root: Path | None = None
        self._free: asyncio.Queue[_Slot] | None = None
        self._slots: list[_Slot] = []
        self._closed = False

    def _ensure_slots(self) -> asyncio.Queue[_Slot]:
        if self._free is not None:
            return self._free
        root = self.settings.profile_root
        root.mkdir(parents=True, exist_ok=True)
        remove_orphaned_folders(root)
        self._root = Path(tempfile.mkdtemp(prefix=owned_prefix(root, "pool"), dir=root))
        self._free = asyncio.Queue()
        for index in range(self.settings.pool_size):
            slot = _Slot(index, self._root / f"slot-{index}")
            self._slots.append(slot)
            self._free.put_nowait(slot)
        return self._free

    async def warm(self) -> None:
        """Start every slot's process, one at a time, so the first conversions find them warm."""
        free = self._ensure_slots()
        for _ in range(len(self._slots)):
            slot = await free.get()
            try:
                if slot.process is None:
                    slot.process = await OfficeProcess.start(self.settings, slot.folder)
            except (OfficeFailed, OSError) as err:
                logger.warning("LibreOffice warm-up failed: %s", err, extra={"slot": slot.index})
            finally:
                free.put_nowait(slot)

    async def convert(
        self, job: OfficeJob, on_started: Callable[[int], None] | None = None
    ) -> OfficeResult:
        """Convert ``job.source`` to ``job.target`` in a free slot's process.

        Raises InputError for a bad document, OfficeFailed when LibreOffice crashed, hung
        past the time limit or failed to start. On any failure or cancellation the slot's
        process is killed, so no PDF is written afterwards, and a new one is started.
        """
        if self._closed:
            raise OfficeFailed("The LibreOffice pool is shut down")
        free = self._ensure_slots()
        slot = await free.get()
        try:
            if slot.process is None or slot.process.process.returncode is not None:
                slot.process = await OfficeProcess.start(self.settings, slot.folder)
            office = slot.process
            if on_started is not None:
                on_started(office.process.pid)
            started = time.monotonic()
            reply = await self._convert_in(office, job)
        except BaseException:
            self._release(slot, healthy=False)
            raise
        # After a rejected input LibreOffice is fine; after any other failure it is replaced.
        self._release(slot, healthy=bool(reply.get("ok")) or _input_error_code(reply) is not None)
        return self._result_of(reply, office, time.monotonic() - started)

    async def _convert_in(self, office: OfficeProcess, job: OfficeJob) -> dict[str, Any]:
        timeout = self.settings.conversion_timeout_seconds
        try:
            return await asyncio.wait_for(office.convert(job), timeout=timeout)
        except TimeoutError as err:
            raise OfficeFailed(
                f"LibreOffice did not finish the conversion within {timeout:g} s"
            ) from err

    @staticmethod
    def _result_of(reply: dict[str, Any], office: OfficeProcess, seconds: float) -> OfficeResult:
        if reply.get("ok"):
            return OfficeResult(version=office.version, kind=str(reply["kind"]), seconds=seconds)
        code = _input_error_code(reply)
        if code is not None:
            raise InputError(code, str(reply.get("message")))
        if reply.get("trace"):
            logger.warning("LibreOffice bridge error: %s", reply["trace"])
        raise OfficeFailed(f"LibreOffice failed: {reply.get('message')}")

    def _release(self, slot: _Slot, healthy: bool) -> None:
        assert self._free is not None
        office = slot.process
        worn_out = office is not None and office.conversions >= self.settings.max_conversions
        if office is not None and healthy and not worn_out and not self._closed:
            self._free.put_nowait(slot)
            return
        # Kill at once, synchronously: this also runs when the conversion's task is canceled,
        # and LibreOffice must not write the PDF after that.
        if office is not None:
            kill_group(office.process.pid)
        slot.process = None
        if self._closed:
            return
        reason = "worn out" if healthy else "failed"
        logger.info("Replacing LibreOffice process (%s)", reason, extra={"slot": slot.index})
        slot.replacing = asyncio.get_running_loop().create_task(self._replace(slot, office))

    async def _replace(self, slot: _Slot, old: OfficeProcess | None) -> None:
        assert self._free is not None
        try:
            if old is not None:
                await old.stop()
            slot.process = await OfficeProcess.start(self.settings, slot.folder)
        except (OfficeFailed, OSError) as err:
            # The next conversion in this slot starts a process itself and reports the error.
            logger.warning("LibreOffice restart failed: %s", err, extra={"slot": slot.index})
        finally:
            slot.replacing = None
            self._free.put_nowait(slot)

    def process_ids(self) -> list[int]:
        """Return the process group ids of the running bridges."""
        return [slot.process.process.pid for slot in self._slots if slot.process is not None]

    async def close(self) -> None:
        """Stop every process and remove the profiles and temporary folders."""
        self._closed = True
        for slot in self._slots:
            if slot.replacing is not None:
                slot.replacing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot.replacing
            if slot.process is not None:
                await slot.process.stop()
                slot.process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
