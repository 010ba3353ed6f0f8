"""Atomic file writes: write to a temporary name in the same directory, then rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Mapping


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, then rename the result onto ``path`` (same directory).

    A failure or interruption leaves ``path`` as it was and removes the temporary file.
    The file gets the usual permissions (``0o666`` less the umask).
    """
    return atomic_write_all({Path(path): write})[0]


def atomic_write_all(writers: Mapping[Path, Callable[[str], None]]) -> list[Path]:
    """Write every file to a temporary name first; rename them all only if all succeeded.

    A failure while writing any of them leaves every target as it was.
    """
    temps = {}
    try:
        for path, write in writers.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            temps[path] = tmp
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    return list(temps)
