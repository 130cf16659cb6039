"""The NVIDIA Audio2Face blendshape JSON document: its one parser and its one builder.

`{"exportFps", "trackPath", "numPoses", "numFrames", "facsNames", "weightMat"}`: one row of
`numPoses` weights per frame, columns named by `facsNames`. Audio2Face writes either ARKit-52 names
(in its own order) or its own 46-pose set (`jawDrop`, `lipCornerPullerL`, ...), so columns are
always mapped by name, never by position.

Two things are this document: a take folder's `blendshapes.json` (ARKit-52 in canonical order,
`trackPath` naming the WAV beside it; see take.py) and the `a2f` exchange format (exchange/a2f.py,
which adds the export naming and the WAV that goes with an export). Both build on this module, which
knows neither: the take does not import the exchange formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .arkit import A2F_POSES, ARKIT_52, INDEX
from .errors import TakeFormatError


def read_json(path, error=TakeFormatError):
    """The JSON document in a file (an object or a list), or `error` saying why not."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except UnicodeDecodeError:
        raise error(f"{path}: not a text JSON file") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); export it again") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply to be curves; export it again") from None
    if not isinstance(data, (dict, list)):
        raise error(f"{path}: expected a JSON object or list at the top")
    return data


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


def a2f_bytes(weights: np.ndarray, fps: float, track_path: str = "") -> bytes:
    """ARKit-52 curves (canonical order) as compact Audio2Face JSON."""
    return json.dumps(a2f_document(ARKIT_52, weights, fps, track_path), separators=(",", ":")).encode()


def is_a2f_document(data) -> bool:
    """Whether parsed JSON looks like an Audio2Face blendshape export (it may still be a broken one)."""
    return isinstance(data, dict) and ("facsNames" in data or "weightMat" in data)


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


def parse_a2f(data, path) -> tuple[float, np.ndarray, str]:
    """(fps, weights [frames, 52], trackPath) from a parsed Audio2Face document read from `path`."""
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


def read_a2f_file(path, error=TakeFormatError) -> tuple[float, np.ndarray, str]:
    """(fps, weights [frames, 52], trackPath) from an Audio2Face blendshape JSON file."""
    return parse_a2f(read_json(Path(path), error), path)
