"""Live Link Face CSV (Epic's iOS capture app), both ways.

A header `Timecode,BlendShapeCount,` then the 52 ARKit names in PascalCase in the app's order
(`EyeBlinkLeft ... TongueOut`), then nine head and eye rotations (`HeadYaw ... RightEyeRoll`); one
row per captured frame. The timecode is `HH:MM:SS:FF.fff`, where `FF.fff` is a (fractional) frame
number at the recording's rate, which the file does not state: it is inferred from the largest
frame number seen (see `infer_livelink_fps`). Rows may be missing (the app drops frames), so the
curves are resampled onto a regular grid. The first row's timecode is kept, and a take read from a
CSV is written back from that same start.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from .. import face
from ..arkit import ARKIT_52, INDEX
from ..files import atomic_write
from ..take import Take
from .files import ExchangeFormatError, check_duration, paired_audio, wav_beside, write_with_audio
from .registry import Format, register_format

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
# The head's columns and the take's head rotation (core.face: [pitch, yaw, roll] in degrees, + nods
# down, turns and tilts to the subject's left). The format does not state a unit; angles are written
# in radians, as ARKit reports them.
HEAD_COLUMNS = {"HeadPitch": 0, "HeadYaw": 1, "HeadRoll": 2}
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


def timecode_seconds(text: str, fps: float) -> float:
    """Seconds since midnight of `HH:MM:SS:FF.fff` at `fps` frames per second (0 for no timecode);
    a plain frame number (as some tools write) counts from 0."""
    text = text.strip()
    if not text:
        return 0.0
    if re.fullmatch(r"\d+(\.\d*)?", text):
        return 0.0
    try:
        whole, frame = parse_timecode(text)
    except ValueError:
        raise ExchangeFormatError(f"start timecode {text!r} is not HH:MM:SS:FF or HH:MM:SS:FF.fff") from None
    return whole + frame / fps


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
    repeated = int(np.count_nonzero(np.diff(times) <= 1e-9))
    if len(timecodes) > 1 and repeated == len(timecodes) - 1:
        if fps is None:
            raise ExchangeFormatError(
                f"{path}: all {len(timecodes)} rows share the timecode {timecodes[0]!r}, so when each was recorded "
                "is unknown; convert it with the recording's frame rate (exomni convert FILE --source-fps 60 ...) "
                "and the rows are read as consecutive frames")
        times, rate_from = np.arange(len(timecodes)) / rate, "option (every row has the same timecode)"
    keep = np.concatenate([[True], np.diff(times) > 1e-9])  # a repeated timecode: keep its first row
    times, values = times[keep], values[keep]
    check_duration(path, float(times[-1]))
    frames = int(round(times[-1] * rate)) + 1
    grid = np.arange(frames) / rate
    weights = np.zeros((frames, len(ARKIT_52)), np.float32)
    for col, channel in channel_cols.items():
        weights[:, channel] = np.interp(grid, times, values[:, col])
    rotation_curves = {name: np.round(np.interp(grid, times, values[:, col]), 6).tolist()
                       for col, name in rotation_cols.items()}
    missing = [livelink_name(n) for n in ARKIT_52 if INDEX[n] not in channel_cols.values()]
    samples, sample_rate, record = np.zeros(0, np.float32), 22050, {"file": ""}
    if audio:
        samples, sample_rate, record = paired_audio(path)
    meta = {"audio": record, "livelink": {
        "file": path.name, "start_timecode": timecodes[0], "fps": rate, "fps_from": rate_from, "rows": len(timecodes),
        "repeated_timecodes": repeated,
        "rotations": rotation_curves, "missing_channels": missing, "ignored_columns": ignored}}
    head = np.zeros((frames, 3))
    for name, axis in HEAD_COLUMNS.items():
        if name in rotation_curves:
            head[:, axis] = np.degrees(rotation_curves[name])
    if np.abs(head).max() > 0:  # the head moves: key it like a generated take's head motion
        meta[face.HEAD_ROTATION] = face.head_rotation_json(head)
    return Take(fps=rate, weights=weights, audio=samples, sample_rate=sample_rate, text=path.stem,
                engine="import", meta=meta)


def livelink_csv_text(take: Take, start_timecode: str = "") -> str:
    """A take as a Live Link Face CSV, the app's exact header and column order.

    The first row's timecode is `start_timecode`, else the one the take was recorded from (when it
    came from a Live Link Face CSV), else midnight. Head and eye rotation columns are written back as
    read when the take came from a Live Link Face CSV with the same frame count; else the head's are
    the take's head rotation (radians) when it has one, and the rest 0.
    """
    source = (take.meta or {}).get("livelink") or {}
    start = timecode_seconds(start_timecode or str(source.get("start_timecode") or ""),
                             float(source.get("fps") or take.fps))
    rotations = source.get("rotations") or {}
    rot = np.zeros((take.frames, len(LIVELINK_ROTATIONS)))
    head = face.head_rotation(take.meta, take.frames)
    for i, name in enumerate(LIVELINK_ROTATIONS):
        curve = rotations.get(name)
        if isinstance(curve, list) and len(curve) == take.frames:
            rot[:, i] = curve
        elif head is not None and name in HEAD_COLUMNS:
            rot[:, i] = np.radians(head[:, HEAD_COLUMNS[name]])
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


# -- the format, as the exchange registry offers it ---------------------------------------------------

def _read(path, source_fps: float | None = None, audio: bool = True, **_) -> Take:
    return read_livelink_csv(path, fps=source_fps, audio=audio)


def _write(take: Take, path, audio: bool = True, **_) -> list:
    path = Path(path)
    return write_with_audio(take, {path: livelink_csv_text(take).encode("utf-8")}, wav_beside(take, path, audio))


def _read_notes(take: Take, opts: dict) -> list:
    info = take.meta.get("livelink") or {}
    notes = []
    if info.get("fps_from") not in (None, "option"):
        notes.append(f"Live Link Face recording read at {info.get('fps'):g} fps ({info.get('fps_from')}); "
                     "give --source-fps if it was recorded at another rate")
    if info.get("missing_channels"):
        notes.append(f"channels not in the CSV, left at 0: {', '.join(info['missing_channels'])}")
    return notes


FORMAT = register_format(Format(
    name="livelink", label="Live Link Face CSV (Timecode, BlendShapeCount, ...)", suffixes=(".csv",),
    read=_read, write=_write, hint="a Live Link Face .csv", priority=30, read_notes=_read_notes))
