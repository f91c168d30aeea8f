"""File writing shared by the engines."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


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
