"""The take: one spoken line's facial animation and audio, the object that flows end to end.

A take folder holds three files:
  audio.wav          mono 16-bit PCM (absent when the take has no sound)
  blendshapes.json   NVIDIA Audio2Face blendshape JSON (exportFps, trackPath, numPoses,
                     numFrames, facsNames, weightMat), ARKit-52 in canonical order; see
                     a2f_document.py, its one parser and builder
  take.json          everything else: format_version, text, engine, fps, frames, sample_rate,
                     duration, phonemes [{symbol, start, end}], units, timings

`format_version` is the take folder's layout. A take.json of a newer major version than
FORMAT_VERSION is refused (`check_format_version`): this build would misread it. An older one, or
one with no version, loads.

Pure Python + numpy (no soundfile, no bpy) so Blender's bundled Python and the backend
both import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .a2f_document import a2f_bytes, read_a2f_file, read_json
from .arkit import ARKIT_52, INDEX
from .audio_codec import decode_wav, encode_wav
from .errors import TakeFormatError
from .files import atomic_write_all

TAKE_JSON = "take.json"
BLENDSHAPES_JSON = "blendshapes.json"
AUDIO_WAV = "audio.wav"
FORMAT_VERSION = 1  # the major version of the take folder this build writes and reads


def format_major(version) -> int:
    """The major number of a take.json `format_version` (1, 1.2, "2", "2.1"); TakeFormatError if it is none."""
    if isinstance(version, bool):
        raise TakeFormatError(f"format_version {version!r} is not a version number")
    if isinstance(version, int):
        return version
    if isinstance(version, float) and version == version and abs(version) != float("inf"):
        return int(version)
    if isinstance(version, str):
        head = version.strip().split(".")[0]
        if head.isdigit():
            return int(head)
    raise TakeFormatError(f"format_version {version!r} is not a version number")


def check_format_version(info: dict, where) -> None:
    """Refuse a take.json written by a newer take format than this build reads; older or absent loads."""
    if not isinstance(info, dict) or info.get("format_version") is None:
        return
    version = info["format_version"]
    try:
        major = format_major(version)
    except TakeFormatError as exc:
        raise TakeFormatError(f"{where}: {exc}; fix it or delete the field to load the take as version "
                              f"{FORMAT_VERSION}") from None
    if major > FORMAT_VERSION:
        raise TakeFormatError(f"{where} is take format version {version}, newer than this build of Ex-Omni reads "
                              f"(version {FORMAT_VERSION} and older); update the Ex-Omni add-on (and backend) to "
                              f"load it")


@dataclass
class Phoneme:
    symbol: str  # IPA
    start: float  # seconds
    end: float

    def to_json(self) -> dict:
        return {"symbol": self.symbol, "start": round(self.start, 5), "end": round(self.end, 5)}


@dataclass
class Take:
    fps: float
    weights: np.ndarray  # float32 [frames, 52], ARKit-52 canonical order, in [0, 1]
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # mono float32 in [-1, 1]
    sample_rate: int = 22050
    text: str = ""
    engine: str = ""
    mode: str = "say"
    phonemes: list[Phoneme] = field(default_factory=list)
    units: list[int] = field(default_factory=list)  # discrete speech units, when the engine has them
    unit_rate: float = 12.5  # units per second
    timings: dict = field(default_factory=dict)  # stage name -> seconds
    meta: dict = field(default_factory=dict)  # voice, seed, prompt, ... (free-form, JSON-safe)
    names: tuple = ARKIT_52

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=np.float32)
        if w.ndim != 2 or w.shape[1] != len(ARKIT_52):
            raise TakeFormatError(f"weights must be [frames, 52], got shape {w.shape}")
        if not np.all(np.isfinite(w)):
            raise TakeFormatError("weights contain NaN or infinite values")
        self.weights = np.clip(w, 0.0, 1.0)
        self.names = ARKIT_52
        a = np.asarray(self.audio, dtype=np.float32)
        if a.ndim == 2:  # frames x channels -> mono
            a = a.mean(axis=1)
        self.audio = a.reshape(-1)
        if not (self.fps > 0 and np.isfinite(self.fps)):
            raise TakeFormatError(f"fps must be positive, got {self.fps}")
        self.phonemes = [p if isinstance(p, Phoneme) else Phoneme(**p) for p in self.phonemes]

    # -- derived -------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return int(self.weights.shape[0])

    @property
    def duration(self) -> float:
        """Seconds covered: the audio when there is audio, otherwise the curves."""
        if self.audio.size:
            return self.audio.size / float(self.sample_rate)
        return self.frames / float(self.fps)

    @property
    def has_audio(self) -> bool:
        return self.audio.size > 0

    def channel(self, name: str) -> np.ndarray:
        return self.weights[:, INDEX[name]]

    def resampled(self, fps: float) -> "Take":
        """The same take with its curves linearly resampled to another frame rate."""
        if abs(fps - self.fps) < 1e-9:
            return self
        weights = resample_curves(self.weights, self.fps, fps)
        return Take(**{**self.__dict__, "fps": fps, "weights": weights})

    # -- files ---------------------------------------------------------------------------
    def save(self, folder) -> Path:
        """Write the take folder (audio.wav, blendshapes.json, take.json), replacing an older take there."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            folder / BLENDSHAPES_JSON: a2f_bytes(self.weights, self.fps, AUDIO_WAV if self.has_audio else ""),
            folder / TAKE_JSON: json.dumps(self.to_json(), indent=2).encode(),
        }
        if self.has_audio:  # a take without sound has no audio.wav, never an empty one
            files[folder / AUDIO_WAV] = encode_wav(self.audio, self.sample_rate)
        # All files are staged before any is renamed: an old take folder is never left half new.
        atomic_write_all(files)
        if not self.has_audio and (folder / AUDIO_WAV).exists():
            (folder / AUDIO_WAV).unlink()  # the older take's sound is not this take's
        return folder

    @classmethod
    def load(cls, folder) -> "Take":
        folder = Path(folder)
        if not folder.is_dir():
            raise TakeFormatError(f"{folder} is not a take folder (expected a folder with {TAKE_JSON})")
        meta_path = folder / TAKE_JSON
        bs_path = folder / BLENDSHAPES_JSON
        if not bs_path.exists():
            raise TakeFormatError(f"{folder} has no {BLENDSHAPES_JSON}; is it a take folder?")
        info = read_json(meta_path) if meta_path.exists() else {}
        if not isinstance(info, dict):
            raise TakeFormatError(f"{meta_path}: expected a JSON object")
        check_format_version(info, meta_path)
        fps, weights, _ = read_a2f_file(bs_path)
        audio, sr = (np.zeros(0, np.float32), int(info.get("sample_rate", 22050)))
        if (folder / AUDIO_WAV).exists():
            audio, sr = decode_wav((folder / AUDIO_WAV).read_bytes())
        try:
            return cls(
                fps=float(info.get("fps", fps)),
                weights=weights,
                audio=audio,
                sample_rate=sr,
                text=info.get("text", ""),
                engine=info.get("engine", ""),
                mode=info.get("mode", "say"),
                phonemes=[Phoneme(p["symbol"], float(p["start"]), float(p["end"])) for p in info.get("phonemes", [])],
                units=[int(u) for u in info.get("units", [])],
                unit_rate=float(info.get("unit_rate", 12.5)),
                timings=dict(info.get("timings", {})),
                meta=dict(info.get("meta", {})),
            )
        except TakeFormatError:
            raise
        except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or foreign take.json
            raise TakeFormatError(f"{meta_path}: a field cannot be read ({type(exc).__name__}: {exc}); fix it "
                                  f"or delete {TAKE_JSON} to load the curves and audio alone") from None

    def to_json(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "text": self.text,
            "engine": self.engine,
            "mode": self.mode,
            "fps": self.fps,
            "frames": self.frames,
            "sample_rate": self.sample_rate,
            "duration": round(self.duration, 5),
            "has_audio": self.has_audio,
            "phonemes": [p.to_json() for p in self.phonemes],
            "units": list(self.units),
            "unit_rate": self.unit_rate,
            "timings": {k: round(float(v), 5) for k, v in self.timings.items()},
            "meta": self.meta,
        }


# -- curves -----------------------------------------------------------------------------------

def resample_curves(weights: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear resampling of [frames, C] curves from one frame rate to another, same duration."""
    n = weights.shape[0]
    if n == 0:
        return weights.copy()
    duration = n / float(src_fps)
    m = max(1, int(round(duration * dst_fps)))
    t_dst = np.arange(m) / float(dst_fps)
    t_src = np.arange(n) / float(src_fps)
    return np.stack([np.interp(t_dst, t_src, weights[:, c]) for c in range(weights.shape[1])], axis=1).astype(np.float32)
