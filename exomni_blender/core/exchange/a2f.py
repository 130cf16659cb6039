"""NVIDIA Audio2Face blendshape JSON: the one reader and the one writer.

`{"exportFps", "trackPath", "numPoses", "numFrames", "facsNames", "weightMat"}`: one row of
`numPoses` weights per frame, columns named by `facsNames`. Audio2Face writes either ARKit-52 names
(in its own order) or its own 46-pose set (`jawDrop`, `lipCornerPullerL`, ...), so columns are
always mapped by name, never by position. `trackPath` is the audio the curves were solved from;
an export is named after it (`bu.wav` -> `bu.wav_bsweight.json`). A take folder's
`blendshapes.json` is this format too, with ARKit-52 in canonical order and `trackPath` naming the
WAV beside it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..arkit import A2F_POSES, ARKIT_52, INDEX
from ..files import atomic_write_all
from ..take import Take, TakeFormatError, encode_wav
from .files import A2F_EXPORT_SUFFIX, paired_audio, read_json


def read_a2f(path) -> tuple[float, np.ndarray]:
    """(fps, weights [frames, 52]) from an Audio2Face blendshape JSON written by any tool.

    Names are mapped by name, never by position: ARKit names in any order or case, a subset
    of them, or A2F's own pose names. Channels absent from the file stay at 0.
    """
    fps, weights, _ = _read(path)
    return fps, weights


def read_a2f_take(path, audio: bool = True) -> Take:
    """A take from an Audio2Face export, with its own WAV (found by `trackPath` or the export's name)."""
    path = Path(path)
    fps, weights, track_path = _read(path)
    samples, rate, record = (np.zeros(0, np.float32), 22050, {"file": "", "named": track_path})
    if audio:
        samples, rate, record = paired_audio(path, named=track_path)
    return Take(fps=fps, weights=weights, audio=samples, sample_rate=rate, text=_line_name(path), engine="import",
                meta={"a2f": {"file": path.name, "trackPath": track_path}, "audio": record})


def a2f_document(names, matrix: np.ndarray, fps: float, track_path: str = "") -> dict:
    """The Audio2Face JSON for curves [frames, len(names)] named `names` (any rig's names)."""
    matrix = np.asarray(matrix)
    return {
        "exportFps": float(fps),
        "trackPath": track_path,
        "numPoses": len(names),
        "numFrames": int(matrix.shape[0]),
        "facsNames": list(names),
        "weightMat": np.round(matrix.astype(np.float64), 5).tolist(),
    }


def take_a2f_bytes(take: Take, track_path: str = "") -> bytes:
    """A take's curves as Audio2Face JSON (ARKit-52, canonical order), compact."""
    return json.dumps(a2f_document(ARKIT_52, take.weights, take.fps, track_path), separators=(",", ":")).encode()


def write_a2f(take: Take, path, audio: bool = True) -> list:
    """Write the take as `path` (.json) and, when it has sound and `audio`, the WAV beside it under
    the same name, named in `trackPath` so that Audio2Face and this reader pair them. Never writes an
    empty WAV. Returns the paths written."""
    path = Path(path)
    wav = path.with_suffix(".wav") if audio and take.has_audio else None
    files = {path: take_a2f_bytes(take, wav.name if wav else "")}
    if wav:
        files[wav] = encode_wav(take.audio, take.sample_rate)
    atomic_write_all(files)
    return list(files)


def map_named_weights(names, mat: np.ndarray, source: str = "input") -> np.ndarray:
    """Columns named by `names` into canonical ARKit-52 columns (unknown names are an error)."""
    out = np.zeros((mat.shape[0], len(ARKIT_52)), np.float32)
    lowered = {n.lower(): i for n, i in INDEX.items()}
    unknown = []
    for col, name in enumerate(names):
        if name.lower() in lowered:
            out[:, lowered[name.lower()]] = mat[:, col]
        elif name in A2F_POSES:
            for target, gain in A2F_POSES[name]:
                out[:, INDEX[target]] = np.maximum(out[:, INDEX[target]], gain * mat[:, col])
        else:
            unknown.append(name)
    if unknown and len(unknown) == len(names):
        raise TakeFormatError(f"{source}: none of its {len(names)} channel names are ARKit-52 or Audio2Face poses "
                              f"(first: {unknown[:3]}); retarget it to ARKit names first")
    return out


def _read(path) -> tuple[float, np.ndarray, str]:
    data = read_json(Path(path))
    if not isinstance(data, dict):
        raise TakeFormatError(f"{path}: expected a JSON object (an Audio2Face export), not a list")
    missing = [k for k in ("facsNames", "weightMat") if k not in data]
    if missing:
        raise TakeFormatError(f"{path}: not an Audio2Face blendshape JSON (missing {', '.join(missing)})")
    names = data["facsNames"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TakeFormatError(f"{path}: facsNames must be a list of channel names")
    try:
        mat = np.asarray(data["weightMat"], dtype=np.float32)
    except (TypeError, ValueError):
        raise TakeFormatError(f"{path}: weightMat must hold one row of {len(names)} numbers per frame") from None
    if mat.size == 0:
        mat = mat.reshape(0, len(names))
    if mat.ndim != 2 or mat.shape[1] != len(names):
        raise TakeFormatError(f"{path}: weightMat is {mat.shape}, expected [numFrames, {len(names)}] to match facsNames")
    try:
        fps = float(data.get("exportFps", 30.0))
    except (TypeError, ValueError):
        fps = float("nan")
    if not np.isfinite(fps) or fps <= 0:
        raise TakeFormatError(f"{path}: exportFps must be a positive frame rate, got {data.get('exportFps')!r}")
    track_path = data.get("trackPath")
    return fps, map_named_weights(names, mat, source=str(path)), track_path if isinstance(track_path, str) else ""


def _line_name(path: Path) -> str:
    """The line's name: `bu.wav_bsweight.json` and `bu.json` are the line `bu`."""
    name = path.name
    if name.lower().endswith(A2F_EXPORT_SUFFIX):
        name = name[:-len(A2F_EXPORT_SUFFIX)]
    return Path(name).stem if Path(name).suffix.lower() in (".wav", ".json") else name
