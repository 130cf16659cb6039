"""Rhubarb Lip Sync JSON, both ways.

`{"metadata": {"soundFile", "duration"}, "mouthCues": [{"start", "end", "value"}]}` (tools built on
Rhubarb also keep the bare list of cues), one of nine mouth shapes per cue (times in seconds, two
decimals):
  A  lips closed with slight pressure (p, b, m)     E  slightly rounded (AO "off", ER "bird")
  B  slightly open, teeth together (most consonants, F  puckered (UW "you", OW "show", W)
     EE "bee")                                       G  upper teeth on the lower lip (f, v)
  C  open (EH "men", AE "bat")                       H  tongue raised behind the teeth (long L)
  D  wide open (AA "father")                         X  rest, for pauses
A Rhubarb file read becomes one ARKit pose per shape (`SHAPE_POSES`) with short linear blends
between cues, and the take keeps the cues themselves: written back while its curves are still the
ones those cues make, they come out exactly as read. Otherwise a take's cues come from its phonemes
when it has them (`PHONEME_SHAPES`), else from its mouth curves frame by frame (`frame_shapes`).
"""

from __future__ import annotations

import json
import math
import unicodedata
from pathlib import Path

import numpy as np

from ..arkit import ARKIT_52, INDEX
from ..face import LIPS_TOUCH, jaw_parting, lip_gap
from ..files import atomic_write
from ..take import Take
from .files import ExchangeFormatError, check_duration, paired_audio, read_json, wav_beside, write_with_audio
from .registry import Format, register_format

RHUBARB_SHAPES = "ABCDEFGHX"

# One ARKit pose per Rhubarb shape (unnamed channels 0). X is the face at rest.
SHAPE_POSES = {
    "X": {},
    "A": {"jawOpen": 0.04, "mouthClose": 0.04, "mouthPressLeft": 0.35, "mouthPressRight": 0.35,
          "mouthRollLower": 0.1, "mouthRollUpper": 0.05},
    "B": {"jawOpen": 0.08, "mouthLowerDownLeft": 0.2, "mouthLowerDownRight": 0.2, "mouthUpperUpLeft": 0.15,
          "mouthUpperUpRight": 0.15, "mouthStretchLeft": 0.2, "mouthStretchRight": 0.2,
          "mouthSmileLeft": 0.08, "mouthSmileRight": 0.08},
    "C": {"jawOpen": 0.3, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3, "mouthUpperUpLeft": 0.15,
          "mouthUpperUpRight": 0.15, "mouthStretchLeft": 0.1, "mouthStretchRight": 0.1},
    "D": {"jawOpen": 0.6, "mouthLowerDownLeft": 0.45, "mouthLowerDownRight": 0.45, "mouthUpperUpLeft": 0.2,
          "mouthUpperUpRight": 0.2},
    "E": {"jawOpen": 0.3, "mouthFunnel": 0.45, "mouthPucker": 0.2, "mouthLowerDownLeft": 0.15,
          "mouthLowerDownRight": 0.15},
    "F": {"jawOpen": 0.1, "mouthPucker": 0.8, "mouthFunnel": 0.3},
    "G": {"jawOpen": 0.06, "mouthRollLower": 0.6, "mouthShrugLower": 0.15, "mouthUpperUpLeft": 0.2,
          "mouthUpperUpRight": 0.2},
    # ARKit has no tongue-tip-up shape: H is an open mouth between C and D.
    "H": {"jawOpen": 0.4, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3, "mouthUpperUpLeft": 0.1,
          "mouthUpperUpRight": 0.1},
}
KEPT_CUES_TOLERANCE = 0.08  # max curve difference at which a take still holds the cues it was read from
BLEND = 0.06  # seconds a Rhubarb cue takes to blend into the next (half before the boundary, half after)
MIN_PAUSE = 0.06  # a gap between phonemes at least this long is a pause (X)
MIN_CUE = 0.04  # shorter cues from curves are merged into a neighbour, unless they close the lips (A)
LONG_L = 0.08  # an L at least this long gets H, shorter ones C

# Per frame from the curves (`frame_shapes`): thresholds on the mouth channels.
# LIPS_TOUCH (the face helpers'): a lip gap at or below it is lips together (A, G or X)
SEALED = 0.1  # mouthClose or mouthPress at or above this on touching lips: a closure (A), else rest (X)
TUCKED = 0.3  # mouthRollLower at or above this: lower lip under the upper teeth (G)
ROUNDED = 0.35  # max(mouthPucker, mouthFunnel) at or above this: rounded lips (F when nearly closed, else E)
ROUNDED_OPEN = 0.2  # jaw opening at or above which rounded lips are E, not F
WIDE_OPEN, OPEN = 0.38, 0.18  # jaw opening (jawOpen - mouthClose) for D and for C; below C it is B

# Phonemes (IPA, as eSpeak NG and the take's timeline write them) -> shapes; see phoneme_shape.
PHONEME_SHAPES = {
    **dict.fromkeys("pbmɸβ", "A"),
    **dict.fromkeys("fvɱʋ", "G"),
    **dict.fromkeys("wʍɥ", "F"),
    **dict.fromkeys("ɹɻ", "E"),
    # vowels, by the first vowel of a diphthong
    **dict.fromkeys("iyɪʏɨ", "B"),
    **dict.fromkeys("eɛæəɘɐʌøœɤɯ", "C"),
    **dict.fromkeys("aɑäɶ", "D"),
    **dict.fromkeys("ɔɒɜɝɚɞ", "E"),
    **dict.fromkeys("ouʊʉɵ", "F"),
}
_LATERALS = set("lɫɭʎʟ")
_FAMILY = {**dict.fromkeys("BCDH", "open"), **dict.fromkeys("EF", "rounded"), **dict.fromkeys("AGX", "closed")}
_VOWELS = set("iyɪʏɨeɛæəɘɐʌøœɤɯaɑäɶɔɒɜɝɚɞouʊʉɵ")


def phoneme_shape(symbol: str, duration: float = 0.0) -> str:
    """The Rhubarb shape for one IPA phoneme: lip closures A, f/v G, w and rounded back vowels F,
    r-colouring and open-mid rounded vowels E, open vowels D, mid vowels C, close front vowels and
    every other consonant B, long L H (short L C), silence X."""
    base = "".join(c for c in unicodedata.normalize("NFD", symbol)
                   if not unicodedata.combining(c) and c not in "ˈˌːˑ_ ")
    if not base:
        return "X"
    if base[0] in _LATERALS:
        return "H" if duration >= LONG_L else "C"
    vowels = [c for c in base if c in _VOWELS]
    if vowels:
        # "əʊ" (British "show") and "oʊ" end rounded: F, like Rhubarb's OW.
        if vowels[0] in "əɐo" and base.endswith(("ʊ", "u")):
            return "F"
        return PHONEME_SHAPES[vowels[0]]
    return PHONEME_SHAPES.get(base[0], "B")


def frame_shapes(weights: np.ndarray) -> list:
    """One Rhubarb shape per frame from the mouth channels (thresholds above; H cannot be seen)."""
    w = np.asarray(weights, np.float64)
    gap = lip_gap(w)
    jaw = jaw_parting(w)
    seal = np.maximum(w[:, INDEX["mouthClose"]],
                      0.5 * (w[:, INDEX["mouthPressLeft"]] + w[:, INDEX["mouthPressRight"]]))
    tuck = w[:, INDEX["mouthRollLower"]]
    rounded = np.maximum(w[:, INDEX["mouthPucker"]], w[:, INDEX["mouthFunnel"]])
    touching = gap <= LIPS_TOUCH
    shapes = np.select(
        [touching & (tuck >= TUCKED), touching & (seal >= SEALED), touching,
         tuck >= TUCKED, (rounded >= ROUNDED) & (jaw < ROUNDED_OPEN), rounded >= ROUNDED,
         jaw >= WIDE_OPEN, jaw >= OPEN],
        ["G", "A", "X", "G", "F", "E", "D", "C"], default="B")
    return [str(s) for s in shapes]


def rhubarb_cues(take: Take, source: str = "auto") -> list:
    """The take's mouth as Rhubarb cues covering 0..duration: with `source` "auto", the cues it was
    read from (see `kept_cues`), else from its phonemes when it has some, else from its mouth curves;
    "phonemes" and "curves" choose."""
    if source not in ("auto", "phonemes", "curves"):
        raise ValueError(f"source must be auto, phonemes or curves, not {source!r}")
    duration = max(take.duration, take.frames / take.fps)
    if source == "phonemes" and not take.phonemes:
        raise ExchangeFormatError("the take has no phoneme timeline; derive the mouth from its curves instead")
    kept = kept_cues(take) if source == "auto" else None
    if kept is not None:  # read from Rhubarb and unchanged since: the cues as they were
        return [{"start": s, "end": e, "value": v} for s, e, v in kept]
    if take.phonemes and source != "curves":
        spans = _phoneme_spans(take.phonemes)
    else:
        spans = _curve_spans(take.weights, take.fps)
    return _finish_cues(spans, duration)


def rhubarb_json(take: Take, sound_file: str = "", source: str = "auto") -> dict:
    duration = max(take.duration, take.frames / take.fps)
    if source == "auto" and kept_cues(take) is not None:
        duration = float(take.meta["rhubarb"].get("duration") or duration)
    return {"metadata": {"soundFile": str(sound_file), "duration": round(duration, 2)},
            "mouthCues": rhubarb_cues(take, source)}


def write_rhubarb_json(take: Take, path, sound_file: str = "", source: str = "auto") -> Path:
    path = Path(path)
    atomic_write(path, json.dumps(rhubarb_json(take, sound_file, source), indent=2).encode("utf-8"))
    return path


def rhubarb_cue_list(data):
    """The mouth cues in a parsed Rhubarb document (its "mouthCues", or a bare list of cues), or
    None when it holds none."""
    if isinstance(data, dict):
        cues = data.get("mouthCues")
        return cues if isinstance(cues, list) else None
    if isinstance(data, list) and data and all(isinstance(c, dict) and "value" in c for c in data):
        return data
    return None


def read_rhubarb_json(path, fps: float = 30.0, audio: bool = True) -> Take:
    """A take from Rhubarb Lip Sync JSON: each cue's shape as an ARKit mouth pose, blended over
    `BLEND` seconds into the next; the WAV named by `soundFile` (or beside the file) as audio. The
    cues themselves are kept in `take.meta["rhubarb"]["cues"]`."""
    path = Path(path)
    if not (fps > 0 and math.isfinite(fps)):
        raise ExchangeFormatError(f"the frame rate must be positive, got {fps}")
    data = read_json(path)
    cues = rhubarb_cue_list(data)
    if cues is None:
        raise ExchangeFormatError(
            f"{path}: not a Rhubarb Lip Sync JSON (no \"mouthCues\" list); run rhubarb with --exportFormat json")
    parsed = [_parse_cue(path, i, cue) for i, cue in enumerate(cues)]
    meta = data.get("metadata") if isinstance(data, dict) and isinstance(data.get("metadata"), dict) else {}
    try:
        duration = float(meta.get("duration", 0.0) or 0.0)  # Rhubarb writes it as a string
    except (TypeError, ValueError):
        duration = 0.0
    duration = max([duration] + [e for _, e, _ in parsed])
    check_duration(path, duration)
    if duration <= 0:
        raise ExchangeFormatError(f"{path}: no mouth cues and no duration; nothing to animate")
    parsed.sort(key=lambda c: c[0])
    weights = curves_from_cues(parsed, duration, fps)
    samples, sample_rate, record = np.zeros(0, np.float32), 22050, {"file": ""}
    sound = str(meta.get("soundFile") or "")
    if audio:
        samples, sample_rate, record = paired_audio(path, named=sound)
    return Take(fps=fps, weights=weights, audio=samples, sample_rate=sample_rate, text=path.stem, engine="import",
                meta={"audio": record, "rhubarb": {"file": path.name, "soundFile": sound, "duration": duration,
                                                   "cues": [[s, e, v] for s, e, v in parsed]}})


def _parse_cue(path: Path, i: int, cue) -> tuple:
    if not isinstance(cue, dict) or not {"start", "end", "value"} <= set(cue):
        raise ExchangeFormatError(f"{path}: mouth cue {i} must be an object with start, end and value, got {cue!r}")
    try:
        start, end = float(cue["start"]), float(cue["end"])
    except (TypeError, ValueError):
        raise ExchangeFormatError(f"{path}: mouth cue {i} has start {cue['start']!r} and end {cue['end']!r}; "
                                  f"both must be seconds") from None
    value = str(cue["value"]).strip().upper()
    if value not in RHUBARB_SHAPES or len(value) != 1:
        raise ExchangeFormatError(f"{path}: mouth cue {i} has value {cue['value']!r}; Rhubarb's shapes are "
                                  f"A to H and X")
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        raise ExchangeFormatError(f"{path}: mouth cue {i} runs from {cue['start']!r} to {cue['end']!r}; "
                                  f"times must be seconds, start before end")
    return start, end, value


def kept_cues(take: Take) -> list | None:
    """The Rhubarb cues a take was read from, while its curves are still the ones they make (not
    retimed, scaled or edited since); None otherwise."""
    info = (take.meta or {}).get("rhubarb") or {}
    cues = info.get("cues")
    if not isinstance(cues, list) or not cues:
        return None
    try:
        cues = [(float(s), float(e), str(v)) for s, e, v in cues]
        duration = float(info.get("duration") or max(e for _, e, _ in cues))
    except (TypeError, ValueError):
        return None
    if any(v not in RHUBARB_SHAPES for _, _, v in cues):
        return None
    expected = curves_from_cues(sorted(cues), duration, take.fps)
    if abs(expected.shape[0] - take.frames) > 1:
        return None
    n = min(expected.shape[0], take.frames)
    # A resampled take differs a little at the blends; an edited one by more than that.
    if n == 0 or float(np.max(np.abs(expected[:n] - take.weights[:n]))) > KEPT_CUES_TOLERANCE:
        return None
    return cues


def curves_from_cues(cues, duration: float, fps: float) -> np.ndarray:
    """ARKit weights [frames, 52] at `fps` from (start, end, shape) cues: each pose held through its
    cue and blended linearly into the next around their boundary; no cue means rest."""
    frames = max(1, int(round(duration * fps)))
    times = np.arange(frames) / fps
    filled, t = [], 0.0
    for start, end, shape in cues:
        if start > t + 1e-6:
            filled.append((t, start, "X"))
        if end > max(start, t):  # a cue inside the one before it adds nothing
            filled.append((max(start, t), end, shape))
            t = end
    if t < duration:
        filled.append((t, duration, "X"))
    poses = {s: _pose(s) for s in RHUBARB_SHAPES}
    key_times, key_poses = [], []
    for i, (start, end, shape) in enumerate(filled):
        length = end - start
        before = min(BLEND / 2, length / 2, (filled[i - 1][1] - filled[i - 1][0]) / 2) if i else 0.0
        after = min(BLEND / 2, length / 2, (filled[i + 1][1] - filled[i + 1][0]) / 2) if i + 1 < len(filled) else 0.0
        key_times += [start + before, end - after]
        key_poses += [poses[shape], poses[shape]]
    key_times = np.asarray(key_times)
    key_poses = np.stack(key_poses)
    out = np.zeros((frames, len(ARKIT_52)), np.float32)
    for c in np.nonzero(key_poses.max(axis=0) > 0)[0]:
        out[:, c] = np.interp(times, key_times, key_poses[:, c])
    return out


def _pose(shape: str) -> np.ndarray:
    v = np.zeros(len(ARKIT_52), np.float64)
    for name, value in SHAPE_POSES[shape].items():
        v[INDEX[name]] = value
    return v


def _phoneme_spans(phonemes) -> list:
    spans = []
    for p in sorted(phonemes, key=lambda p: p.start):
        if p.end > p.start:
            spans.append((float(p.start), float(p.end), phoneme_shape(p.symbol, p.end - p.start)))
    # A short gap between two sounds is part of the speech: the earlier cue runs on through it.
    for i in range(len(spans) - 1):
        if 0 < spans[i + 1][0] - spans[i][1] < MIN_PAUSE:
            spans[i] = (spans[i][0], spans[i + 1][0], spans[i][2])
    return spans


def _curve_spans(weights: np.ndarray, fps: float) -> list:
    shapes = frame_shapes(weights)
    runs = []
    for f, s in enumerate(shapes):
        if runs and runs[-1][2] == s:
            runs[-1][1] = f + 1
        else:
            runs.append([f, f + 1, s])
    # Flicker is merged away, shortest run first, into a neighbour of the same family (open, rounded,
    # closed) when there is one, else the longer neighbour; a closure is what reads, so A stays.
    min_frames = MIN_CUE * fps
    while len(runs) > 1:
        short = [i for i, (a, b, s) in enumerate(runs) if b - a < min_frames and s != "A"]
        if not short:
            break
        i = min(short, key=lambda i: runs[i][1] - runs[i][0])
        a, b, s = runs.pop(i)
        neighbours = [r for r in (runs[i - 1] if i else None, runs[i] if i < len(runs) else None) if r is not None]
        into = max(neighbours, key=lambda r: (_FAMILY[r[2]] == _FAMILY[s], r[1] - r[0]))
        into[0], into[1] = min(into[0], a), max(into[1], b)
    merged = []
    for a, b, s in runs:
        if merged and merged[-1][2] == s:
            merged[-1][1] = b
        else:
            merged.append([a, b, s])
    return [(a / fps, b / fps, s) for a, b, s in merged]


def _finish_cues(spans, duration: float) -> list:
    """Spans -> Rhubarb cues: gaps as X, neighbours with one shape joined, times in centiseconds."""
    cues, t = [], 0.0
    for start, end, shape in spans:
        start, end = max(start, t), min(end, duration)
        if end <= start:
            continue
        if start > t:
            cues.append([t, start, "X"])
        cues.append([start, end, shape])
        t = end
    if t < duration:
        cues.append([t, duration, "X"])
    out = []
    for start, end, shape in cues:
        start, end = round(start, 2), round(end, 2)
        if out:
            start = out[-1]["end"]
        if end <= start:
            continue
        if out and out[-1]["value"] == shape:
            out[-1]["end"] = end
        else:
            out.append({"start": start, "end": end, "value": shape})
    return out


# -- the format, as the exchange registry offers it ---------------------------------------------------

def is_rhubarb_file(path) -> bool:
    """A .json file holding Rhubarb mouth cues (ExchangeFormatError when it is not JSON at all)."""
    p = Path(path)
    return p.is_file() and p.suffix.lower() == ".json" and rhubarb_cue_list(read_json(p)) is not None


def _read(path, fps: float | None = None, audio: bool = True, **_) -> Take:
    return read_rhubarb_json(path, fps=fps or 30.0, audio=audio)


def _write(take: Take, path, audio: bool = True, mouth_from: str = "auto", **_) -> list:
    path = Path(path)
    wav = wav_beside(take, path, audio)
    document = rhubarb_json(take, sound_file=wav.name if wav else "", source=mouth_from)
    return write_with_audio(take, {path: json.dumps(document, indent=2).encode("utf-8")}, wav)


def _write_notes(take: Take, opts: dict) -> list:
    if take.phonemes and opts.get("mouth_from", "auto") != "curves":
        return []
    return ["mouth shapes taken from the curves (no phoneme timeline): H (tongue up) cannot be seen in them"]


FORMAT = register_format(Format(
    name="rhubarb", label="Rhubarb Lip Sync JSON (mouthCues)", suffixes=(".json",), sniff=is_rhubarb_file,
    read=_read, write=_write, hint="a Rhubarb .json", priority=40, write_notes=_write_notes))
