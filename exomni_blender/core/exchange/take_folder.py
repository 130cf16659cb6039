"""The take folder as an exchange format: audio.wav, blendshapes.json and take.json (see take.py).

Read from the folder or from one of its two JSON files; written as a whole folder. Its sound is its
own audio.wav, not a WAV found beside it.
"""

from __future__ import annotations

from pathlib import Path

from ..take import BLENDSHAPES_JSON, TAKE_JSON, Take
from .registry import Format, register_format


def is_take_folder(path) -> bool:
    """A take folder, or one of its JSON files (blendshapes.json, take.json) in one."""
    p = Path(path)
    if p.is_dir():
        return (p / BLENDSHAPES_JSON).is_file()
    return p.name in (TAKE_JSON, BLENDSHAPES_JSON) and (p.parent / BLENDSHAPES_JSON).is_file()


def read_take_folder(path, **_) -> Take:
    p = Path(path)
    return Take.load(p if p.is_dir() else p.parent)


def write_take_folder(take: Take, path, **_) -> list:
    return [take.save(path)]


FORMAT = register_format(Format(
    name="take", label="take folder (audio.wav, blendshapes.json, take.json)", suffixes=(),
    sniff=is_take_folder, read=read_take_folder, write=write_take_folder, hint="a take folder",
    writes_folders=True, paired_audio=False, priority=10))
