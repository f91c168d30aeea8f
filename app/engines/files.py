"""File writing shared by the engines."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from app.engines.process_group import process_exists

logger = logging.getLogger(__name__)

# Names of job folders carry the process id of the worker that made them.
_OWNER = re.compile(r"-w(\d+)-")


def job_folder(work_dir: Path, job_id: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder for one attempt of a job, removed when the block ends.

    A worker killed mid-conversion cannot remove its folders; the next worker started on the
    machine does, with ``remove_orphaned_folders``.
    """
    return tempfile.TemporaryDirectory(dir=work_dir, prefix=f"{job_id}-w{os.getpid()}-")


def remove_orphaned_folders(work_dir: Path) -> int:
    """Remove job folders whose worker process is gone; return how many were removed."""
    removed = 0
    if not work_dir.is_dir():
        return removed
    for entry in work_dir.iterdir():
        owner = _OWNER.search(entry.name)
        if not entry.is_dir() or owner is None or process_exists(int(owner.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
        logger.info("Removed the folder of a stopped worker", extra={"folder": entry.name})
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
