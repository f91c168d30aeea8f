"""File writing shared by the engines."""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)

# Each worker process holds a lock on a file named after a random token, and names its job
# folders with that token. The lock ends with the process, however it ends, so a folder whose
# token's lock can be taken belongs to a dead worker. Process ids would not do: in containers
# a restarted worker often gets the same one.
_TOKEN = secrets.token_hex(6)
_LOCK_PREFIX = ".worker-"
_held_locks: dict[Path, int] = {}


def _hold_lock(work_dir: Path) -> None:
    if work_dir in _held_locks:
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(work_dir / f"{_LOCK_PREFIX}{_TOKEN}.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held_locks[work_dir] = descriptor


def owned_prefix(parent: Path, name: str) -> str:
    """Return a folder-name prefix in ``parent`` that marks this worker process as the owner.

    A worker killed mid-conversion cannot remove its folders; the next worker started on the
    machine does, with ``remove_orphaned_folders``.
    """
    _hold_lock(parent)
    return f"{name}-w{_TOKEN}-"


def job_folder(work_dir: Path, job_id: str) -> tempfile.TemporaryDirectory[str]:
    """Return a temporary folder for one attempt of a job, removed when the block ends."""
    return tempfile.TemporaryDirectory(dir=work_dir, prefix=owned_prefix(work_dir, job_id))


def _owner_is_gone(lock_path: Path) -> bool:
    descriptor = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)
    return True


def remove_orphaned_folders(work_dir: Path) -> int:
    """Remove the job folders of worker processes that are gone; return how many."""
    removed = 0
    if not work_dir.is_dir():
        return removed
    for lock_path in work_dir.glob(f"{_LOCK_PREFIX}*.lock"):
        token = lock_path.name.removeprefix(_LOCK_PREFIX).removesuffix(".lock")
        if token == _TOKEN or not _owner_is_gone(lock_path):
            continue
        for folder in work_dir.glob(f"*-w{token}-*"):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
            logger.info("Removed the folder of a stopped worker", extra={"folder": folder.name})
        lock_path.unlink(missing_ok=True)
    return removed


def write_atomically(dest: Path, write: Callable[[BinaryIO], object]) -> int:
    """Write through ``write`` to a temporary file in dest's folder, then rename it to dest.

    Returns the size of the written file in bytes. On failure the temporary file is removed
    and dest is left as it was, so a reader never sees a partial output.
    """
    descriptor, temporary_name = tempfile.mkstemp(
        dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial"
    )
    temporary_path = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
        size_bytes = temporary_path.stat().st_size
        temporary_path.replace(dest)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    return size_bytes
