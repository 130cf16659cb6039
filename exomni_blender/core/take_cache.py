"""The dialogue take cache: one take folder per content key (`root/<key>/`), shared by `exomni batch`
and the add-on's Dialogue panel.

The key comes from the dialogue planner (backend/dialogue/plan.py `content_hash`): equal exactly
when the take would come out the same, so a rerun after a script edit makes only the edited lines
again. What is cached is the final take, delivery applied (`finish`), so a hit needs no more work.
An entry appears whole or not at all (written beside, then renamed into place); a damaged one is a
miss and is made again.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path

from .errors import ExOmniError
from .face import scale_intensity
from .take import TAKE_JSON, Take, TakeFormatError

KEY = re.compile(r"[0-9a-f]{8,64}")
_STALE_PART_SECONDS = 3600  # a staging folder this old was left by a crash, not by a writer at work


class CacheKeyError(ExOmniError, ValueError):
    """A cache key that is not a content hash; the planner and its caller disagree on the version."""


def finish(take: Take, *, fps: float | None = None, intensity: float = 1.0, meta: dict | None = None) -> Take:
    """The take as the dialogue uses it: at the scene's frame rate, its expression scaled by the
    delivery's intensity (blinks untouched), with the line's facts in its meta. In place; returns it."""
    if fps is not None and abs(take.fps - float(fps)) > 1e-6:
        take = take.resampled(float(fps))
    if abs(float(intensity) - 1.0) > 1e-6:
        take.weights = scale_intensity(take.weights, float(intensity))
    if meta:
        take.meta = {**take.meta, **meta}
    return take


class TakeCache:
    def __init__(self, root):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise CacheKeyError(f"{key!r} is not a take cache key (8 to 64 lowercase hex digits); "
                                "use the add-on and the backend of the same version")
        return self.root / key

    def get(self, key: str) -> Take | None:
        """The cached take, or None when there is none or it cannot be read (it is made again)."""
        folder = self.path(key)
        if not (folder / TAKE_JSON).is_file():
            return None
        try:
            return Take.load(folder)
        except (TakeFormatError, OSError, ValueError, KeyError):
            return None

    def has(self, key: str) -> bool:
        return (self.path(key) / TAKE_JSON).is_file()

    def put(self, key: str, take: Take) -> Path:
        """Store a final take under `key`, replacing what was there; returns its folder."""
        target = self.path(key)
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep()
        staging = self.root / f".{key}.{uuid.uuid4().hex[:8]}.part"
        try:
            take.save(staging)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def _sweep(self) -> None:
        now = time.time()
        for part in self.root.glob(".*.part"):
            try:
                if now - part.stat().st_mtime > _STALE_PART_SECONDS:
                    shutil.rmtree(part, ignore_errors=True)
            except OSError:
                pass
