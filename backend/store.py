"""The take store: finished takes on disk, one folder per take id, written atomically.

A take is written into a hidden staging folder and renamed into place, so a reader never sees
half a take and a restart finds every finished one. Only plain folders with a valid id count as
takes: symlinks (a take's `audio.wav` pointing at /etc/passwd) and odd names are never served, and
a damaged take is reported on its own without breaking the list. Retention prunes the oldest takes
by count or bytes, never one that is being read.
"""

from __future__ import annotations

import bisect
import errno
import json
import os
import shutil
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from pathlib import Path

from exomni_blender.core import contract as C
from exomni_blender.core.request import RequestError
from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON, Take

_ID = C.TAKE_ID  # the one take-id pattern, shared with the add-on
TAKE_FILES = (TAKE_JSON, BLENDSHAPES_JSON, AUDIO_WAV)
REINDEX_EVERY = 500  # prunes between full rescans of the store (takes added or removed by hand)


def store_full(root, exc: OSError | None = None) -> RequestError:
    return RequestError(f"the take store is full: free space in {root} or set retention "
                        "(exomni serve --keep-takes N or --keep-bytes SIZE)", C.E_STORE_FULL)


def store_read_only(root) -> RequestError:
    return RequestError(f"the take store {root} cannot be written (read-only or not permitted); make it writable "
                        "or start the server with --store pointing at a writable folder", C.E_STORE_READ_ONLY)


def is_read_only(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class TakeStore:
    def __init__(self, root, sweep: bool = True):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._readers: dict[str, int] = {}  # take id -> downloads in progress (never pruned meanwhile)
        self._lock = threading.Lock()
        # Retention's index, built by the first prune and kept up to date after: (age key, id) oldest
        # first, each take's bytes, and their total, so a prune after each take reads no folder but the
        # new one. Rebuilt from the folders every REINDEX_EVERY prunes (takes added or removed by hand).
        self._order: list | None = None
        self._sizes: dict[str, int] = {}
        self._total = 0
        self._prunes = 0
        self._journal: list | None = None  # while a rescan runs: the index's changes, replayed onto its result
        if sweep:  # the server's own store sweeps; a worker writing beside it must not
            self.sweep()

    def sweep(self) -> None:
        """Remove what an interrupted put or delete left (call only while nothing writes)."""
        # Staging folders left by a crash hold no finished take.
        for p in [*self.root.glob(".staging-*"), *self.root.glob(".deleted-*")]:
            shutil.rmtree(p, ignore_errors=True)
        # A replaced take set aside by put(): gone once its successor is in place, else it comes back.
        for p in self.root.glob(".old-*"):
            target = self.root / p.name[len(".old-"):].rsplit("-", 1)[0]
            if target.exists():
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.replace(p, target)

    def new_id(self) -> str:
        return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]

    def put(self, take: Take, take_id: str | None = None) -> str:
        """Store a take under a new id, or under `take_id`, replacing the take already there."""
        take_id = take_id or self.new_id()
        if not _ID.match(take_id):
            raise ValueError(f"take id {take_id!r}: use letters, digits, '-' and '_' (at most 64)")
        staging = self.root / f".staging-{take_id}-{uuid.uuid4().hex[:6]}"
        target = self.root / take_id
        try:
            take.save(staging)
            # A folder cannot be renamed over a full one: the old take moves aside, and back on failure.
            old = self.root / f".old-{take_id}-{uuid.uuid4().hex[:6]}" if target.exists() else None
            if old is not None:
                os.replace(target, old)
            try:
                os.replace(staging, target)
            except BaseException:
                if old is not None:
                    os.replace(old, target)
                raise
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if is_disk_full(exc):
                raise store_full(self.root) from None
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return take_id

    def path(self, take_id: str) -> Path | None:
        """The take's folder, or None when there is no such take (ids are validated, symlinks refused)."""
        if not isinstance(take_id, str) or not _ID.match(take_id):
            return None
        p = self.root / take_id
        return p if not p.is_symlink() and p.is_dir() and _plain_file(p / TAKE_JSON) else None

    def file(self, take_id: str, name: str) -> Path | None:
        if name not in TAKE_FILES:
            return None
        folder = self.path(take_id)
        return folder / name if folder and _plain_file(folder / name) else None

    def info(self, take_id: str) -> dict | None:
        f = self.file(take_id, TAKE_JSON)
        if f is None:
            return None
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise RequestError(f"take {take_id} is damaged ({TAKE_JSON}: {str(exc)[:120]}); "
                               f"delete it (DELETE {C.take_path(take_id)}) and make it again",
                               C.E_TAKE_DAMAGED) from None
        data["take_id"] = take_id
        return data

    def load(self, take_id: str) -> Take | None:
        folder = self.path(take_id)
        return Take.load(folder) if folder else None

    def list(self) -> list[str]:
        """Take ids, oldest first by name (ids start with their time); anything odd is skipped."""
        out = []
        try:
            entries = list(os.scandir(self.root))
        except OSError:
            return []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not _ID.match(name) or entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False) and _plain_file(Path(entry.path) / TAKE_JSON):
                out.append(name)
        return sorted(out)

    def delete(self, take_id: str) -> bool:
        """Remove a take; False when there is none. Renamed aside first, so a reader never sees half."""
        folder = self.path(take_id)
        if folder is None:
            return False
        doomed = self.root / f".deleted-{take_id}-{uuid.uuid4().hex[:6]}"
        os.replace(folder, doomed)
        with self._lock:
            if self._order is not None:
                self._forget(take_id)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def size(self, take_id: str) -> int:
        folder = self.path(take_id)
        if folder is None:
            return 0
        return sum(f.stat().st_size for f in folder.iterdir() if _plain_file(f))

    def _age_key(self, take_id: str):
        try:
            return (self.root.joinpath(take_id, TAKE_JSON).stat().st_mtime_ns, take_id)
        except OSError:
            return (0, take_id)

    @contextmanager
    def reading(self, take_id: str):
        """While a take is being sent, retention leaves it alone."""
        with self._lock:
            self._readers[take_id] = self._readers.get(take_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._readers[take_id] - 1
                if left:
                    self._readers[take_id] = left
                else:
                    del self._readers[take_id]

    def added(self, take_id: str) -> None:
        """Tell retention's index about a take just written (by this process or the engine worker)."""
        with self._lock:
            if self._order is None or take_id in self._sizes:
                return
            key = self._age_key(take_id)
            size = self.size(take_id)
            if key[0] == 0:  # not there (any more)
                return
            self._insert(key, take_id, size)
            if self._journal is not None:
                self._journal.append((key, take_id, size))

    def _insert(self, key, take_id: str, size: int) -> None:
        entry = (key, take_id)
        if not self._order or entry >= self._order[-1]:
            self._order.append(entry)  # a new take is the newest: no search
        else:
            bisect.insort(self._order, entry)
        self._sizes[take_id] = size
        self._total += size

    def _forget(self, take_id: str) -> None:
        """Drop a take from retention's index (called with `_lock` held). The index is changed in place,
        not copied: the oldest take, the one pruning removes, leaves from the front at no cost."""
        if self._journal is not None:
            self._journal.append((None, take_id, 0))
        size = self._sizes.pop(take_id, None)
        if size is not None:
            self._total -= size
            if self._order and self._order[0][1] == take_id:
                self._order.popleft()  # the oldest: what pruning removes
            else:
                for i, entry in enumerate(self._order):
                    if entry[1] == take_id:
                        del self._order[i]
                        break

    def _reindex(self) -> None:
        """Rebuild the index from the folders (a second per 20,000 takes): takes added or removed by hand."""
        ids = self.list()
        order = deque(sorted((self._age_key(i), i) for i in ids))
        sizes = {i: self.size(i) for i in ids}
        with self._lock:
            self._order, self._sizes, self._total = order, sizes, sum(sizes.values())
            journal, self._journal = self._journal or [], None
            for key, take_id, size in journal:  # what happened while the folders were read
                if key is None:
                    self._forget(take_id)
                elif take_id not in self._sizes:
                    self._insert(key, take_id, size)

    def _reindex_in_background(self) -> None:
        """The periodic rescan, off the caller's thread: run in line after each take, it stalled the jobs
        thread a second in every REINDEX_EVERY takes of a 20,000-take store (0.78x the empty store's
        throughput). Changes to the index meanwhile are journaled and replayed onto the rescan."""
        with self._lock:
            if self._journal is not None:  # one rescan at a time
                return
            self._journal = []
        threading.Thread(target=self._reindex, name="exomni-store-rescan", daemon=True).start()

    def prune(self, keep_takes: int = 0, keep_bytes: int = 0, protect=()) -> list[str]:
        """Delete the oldest takes beyond `keep_takes` takes or `keep_bytes` bytes (0: no limit). `protect`
        (e.g. the take just made) is never deleted; takes in it that the index lacks are added to it."""
        if not keep_takes and not keep_bytes:
            return []
        self._prunes += 1
        if self._order is None:
            self._reindex()
        elif self._prunes % REINDEX_EVERY == 0:
            self._reindex_in_background()
        for take_id in protect:
            self.added(take_id)
        removed = []
        with self._lock:  # the oldest takes past the limits, read off the index's front (no copy of it)
            busy = set(self._readers) | set(protect)
            count, total, victims = len(self._order), self._total, []
            for _, take_id in self._order:  # oldest first
                if not ((keep_takes and count > keep_takes) or (keep_bytes and total > keep_bytes)):
                    break
                if take_id in busy:
                    continue
                victims.append(take_id)
                count, total = count - 1, total - self._sizes.get(take_id, 0)
        for take_id in victims:
            gone = self.delete(take_id)  # False: removed by hand meanwhile; the index forgets it either way
            with self._lock:
                self._forget(take_id)
            if gone:
                removed.append(take_id)
        return removed


def _plain_file(path: Path) -> bool:
    return not path.is_symlink() and path.is_file()
