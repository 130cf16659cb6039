"""The take: one spoken line's facial animation and audio, the object that flows end to end.

A take folder holds three files:
  audio.wav          mono 16-bit PCM (absent when the take has no sound)
  blendshapes.json   NVIDIA Audio2Face blendshape JSON (exportFps, trackPath, numPoses,
                     numFrames, facsNames, weightMat), ARKit-52 in canonical order; see
                     exchange/a2f.py, its one reader and writer
  take.json          everything else: text, engine, fps, frames, sample_rate, duration,
                     phonemes [{symbol, start, end}], units, timings

Pure Python + numpy (no soundfile, no bpy) so Blender's bundled Python and the backend
both import it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arkit import ARKIT_52, INDEX
from .files import atomic_write_all
from .errors import ExOmniError

TAKE_JSON = "take.json"
BLENDSHAPES_JSON = "blendshapes.json"
AUDIO_WAV = "audio.wav"
FORMAT_VERSION = 1


class TakeFormatError(ExOmniError, ValueError):
    """A take folder or blendshape file that cannot be read; the message says why."""


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
        from .exchange.a2f import take_a2f_bytes  # the exchange formats build on the take: imported late

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            folder / BLENDSHAPES_JSON: take_a2f_bytes(self, AUDIO_WAV if self.has_audio else ""),
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
        from .exchange.a2f import read_a2f
        from .exchange.files import read_json

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
        fps, weights = read_a2f(bs_path)
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


# -- WAV (stdlib only, so Blender's Python can read and write takes) ------------------------

def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    pcm = (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, int(sample_rate), int(sample_rate) * 2, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono float32 samples and the rate from a PCM (8/16/24/32-bit) or float WAV."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TakeFormatError("not a WAV file (no RIFF/WAVE header)")
    pos, fmt, fmt_body, payload = 12, None, b"", None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise TakeFormatError("WAV file is truncated (its fmt chunk is shorter than 16 bytes)")
            fmt, fmt_body = struct.unpack("<HHIIHH", body[:16]), body
        elif cid == b"data":
            payload = body
        pos += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise TakeFormatError("WAV file is truncated (missing fmt or data chunk)")
    tag, channels, rate, _, _, bits = fmt
    if tag == 0xFFFE and len(fmt_body) >= 26:
        # WAVE_FORMAT_EXTENSIBLE (ffmpeg writes it above 48 kHz or 2 channels, for instance): the sub-format
        # GUID that follows the basic fields begins with the real format tag (1 PCM, 3 float).
        tag = struct.unpack("<H", fmt_body[24:26])[0]
    if channels < 1 or bits < 8 or bits % 8 or rate < 1:
        raise TakeFormatError(f"unsupported WAV header ({channels} channels, {bits}-bit, {rate} Hz); "
                              "export the audio again as 16-bit PCM WAV")
    width = bits // 8
    usable = len(payload) - len(payload) % (width * channels)
    payload = payload[:usable]
    if tag == 3 and bits in (32, 64):
        x = np.frombuffer(payload, "<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag != 1:
        raise TakeFormatError(f"unsupported WAV encoding (format tag {tag}); export the audio as PCM or float WAV")
    elif bits == 8:
        x = (np.frombuffer(payload, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        x = np.frombuffer(payload, "<i2").astype(np.float32) / 32768.0
    elif bits == 24:
        b = np.frombuffer(payload, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v)).astype(np.float32) / float(1 << 23)
    elif bits == 32:
        x = np.frombuffer(payload, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise TakeFormatError(f"unsupported WAV sample format ({bits}-bit, tag {tag})")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    return x.astype(np.float32), int(rate)
