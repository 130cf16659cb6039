"""Takes to and from the formats animators exchange: one module per format.

- `a2f`: NVIDIA Audio2Face blendshape JSON (also the curves of a take folder);
- `livelink`: Live Link Face CSV;
- `rhubarb`: Rhubarb Lip Sync JSON;
- `files`: what they share: the error, JSON reading, and finding the WAV that goes with a file.
This module tells them apart (`detect_format`) and reads any of them (`load_any`).

Pure Python + numpy (no bpy), so the add-on and the command line share it.
"""

from __future__ import annotations

from pathlib import Path

from ..take import BLENDSHAPES_JSON, TAKE_JSON, Take
from .a2f import a2f_document, map_named_weights, read_a2f, read_a2f_take, take_a2f_bytes, write_a2f
from .files import (A2F_EXPORT_SUFFIX, ExchangeFormatError, find_audio, load_wav, missing_audio_message, paired_audio,
                    read_json)
from .livelink import (LIVELINK_BLENDSHAPES, LIVELINK_HEADER, LIVELINK_ROTATIONS, format_timecode, infer_livelink_fps,
                       livelink_csv_text, livelink_name, parse_timecode, read_livelink_csv, timecode_seconds,
                       write_livelink_csv)
from .rhubarb import (PHONEME_SHAPES, RHUBARB_SHAPES, SHAPE_POSES, curves_from_cues, frame_shapes, kept_cues,
                      phoneme_shape, read_rhubarb_json, rhubarb_cue_list, rhubarb_cues, rhubarb_json,
                      write_rhubarb_json)
from ..face import lip_gap  # noqa: F401 (the lip gap the Rhubarb shapes are read with)

FORMATS = ("take", "a2f", "livelink", "rhubarb")


def detect_format(path) -> str:
    """Which of FORMATS a path holds: a take folder (or one of its files), an Audio2Face JSON, a
    Live Link Face CSV or a Rhubarb JSON."""
    p = Path(path)
    if not p.exists():
        raise ExchangeFormatError(f"nothing at {p}; give a take folder, an Audio2Face .json, a Live Link Face "
                                  f".csv or a Rhubarb .json")
    if p.is_dir():
        if (p / BLENDSHAPES_JSON).exists():
            return "take"
        raise ExchangeFormatError(f"{p} is not a take folder (no {BLENDSHAPES_JSON}); give the file in it instead")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return "livelink"
    if suffix == ".json":
        if p.name in (TAKE_JSON, BLENDSHAPES_JSON) and (p.parent / BLENDSHAPES_JSON).exists():
            return "take"
        data = read_json(p)
        if rhubarb_cue_list(data) is not None:
            return "rhubarb"
        if isinstance(data, dict) and ("facsNames" in data or "weightMat" in data):
            return "a2f"
        raise ExchangeFormatError(f"{p}: a JSON file that is neither Audio2Face blendshapes (facsNames, weightMat) "
                                  f"nor Rhubarb Lip Sync output (mouthCues)")
    raise ExchangeFormatError(f"{p.name}: unknown kind of file; give a take folder, an Audio2Face .json, a Live Link "
                              f"Face .csv or a Rhubarb .json")


def is_rhubarb_json(path) -> bool:
    """Whether a .json file is Rhubarb Lip Sync output (has mouth cues), without raising on bad JSON."""
    try:
        return rhubarb_cue_list(read_json(Path(path))) is not None
    except (OSError, ExchangeFormatError):
        return False


def load_any(path, livelink_fps: float | None = None, rhubarb_fps: float = 30.0) -> tuple[Take, str]:
    """(Take, format) from any of FORMATS, with the audio that goes with a file when there is some
    (`take.meta["audio"]` says which file, or that none was found)."""
    p = Path(path)
    kind = detect_format(p)
    if kind == "take":
        return Take.load(p if p.is_dir() else p.parent), kind
    if kind == "livelink":
        return read_livelink_csv(p, fps=livelink_fps), kind
    if kind == "rhubarb":
        return read_rhubarb_json(p, fps=rhubarb_fps), kind
    return read_a2f_take(p), kind
