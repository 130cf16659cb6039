"""Takes to and from the other formats animators use: Live Link Face CSV and Rhubarb Lip Sync JSON.

Live Link Face CSV (Epic's iOS capture app): a header `Timecode,BlendShapeCount,` then the 52 ARKit
names in PascalCase in the app's order (`EyeBlinkLeft ... TongueOut`), then nine head and eye
rotations (`HeadYaw ... RightEyeRoll`); one row per captured frame. The timecode is
`HH:MM:SS:FF.fff`, where `FF.fff` is a (fractional) frame number at the recording's rate, which the
file does not state: it is inferred from the largest frame number seen (see `infer_livelink_fps`).
Rows may be missing (the app drops frames), so the curves are resampled onto a regular grid.

Rhubarb Lip Sync JSON: `{"metadata": {"soundFile", "duration"}, "mouthCues": [{"start", "end",
"value"}]}`, one of nine mouth shapes per cue (times in seconds, two decimals):
  A  lips closed with slight pressure (p, b, m)     E  slightly rounded (AO "off", ER "bird")
  B  slightly open, teeth together (most consonants, F  puckered (UW "you", OW "show", W)
     EE "bee")                                       G  upper teeth on the lower lip (f, v)
  C  open (EH "men", AE "bat")                       H  tongue raised behind the teeth (long L)
  D  wide open (AA "father")                         X  rest, for pauses
A take's cues come from its phonemes when it has them (`PHONEME_SHAPES` below), otherwise from its
mouth curves frame by frame (`frame_shapes`); a Rhubarb file read back becomes one ARKit pose per
shape (`SHAPE_POSES`) with short linear blends between cues.

Pure Python + numpy (no bpy), so the add-on and the command line share it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from pathlib import Path

import numpy as np

from .arkit import ARKIT_52, INDEX
from .files import atomic_write
from .take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON, Take, TakeFormatError, decode_wav, read_a2f


class ExchangeFormatError(TakeFormatError):
    """A Live Link Face CSV or Rhubarb JSON that cannot be read; the message says what is wrong and what to do."""


# -- Live Link Face CSV --------------------------------------------------------------------------

# The app's column order (Unreal's ARKit blend shape enum), not ARKit's alphabetical one.
LIVELINK_BLENDSHAPES = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut",
)
LIVELINK_ROTATIONS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                      "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
LIVELINK_HEADER = ("Timecode", "BlendShapeCount") + LIVELINK_BLENDSHAPES + LIVELINK_ROTATIONS
assert sorted(n.lower() for n in LIVELINK_BLENDSHAPES) == sorted(n.lower() for n in ARKIT_52)

# Rates a recording can have; without a change of second in the file only the app's own two (30, 60).
_COMMON_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 100.0, 120.0)
_APP_RATES = (30.0, 60.0, 120.0)
_TIMECODE = re.compile(r"^\s*(\d{1,2}):(\d{1,2}):(\d{1,2})[:;.](\d+(?:\.\d*)?)\s*$")


def livelink_name(arkit_name: str) -> str:
    """ARKit's camelCase channel name as Live Link Face writes it (PascalCase)."""
    return arkit_name[0].upper() + arkit_name[1:]


def parse_timecode(text: str) -> tuple[int, float]:
    """(whole seconds since midnight, fractional frame number) of `HH:MM:SS:FF.fff`; ValueError if not one."""
    m = _TIMECODE.match(text)
    if not m:
        raise ValueError(text)
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if mi > 59 or s > 59:
        raise ValueError(text)
    return h * 3600 + mi * 60 + s, float(m.group(4))


def format_timecode(seconds: float, fps: float) -> str:
    """`HH:MM:SS:FF.fff` for a time in seconds; FF.fff counts frames at `fps` within the second."""
    whole = int(math.floor(seconds + 1e-9))
    frame = round((seconds - whole) * fps, 3)
    if frame >= math.ceil(fps - 1e-9):  # rounding reached the next second
        whole, frame = whole + 1, 0.0
    frame = max(frame, 0.0)
    h, rest = divmod(whole, 3600)
    return f"{h % 24:02d}:{rest // 60:02d}:{rest % 60:02d}:{frame:06.3f}"


def infer_livelink_fps(whole_seconds: np.ndarray, frame_numbers: np.ndarray) -> float:
    """The recording's frame rate from its timecodes: frame numbers within a second run 0..fps-1.

    The largest frame number seen is a lower bound; the rate is the smallest usual rate above it.
    A file that never changes second (under a second long) can only tell 30 from 60, as Unreal's
    own importer does; pass the rate explicitly for anything else.
    """
    floor = int(math.floor(float(np.max(frame_numbers)))) + 1
    changes_second = bool(np.any(np.diff(whole_seconds) != 0))
    for rate in (_COMMON_RATES if changes_second else _APP_RATES):
        if rate >= floor:
            return rate
    return float(floor)


def read_livelink_csv(path, fps: float | None = None, audio: bool = True) -> Take:
    """A take from a Live Link Face CSV (and the WAV beside it, when there is one).

    Channels are matched by name in any case and order; missing ones stay at 0. The head and eye
    rotations (as the app wrote them) are kept, resampled like the curves, in
    `take.meta["livelink"]["rotations"]`; keying uses the blendshapes only. `fps` overrides the
    inferred recording rate.
    """
    path = Path(path)
    rows = _csv_rows(path)
    header = [c.strip() for c in rows[0]]
    if not header or header[0].lower() != "timecode":
        raise ExchangeFormatError(
            f"{path}: not a Live Link Face CSV: its first column is {header[0] if header else ''!r}, expected "
            f"'Timecode' (the header is Timecode,BlendShapeCount,EyeBlinkLeft,...); export the take from the "
            f"app again, or convert other CSVs to that layout")
    if len(rows) < 2:
        raise ExchangeFormatError(f"{path}: the header has no frames under it; the recording is empty")
    lowered = {n.lower(): i for n, i in INDEX.items()}
    rotations = {n.lower(): n for n in LIVELINK_ROTATIONS}
    channel_cols, rotation_cols, ignored = {}, {}, []
    for col, name in enumerate(header[1:], start=1):
        key = name.lower()
        if key in lowered:
            channel_cols[col] = lowered[key]
        elif key in rotations:
            rotation_cols[col] = rotations[key]
        elif key not in ("blendshapecount", ""):
            ignored.append(name)
    if not channel_cols:
        raise ExchangeFormatError(
            f"{path}: none of its columns is an ARKit blendshape (expected names such as EyeBlinkLeft, JawOpen; "
            f"found {header[1:4]}); retarget the curves to ARKit names first")

    timecodes, values = [], np.zeros((len(rows) - 1, len(header)), np.float64)
    for r, row in enumerate(rows[1:]):
        line = r + 2
        while len(row) > len(header) and not row[-1].strip():  # a trailing comma
            row = row[:-1]
        if len(row) != len(header):
            raise ExchangeFormatError(
                f"{path}, line {line}: {len(row)} values where the header has {len(header)} columns; the file "
                f"may be cut short or edited by hand: export it again from the app")
        timecodes.append(row[0].strip())
        for col in list(channel_cols) + list(rotation_cols):
            try:
                values[r, col] = float(row[col])
            except ValueError:
                raise ExchangeFormatError(f"{path}, line {line}: {header[col]} is {row[col]!r}, not a number; "
                                          f"fix or delete that row") from None
            if not math.isfinite(values[r, col]):
                raise ExchangeFormatError(f"{path}, line {line}: {header[col]} is {row[col]!r}; "
                                          f"fix or delete that row")

    times, rate, rate_from = _livelink_times(path, timecodes, fps)
    keep = np.concatenate([[True], np.diff(times) > 1e-9])  # a repeated timecode: keep its first row
    times, values = times[keep], values[keep]
    frames = int(round(times[-1] * rate)) + 1
    grid = np.arange(frames) / rate
    weights = np.zeros((frames, len(ARKIT_52)), np.float32)
    for col, channel in channel_cols.items():
        weights[:, channel] = np.interp(grid, times, values[:, col])
    rotation_curves = {name: np.round(np.interp(grid, times, values[:, col]), 6).tolist()
                       for col, name in rotation_cols.items()}
    missing = [livelink_name(n) for n in ARKIT_52 if INDEX[n] not in channel_cols.values()]
    samples, sample_rate = (np.zeros(0, np.float32), 22050)
    if audio:
        wav = wav_beside(path)
        if wav is not None:
            samples, sample_rate = load_wav(wav)
    meta = {"livelink": {
        "file": path.name, "start_timecode": timecodes[0], "fps": rate, "fps_from": rate_from, "rows": len(timecodes),
        "rotations": rotation_curves, "missing_channels": missing, "ignored_columns": ignored}}
    return Take(fps=rate, weights=weights, audio=samples, sample_rate=sample_rate, text=path.stem,
                engine="import", meta=meta)


def livelink_csv_text(take: Take, start_timecode: str = "") -> str:
    """A take as a Live Link Face CSV, the app's exact header and column order.

    Head and eye rotation columns are 0, unless the take came from a Live Link Face CSV with the
    same frame count (then they are written back as read).
    """
    start = 0.0
    if start_timecode:
        whole, frame = parse_timecode(start_timecode)
        start = whole + frame / take.fps
    rotations = ((take.meta or {}).get("livelink") or {}).get("rotations") or {}
    rot = np.zeros((take.frames, len(LIVELINK_ROTATIONS)))
    for i, name in enumerate(LIVELINK_ROTATIONS):
        curve = rotations.get(name)
        if isinstance(curve, list) and len(curve) == take.frames:
            rot[:, i] = curve
    order = [INDEX[n[0].lower() + n[1:]] for n in LIVELINK_BLENDSHAPES]
    shapes = take.weights[:, order].astype(np.float64)
    out = io.StringIO()
    out.write(",".join(LIVELINK_HEADER) + "\n")
    count = str(len(LIVELINK_BLENDSHAPES) + len(LIVELINK_ROTATIONS))
    for f in range(take.frames):
        cells = [format_timecode(start + f / take.fps, take.fps), count]
        cells += [f"{v:.8f}" for v in shapes[f]]
        cells += [f"{v:.6f}" for v in rot[f]]
        out.write(",".join(cells) + "\n")
    return out.getvalue()


def write_livelink_csv(take: Take, path, start_timecode: str = "") -> Path:
    path = Path(path)
    atomic_write(path, livelink_csv_text(take, start_timecode).encode("utf-8"))
    return path


def _csv_rows(path: Path) -> list:
    data = Path(path).read_bytes()
    if b"\x00" in data[:4096]:
        raise ExchangeFormatError(f"{path}: a binary file, not a CSV; pick the .csv the Live Link Face app exported")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # names and numbers are ASCII; only stray bytes would differ
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    except csv.Error as exc:
        raise ExchangeFormatError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise ExchangeFormatError(f"{path}: the file is empty; export the take from the Live Link Face app again")
    return rows


def _livelink_times(path: Path, timecodes: list, fps: float | None) -> tuple[np.ndarray, float, str]:
    """Seconds from the first row for each row, the frame rate, and where the rate came from."""
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ExchangeFormatError(f"the frame rate must be positive, got {fps}")
    if all(re.fullmatch(r"\d+(\.\d*)?", tc) for tc in timecodes):
        # Some tools write plain frame numbers instead of a timecode; they carry no rate.
        numbers = np.array([float(tc) for tc in timecodes])
        rate = float(fps) if fps else 30.0
        times, source = (numbers - numbers[0]) / rate, ("option" if fps else "default (frame numbers carry no rate)")
    else:
        whole, frame = np.zeros(len(timecodes)), np.zeros(len(timecodes))
        for i, tc in enumerate(timecodes):
            try:
                whole[i], frame[i] = parse_timecode(tc)
            except ValueError:
                raise ExchangeFormatError(
                    f"{path}, line {i + 2}: timecode {tc!r} is not HH:MM:SS:FF or HH:MM:SS:FF.fff; fix or delete "
                    f"that row") from None
        rate, source = (float(fps), "option") if fps else (infer_livelink_fps(whole, frame), "timecode")
        times = whole + frame / rate
        wrapped = np.concatenate([[0.0], np.cumsum(np.diff(times) < -43200.0)])  # past midnight
        times = times + 86400.0 * wrapped - times[0]
    back = np.nonzero(np.diff(times) < -1e-9)[0]
    if back.size:
        i = int(back[0]) + 1
        raise ExchangeFormatError(
            f"{path}, line {i + 2}: timecode {timecodes[i]!r} comes before the row above it ({timecodes[i - 1]!r}); "
            f"the rows must be in recording order")
    return times, rate, source


# -- Rhubarb Lip Sync JSON -----------------------------------------------------------------------

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
BLEND = 0.06  # seconds a Rhubarb cue takes to blend into the next (half before the boundary, half after)
MIN_PAUSE = 0.06  # a gap between phonemes at least this long is a pause (X)
MIN_CUE = 0.04  # shorter cues from curves are merged into a neighbour, unless they close the lips (A)
LONG_L = 0.08  # an L at least this long gets H, shorter ones C

# Per frame from the curves (`frame_shapes`): thresholds on the mouth channels.
LIPS_TOUCH = 0.05  # lip gap at or below this: lips together (A, G or X)
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


def lip_gap(weights: np.ndarray) -> np.ndarray:
    """How far apart the lips are per frame (0 = touching), from ARKit weights [frames, 52]."""
    w = np.asarray(weights, np.float64)
    jaw = np.clip(w[:, INDEX["jawOpen"]] - w[:, INDEX["mouthClose"]], 0.0, None)
    lower = 0.5 * (w[:, INDEX["mouthLowerDownLeft"]] + w[:, INDEX["mouthLowerDownRight"]])
    upper = 0.5 * (w[:, INDEX["mouthUpperUpLeft"]] + w[:, INDEX["mouthUpperUpRight"]])
    tucked = np.clip(w[:, INDEX["mouthRollLower"]] / 0.5, 0.0, 1.0)  # a lower lip under the teeth closes the gap
    return (jaw + 0.5 * lower + 0.5 * upper + 0.3 * w[:, INDEX["mouthFunnel"]]) * (1.0 - 0.8 * tucked)


def frame_shapes(weights: np.ndarray) -> list:
    """One Rhubarb shape per frame from the mouth channels (thresholds above; H cannot be seen)."""
    w = np.asarray(weights, np.float64)
    gap = lip_gap(w)
    jaw = np.clip(w[:, INDEX["jawOpen"]] - w[:, INDEX["mouthClose"]], 0.0, None)
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
    """The take's mouth as Rhubarb cues covering 0..duration: from its phonemes (`source`
    "phonemes", or "auto" when it has some) or from its mouth curves ("curves")."""
    if source not in ("auto", "phonemes", "curves"):
        raise ValueError(f"source must be auto, phonemes or curves, not {source!r}")
    duration = max(take.duration, take.frames / take.fps)
    if source == "phonemes" and not take.phonemes:
        raise ExchangeFormatError("the take has no phoneme timeline; derive the mouth from its curves instead")
    if take.phonemes and source != "curves":
        spans = _phoneme_spans(take.phonemes)
    else:
        spans = _curve_spans(take.weights, take.fps)
    return _finish_cues(spans, duration)


def rhubarb_json(take: Take, sound_file: str = "", source: str = "auto") -> dict:
    duration = max(take.duration, take.frames / take.fps)
    return {"metadata": {"soundFile": str(sound_file), "duration": round(duration, 2)},
            "mouthCues": rhubarb_cues(take, source)}


def write_rhubarb_json(take: Take, path, sound_file: str = "", source: str = "auto") -> Path:
    path = Path(path)
    atomic_write(path, json.dumps(rhubarb_json(take, sound_file, source), indent=2).encode("utf-8"))
    return path


def is_rhubarb_json(path) -> bool:
    """Whether a .json file is Rhubarb Lip Sync output (has mouthCues), without raising on bad JSON."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "mouthCues" in data


def read_rhubarb_json(path, fps: float = 30.0, audio: bool = True) -> Take:
    """A take from Rhubarb Lip Sync JSON: each cue's shape as an ARKit mouth pose, blended over
    `BLEND` seconds into the next; the WAV named by `soundFile` (or beside the file) as audio."""
    path = Path(path)
    if not (fps > 0 and math.isfinite(fps)):
        raise ExchangeFormatError(f"the frame rate must be positive, got {fps}")
    data = _json_object(path)
    cues = data.get("mouthCues")
    if not isinstance(cues, list):
        raise ExchangeFormatError(
            f"{path}: not a Rhubarb Lip Sync JSON (no \"mouthCues\" list); run rhubarb with --exportFormat json")
    parsed = []
    for i, cue in enumerate(cues):
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
        parsed.append((start, end, value))
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    try:
        duration = float(meta.get("duration", 0.0) or 0.0)
    except (TypeError, ValueError):
        duration = 0.0
    duration = max([duration] + [e for _, e, _ in parsed])
    if duration <= 0:
        raise ExchangeFormatError(f"{path}: no mouth cues and no duration; nothing to animate")
    parsed.sort(key=lambda c: c[0])
    weights = curves_from_cues(parsed, duration, fps)
    samples, sample_rate = (np.zeros(0, np.float32), 22050)
    sound = str(meta.get("soundFile") or "")
    if audio:
        wav = wav_beside(path, named=sound)
        if wav is not None:
            samples, sample_rate = load_wav(wav)
    return Take(fps=fps, weights=weights, audio=samples, sample_rate=sample_rate, text=path.stem,
                engine="import", meta={"rhubarb": {"file": path.name, "soundFile": sound, "cues": len(parsed)}})


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


# -- any input -----------------------------------------------------------------------------------

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
        data = _json_object(p)
        if "mouthCues" in data:
            return "rhubarb"
        if "facsNames" in data or "weightMat" in data:
            return "a2f"
        raise ExchangeFormatError(f"{p}: a JSON file that is neither Audio2Face blendshapes (facsNames, weightMat) "
                                  f"nor Rhubarb Lip Sync output (mouthCues)")
    raise ExchangeFormatError(f"{p.name}: unknown kind of file; give a take folder, an Audio2Face .json, a Live Link "
                              f"Face .csv or a Rhubarb .json")


def load_any(path, livelink_fps: float | None = None, rhubarb_fps: float = 30.0) -> tuple[Take, str]:
    """(Take, format) from any of FORMATS, with the WAV beside a file when there is one."""
    p = Path(path)
    kind = detect_format(p)
    if kind == "take":
        return Take.load(p if p.is_dir() else p.parent), kind
    if kind == "livelink":
        return read_livelink_csv(p, fps=livelink_fps), kind
    if kind == "rhubarb":
        return read_rhubarb_json(p, fps=rhubarb_fps), kind
    fps, weights = read_a2f(p)
    samples, sample_rate = (np.zeros(0, np.float32), 22050)
    wav = wav_beside(p)
    if wav is not None:
        samples, sample_rate = load_wav(wav)
    return Take(fps=fps, weights=weights, audio=samples, sample_rate=sample_rate, text=p.stem, engine="import"), kind


def wav_beside(path, named: str = ""):
    """The WAV that goes with a file: the one it names, else the same name .wav, else the folder's
    audio.wav, else the folder's only WAV; None when there is none."""
    path = Path(path)
    if named:
        candidate = Path(named)
        # Rhubarb writes the path it was given, often absolute and from another machine: try its name here too.
        name = re.split(r"[\\/]", named)[-1]
        for p in ((candidate if candidate.is_absolute() else path.parent / candidate), path.parent / name):
            if p.suffix.lower() == ".wav" and p.is_file():
                return p
    same_stem = path.with_suffix(".wav")
    if same_stem.is_file():
        return same_stem
    if (path.parent / AUDIO_WAV).is_file():
        return path.parent / AUDIO_WAV
    wavs = sorted(path.parent.glob("*.wav"))
    return wavs[0] if len(wavs) == 1 else None


def load_wav(path) -> tuple[np.ndarray, int]:
    try:
        return decode_wav(Path(path).read_bytes())
    except TakeFormatError as exc:
        raise ExchangeFormatError(f"{path}: {exc}") from None


def _json_object(path: Path) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except UnicodeDecodeError:
        raise ExchangeFormatError(f"{path}: not a text JSON file") from None
    except json.JSONDecodeError as exc:
        raise ExchangeFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); export it again") from None
    if not isinstance(data, dict):
        raise ExchangeFormatError(f"{path}: expected a JSON object at the top")
    return data
