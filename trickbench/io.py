"""Atomic file writes for every record, plan, checkpoint and report trickbench writes (plain Python: no torch,
no Lightning), and the one way a record states an error."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def _umask() -> int:
    """The process umask (Linux: read from /proc, so no thread ever sees a temporarily changed umask)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any], mode: int = 0o666) -> None:
    """`write(fh)` into a temp file in the same directory, fsync, rename over `path`: readers (and a
    resumed run after a crash) see the old or the new file, never half of one. The file gets `mode`
    minus the umask, as `open()` would give it (mkstemp's own 0600 would hide it from colleagues)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str, mode: int = 0o666) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()), mode)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """`obj` as indented, key-sorted JSON (the form of every record and plan file), written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def error_text(err: BaseException) -> str:
    """How a record states an error: `Type: message`, at most 2000 characters."""
    return f"{type(err).__name__}: {err}"[:2000]
