"""The take store: finished takes on disk, one folder per take id, written atomically.

A take is written into a hidden staging folder and renamed into place, so a reader never sees
half a take and a restart finds every finished one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON, Take

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TakeStore:
    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep_staging()

    def _sweep_staging(self) -> None:
        # Staging folders left by a crash hold no finished take.
        for p in self.root.glob(".staging-*"):
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
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return take_id

    def path(self, take_id: str) -> Path | None:
        """The take's folder, or None when there is no such take (ids are validated: no path tricks)."""
        if not _ID.match(take_id or ""):
            return None
        p = self.root / take_id
        return p if (p / TAKE_JSON).is_file() else None

    def file(self, take_id: str, name: str) -> Path | None:
        if name not in (TAKE_JSON, BLENDSHAPES_JSON, AUDIO_WAV):
            return None
        folder = self.path(take_id)
        return folder / name if folder and (folder / name).is_file() else None

    def info(self, take_id: str) -> dict | None:
        f = self.file(take_id, TAKE_JSON)
        if f is None:
            return None
        data = json.loads(f.read_text(encoding="utf-8"))
        data["take_id"] = take_id
        return data

    def load(self, take_id: str) -> Take | None:
        folder = self.path(take_id)
        return Take.load(folder) if folder else None

    def list(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / TAKE_JSON).is_file())
