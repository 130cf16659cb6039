"""What every exchange format shares: its error, reading its JSON, and the audio that goes with it
(found beside a file when reading, written beside it when writing).

Other tools write the curves and the sound as two files. Which WAV belongs to a file is found, in
order, from the path the file names (Audio2Face's `trackPath`, Rhubarb's `soundFile`; often
absolute and from another machine, so only its file name is tried, beside the file; a relative one
only where it stays inside the file's folder), from
Audio2Face's export naming (`bu.wav_bsweight.json` was made from `bu.wav`, `speech_bsweight.json`
from `speech.wav`), from the same name with `.wav`, from a take folder's `audio.wav`, and last
from the only WAV in the folder. Never from a guess among several.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..a2f_document import read_json as _read_json
from ..audio_codec import decode_wav, encode_wav
from ..files import atomic_write_all
from ..take import AUDIO_WAV, TakeFormatError

A2F_EXPORT_SUFFIX = "_bsweight.json"  # Audio2Face names an export `<file name>_bsweight.json`
MAX_SECONDS = 4 * 3600.0  # the longest performance an exchange file may hold


class ExchangeFormatError(TakeFormatError):
    """An Audio2Face JSON, Live Link Face CSV or Rhubarb JSON that cannot be read; the message says
    what is wrong and what to do."""


def read_json(path: Path):
    """The JSON document in a file (an object or a list), or an ExchangeFormatError that says why not."""
    return _read_json(path, ExchangeFormatError)


def wav_beside(take, path, audio: bool = True) -> Path | None:
    """Where a writer puts the take's sound: `path` with .wav, or None when the take has no sound or
    `audio` is off (a take without sound gets no WAV at all, never an empty one)."""
    return Path(path).with_suffix(".wav") if audio and take.has_audio and Path(path).suffix else None


def write_with_audio(take, files: dict, wav: Path | None) -> list:
    """Write `files` ({path: bytes}) and the take's WAV at `wav` (when not None) all or none; the paths."""
    files = dict(files)
    if wav is not None:
        files[wav] = encode_wav(take.audio, take.sample_rate)
    atomic_write_all(files)
    return list(files)


def find_audio(path, named: str = "") -> tuple[Path | None, str]:
    """(the WAV that goes with `path`, how it was found), or (None, "") when none does (see above)."""
    path = Path(path)
    if named:
        # Only inside the file's own folder: a path the file names may be absolute or climb out with
        # "..", and a file from elsewhere must not pull in any WAV on this disk.
        name = re.split(r"[\\/]", named)[-1]
        relative = [] if Path(named).is_absolute() or re.match(r"^[A-Za-z]:", named) else [path.parent / named]
        for p in (*relative, path.parent / name):
            if p.suffix.lower() == ".wav" and p.is_file() and _inside(p, path.parent):
                return p, "named in the file"
    if path.name.lower().endswith(A2F_EXPORT_SUFFIX):
        source = path.name[:-len(A2F_EXPORT_SUFFIX)]
        for p in (path.parent / source, path.parent / (source + ".wav")):
            if p.suffix.lower() == ".wav" and p.is_file():
                return p, "Audio2Face export name"
    for p, how in ((path.with_suffix(".wav"), "same name"), (path.parent / AUDIO_WAV, "take folder")):
        if p.is_file() and p != path:
            return p, how
    wavs = sorted(p for p in path.parent.glob("*.wav") if p.is_file())
    if len(wavs) == 1:
        return wavs[0], "only WAV in the folder"
    return None, ""


def _inside(p: Path, folder: Path) -> bool:
    try:
        return p.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def check_duration(path, seconds: float) -> None:
    """An imported performance longer than MAX_SECONDS is a broken or hostile file, refused before its
    curves are made (a cue ending at 1e7 s would need tens of GB of frames)."""
    if not seconds <= MAX_SECONDS:
        raise ExchangeFormatError(f"{path}: it runs {seconds:.0f} s, over the {MAX_SECONDS / 3600:.0f} hours a "
                                  "performance may last; the times in it are wrong: export it again")


def load_wav(path) -> tuple[np.ndarray, int]:
    try:
        return decode_wav(Path(path).read_bytes())
    except TakeFormatError as exc:
        raise ExchangeFormatError(f"{path}: {exc}") from None


def paired_audio(path, named: str = "") -> tuple[np.ndarray, int, dict]:
    """(samples, sample rate, what to record in take.meta["audio"]) for the file at `path`; no
    samples when no WAV goes with it, and the record says so (the converter tells the user)."""
    wav, how = find_audio(path, named)
    if wav is None:
        wavs = sorted(p.name for p in Path(path).parent.glob("*.wav"))
        return np.zeros(0, np.float32), 22050, {"file": "", "named": named, "candidates": wavs}
    samples, rate = load_wav(wav)
    return samples, rate, {"file": wav.name, "found_by": how}


def missing_audio_message(path, record: dict) -> str:
    """What to tell the user when no audio went with an exchange file (empty when some did)."""
    if record.get("file"):
        return ""
    path = Path(path)
    named = record.get("named") or ""
    hint = f" (it names {named!r}, not found)" if named else ""
    others = record.get("candidates") or []
    beside = f"; the WAVs beside it ({', '.join(others[:4])}) do not match its name" if others else ""
    expected = (path.name[:-len(A2F_EXPORT_SUFFIX)] if path.name.lower().endswith(A2F_EXPORT_SUFFIX)
                else path.stem + ".wav")
    if not expected.lower().endswith(".wav"):
        expected += ".wav"
    return (f"no audio found for {path.name}{hint}{beside}: the take has curves only. Put {expected} beside it "
            f"to bring its sound along")
