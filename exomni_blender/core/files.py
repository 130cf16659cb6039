"""Writing files so that a reader (or a crash) never meets half of one. Stdlib only: Blender's
Python and the backend both use it.

Files come out with the mode any other new file of the user's gets (0644 under umask 022): the temp
file is created with 0666 and the kernel applies the umask, as for open(). tempfile.mkstemp would
make it 0600, and the rename would keep that, so farm workers and other users could not read it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)


def _open_temp(path: Path) -> tuple[int, str]:
    """A new, empty temp file beside `path` (mode 0666 less the umask): (fd, its path)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            return os.open(tmp, _NEW_FILE, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not make a temp file beside {path}")


def _write_fd(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, flush it to disk, then rename it into place."""
    path = Path(path)
    fd, tmp = _open_temp(path)
    try:
        _write_fd(fd, data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_all(files: dict) -> None:
    """Write several files that belong together: every one is written to a temp file first, and
    only when all are on disk are they renamed into place, so a failure (disk full, a bad value)
    leaves the old set untouched rather than a mix of old and new files."""
    staged = []
    try:
        for path, data in files.items():
            path = Path(path)
            fd, tmp = _open_temp(path)
            staged.append((tmp, path))
            _write_fd(fd, data)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)
