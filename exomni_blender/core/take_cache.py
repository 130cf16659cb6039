"""The dialogue take cache: one take folder per content key (`root/<key>/`), shared by `exomni batch`
and the add-on's Dialogue panel.

The key comes from the dialogue planner (backend/dialogue/plan.py `content_hash`): equal exactly
when the take would come out the same, so a rerun after a script edit makes only the edited lines
again. What is cached is the final take, delivery applied (`finish`), so a hit needs no more work.
An entry appears whole or not at all (written beside, then renamed into place); a damaged one is a
miss and is made again.

`TakeCache.get_or_make` is the one cache-or-make step of both: the cached take when there is one,
else the caller's `make()` (the engine in `exomni batch`, POST /v1/takes in the panel), finished and
stored with the same meta either way (`line_meta`: character, line, voice, seed, delivery, and the
key as "hash"), so a take made by one is a cached take to the other.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable

from .errors import ExOmniError
from .face import scale_intensity
from .take import TAKE_JSON, Take, TakeFormatError

KEY = re.compile(r"[0-9a-f]{8,64}")
_STALE_PART_SECONDS = 3600  # a staging folder this old was left by a crash, not by a writer at work


# The meta every dialogue take carries, from `exomni batch` and the panel alike (see line_meta).
META_KEYS = ("character", "line", "voice", "seed", "delivery", "hash")


class CacheKeyError(ExOmniError, ValueError):
    """A cache key that is not a content hash; the planner and its caller disagree on the version."""


def line_meta(*, character: str, line: int, voice: str | None, seed: int, delivery: dict) -> dict:
    """A dialogue take's meta: the character who speaks it, the line's number in the script (from 1),
    the voice and seed it was made with and its delivery (the planner's delivery JSON: mood,
    intensity, volume, ...). `TakeCache.get_or_make` adds the cache key as "hash"."""
    return {"character": str(character), "line": int(line), "voice": None if voice is None else str(voice),
            "seed": int(seed), "delivery": dict(delivery or {})}


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

    def get_or_make(self, key: str, make: Callable[[], Take], meta: dict, *, fps: float | None = None,
                    intensity: float = 1.0) -> tuple[Take, bool]:
        """(take, was_cached): the take cached under `key`, else `make()`'s take finished (`finish`:
        at `fps`, its expression scaled by `intensity`, `meta` and the key as "hash" in its meta) and
        stored under `key`, replacing a damaged entry. `meta` is `line_meta(...)`'s; a key it lacks
        is a ValueError before anything is made. Errors of `make` pass through; nothing is stored."""
        missing = [k for k in META_KEYS if k != "hash" and k not in meta]
        if missing:
            raise ValueError(f"a dialogue take's meta needs {', '.join(missing)}; build it with line_meta()")
        take = self.get(key)
        if take is not None:
            return take, True
        take = finish(make(), fps=fps, intensity=intensity, meta={**meta, "hash": key})
        self.put(key, take)
        return take, False

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
