"""NVIDIA Audio2Face blendshape JSON as an exchange format: an export and the WAV that goes with it.

The document itself (names mapped by name, never by position) is a2f_document.py's, which a take
folder's blendshapes.json shares. `trackPath` is the audio the curves were solved from; an export is
named after it (`bu.wav` -> `bu.wav_bsweight.json`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..a2f_document import a2f_bytes, a2f_document, is_a2f_document, map_named_weights, parse_a2f  # noqa: F401
from ..take import BLENDSHAPES_JSON, TAKE_JSON, Take, check_format_version
from .files import A2F_EXPORT_SUFFIX, paired_audio, read_json, wav_beside, write_with_audio
from .registry import Format, register_format


def read_a2f(path) -> tuple[float, np.ndarray]:
    """(fps, weights [frames, 52]) from an Audio2Face blendshape JSON written by any tool.

    Names are mapped by name, never by position: ARKit names in any order or case, a subset
    of them, or A2F's own pose names. Channels absent from the file stay at 0.
    """
    fps, weights, _ = _read(path)
    return fps, weights


def read_a2f_take(path, audio: bool = True, **_) -> Take:
    """A take from an Audio2Face export, with its own WAV (found by `trackPath` or the export's name).
    A take folder's blendshapes.json is refused when its take.json is of a newer take format."""
    path = Path(path)
    if path.name == BLENDSHAPES_JSON and (path.parent / TAKE_JSON).is_file():
        check_format_version(read_json(path.parent / TAKE_JSON), path.parent / TAKE_JSON)
    fps, weights, track_path = _read(path)
    samples, rate, record = (np.zeros(0, np.float32), 22050, {"file": "", "named": track_path})
    if audio:
        samples, rate, record = paired_audio(path, named=track_path)
    return Take(fps=fps, weights=weights, audio=samples, sample_rate=rate, text=_line_name(path), engine="import",
                meta={"a2f": {"file": path.name, "trackPath": track_path}, "audio": record})


def take_a2f_bytes(take: Take, track_path: str = "") -> bytes:
    """A take's curves as Audio2Face JSON (ARKit-52, canonical order), compact."""
    return a2f_bytes(take.weights, take.fps, track_path)


def write_a2f(take: Take, path, audio: bool = True, **_) -> list:
    """Write the take as `path` (.json) and, when it has sound and `audio`, the WAV beside it under
    the same name, named in `trackPath` so that Audio2Face and this reader pair them. Never writes an
    empty WAV. A path with no suffix gets a whole take folder. Returns the paths written."""
    path = Path(path)
    if not path.suffix:
        return [take.save(path)]
    wav = wav_beside(take, path, audio)
    return write_with_audio(take, {path: take_a2f_bytes(take, wav.name if wav else "")}, wav)


def is_a2f_json(path) -> bool:
    """A .json file holding an Audio2Face document (ExchangeFormatError when it is not JSON at all)."""
    p = Path(path)
    return p.is_file() and p.suffix.lower() == ".json" and is_a2f_document(read_json(p))


def _read(path) -> tuple[float, np.ndarray, str]:
    return parse_a2f(read_json(Path(path)), path)


def _line_name(path: Path) -> str:
    """The line's name: `bu.wav_bsweight.json` and `bu.json` are the line `bu`."""
    name = path.name
    if name.lower().endswith(A2F_EXPORT_SUFFIX):
        name = name[:-len(A2F_EXPORT_SUFFIX)]
    return Path(name).stem if Path(name).suffix.lower() in (".wav", ".json") else name


FORMAT = register_format(Format(
    name="a2f", label="Audio2Face blendshape JSON (facsNames, weightMat)", suffixes=(".json",), sniff=is_a2f_json,
    read=read_a2f_take, write=write_a2f, hint="an Audio2Face .json", writes_folders=True, priority=20))
