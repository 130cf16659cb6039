"""The take request: its one definition and its one validator.

The panel, the HTTP client, the server, the command line and the engines all build and check requests
here, so a request one of them accepts is one every other accepts and every engine can make. Ranges
are the narrowest any engine supports (eSpeak NG's rate is 80..450 words per minute, 175 at 1.0).
Each rule fails with a `RequestError` whose code (and so HTTP status) is fixed in `contract`, and
whose message names the field, its range and what to send instead, in words that read the same on
the command line, in the panel and in an HTTP reply.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Collection, Mapping, Optional

from . import contract as C
from .errors import ExOmniError
from .face import MOOD_NAMES

MODES = C.MODES
MODES_NEEDING_AUDIO = ("lipsync",)  # a recording is the input
MODES_TAKING_AUDIO = ("lipsync", "chat")  # a recording may be the input (a spoken prompt in chat)

TEXT_LIMIT = 2000  # characters a voice speaks in one take
TRANSCRIPT_LIMIT = 100_000  # a lip-sync transcript: a whole chapter of an audiobook
FPS_RANGE = (1.0, 240.0)
DEFAULT_FPS = 30.0
SEED_RANGE = (0, 2**31 - 1)
RATE_RANGE = (0.5, 2.5)  # speaking-rate multiplier, 1.0 = the voice's normal pace
PITCH_RANGE = (0.5, 2.0)  # pitch multiplier, 1.0 = the voice's normal pitch
INTENSITY_RANGE = (0.0, 1.0)  # how strongly the mood shows
HEAD_MOTION_RANGE = (0.0, 2.0)  # head nods and sway, 1.0 = natural, 0 = a still head
VOICE_MAX_CHARS = 64
MAX_OPTIONS = 16

# Engine options: name -> (kind, low, high, what it is). Unknown names are refused, so a typo never
# silently does nothing.
OPTIONS = {
    "lead_in": (float, 0.0, 5.0, "seconds of silence before the line"),
    "tail": (float, 0.0, 5.0, "seconds of silence after the line"),
    "temperature": (float, 0.0, 2.0, "sampling temperature of the model"),
    "top_p": (float, 0.0, 1.0, "nucleus sampling mass"),
    "top_k": (int, 0, 10_000, "sample among the k most likely tokens (0 = all)"),
    "greedy": (bool, None, None, "always take the most likely token"),
    "max_new_tokens": (int, 1, 4096, "longest reply of the model, in tokens"),
    "stream_audio": (bool, None, None, "decode audio while the units are generated"),
}


class RequestError(ExOmniError, ValueError):
    """A request that cannot be made; `code` is a contract error code, `status` its HTTP status."""

    def __init__(self, message: str, code: str = C.E_BAD_REQUEST):
        super().__init__(message)
        self.code = code
        self.status = C.STATUS[code]


@dataclass
class TakeRequest:
    engine: str = C.DEFAULT_ENGINE
    mode: str = "say"
    text: str = ""
    fps: float = DEFAULT_FPS
    voice: Optional[str] = None
    seed: int = 0
    rate: float = 1.0
    pitch: float = 1.0
    mouth_only: bool = False  # no blinks, brows, gaze, mood or head motion
    mood: str = "neutral"  # one of face.MOOD_NAMES
    intensity: float = 1.0  # of the mood, 0..1
    head_motion: float = 1.0  # amount of head motion, 0 = still
    options: dict = field(default_factory=dict)
    audio_path: Optional[str] = None  # a recording already on local disk (never sent as a field)

    def to_json(self) -> dict:
        """The request as POST /v1/takes sends it."""
        body = asdict(self)
        body.pop("audio_path")
        return body


FIELDS = tuple(k for k in TakeRequest.__dataclass_fields__ if k != "audio_path")
DEFAULTS = {k: v for k, v in asdict(TakeRequest()).items() if k != "audio_path"}


@dataclass(frozen=True)
class EngineSpec:
    """What an engine can make, as `GET /v1/engines` describes it."""
    name: str
    modes: tuple
    voices: Optional[Collection[str]] = None  # lowercased names without "+variant"; None: no list to check
    available: bool = True
    reason: str = ""

    @classmethod
    def from_description(cls, info: Mapping) -> "EngineSpec":
        voices = info.get("voices")
        return cls(name=info["name"], modes=tuple(info.get("modes", ())), available=bool(info.get("available", True)),
                   voices=None if voices is None else frozenset(v.split("+")[0].lower() for v in voices),
                   reason=info.get("reason", ""))


def validate(data: Mapping, *, has_audio: bool = False,
             engines: Optional[Mapping[str, EngineSpec]] = None) -> TakeRequest:
    """A checked TakeRequest from request fields (JSON, form fields, panel settings, CLI flags).

    `engines` (name -> EngineSpec) adds what only the engines know: their modes and voices.
    """
    if not isinstance(data, Mapping):
        _fail('the request must be a JSON object such as {"engine": "phonetic", "mode": "say", "text": "Hello."}')
    unknown = sorted(str(k) for k in data if k not in DEFAULTS)
    if unknown:
        _fail(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    merged = {**DEFAULTS, **{k: v for k, v in data.items() if v is not None}}

    engine, mode = merged["engine"], merged["mode"]
    if not isinstance(engine, str) or not engine:
        _fail("engine must be the name of an engine, such as 'phonetic'")
    if not isinstance(mode, str) or mode not in MODES:
        _fail(f"mode must be one of {', '.join(MODES)}", C.E_UNKNOWN_MODE)
    if engines is not None:
        spec = engines.get(engine)
        if spec is None:
            _fail(f"unknown engine {engine!r}; the engines are {', '.join(sorted(engines)) or 'none'}",
                  C.E_UNKNOWN_ENGINE)
        if mode not in spec.modes:
            _fail(f"the {engine} engine has no mode {mode!r}; its modes are {', '.join(spec.modes)}",
                  C.E_UNKNOWN_MODE)

    text = merged["text"]
    if not isinstance(text, str):
        _fail("text must be a string")
    text = text.strip()
    limit = TRANSCRIPT_LIMIT if mode == "lipsync" else TEXT_LIMIT
    if len(text) > limit:
        _fail(f"the text is {len(text)} characters, over the limit of {limit}; split it into several takes",
              C.E_TEXT_TOO_LONG)
    if mode in MODES_NEEDING_AUDIO and not has_audio:
        _fail(f"mode {mode!r} needs a recording: give the audio file to animate", C.E_BAD_AUDIO)
    if has_audio and mode not in MODES_TAKING_AUDIO:
        _fail(f"mode {mode!r} takes no recording; use mode 'lipsync' to animate a recording", C.E_BAD_AUDIO)
    if not text and not (has_audio and mode in MODES_TAKING_AUDIO):
        what = "the line to speak" if mode == "say" else "a prompt (text, or a recording)"
        _fail(f"the text is empty: give {what}", C.E_EMPTY_TEXT)

    fps = _number(merged["fps"], "fps", FPS_RANGE)
    seed = merged["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        _fail(f"seed must be a whole number from {SEED_RANGE[0]} to {SEED_RANGE[1]}")
    rate = _number(merged["rate"], "rate", RATE_RANGE, "a speaking-rate multiplier, 1 = normal")
    pitch = _number(merged["pitch"], "pitch", PITCH_RANGE, "a pitch multiplier, 1 = normal")
    voice = merged["voice"]
    if voice is not None:
        if not isinstance(voice, str) or len(voice) > VOICE_MAX_CHARS or not voice.strip():
            _fail("voice must be a voice name such as 'en-us'")
        voice = voice.strip()
        spec = engines.get(engine) if engines else None
        if spec is not None and spec.voices is not None and voice.split("+")[0].strip().lower() not in spec.voices:
            some = [v for v in ("en-us", "en-gb", "de", "fr-fr", "es") if v in spec.voices]
            _fail(f"unknown voice {voice!r} for the {engine} engine; use one such as {', '.join(some) or 'its default'}"
                  " (`exomni voices` lists them all)")
    if not isinstance(merged["mouth_only"], bool):  # "false" as a string would otherwise mean true
        _fail("mouth_only must be true or false")
    mood = merged["mood"]
    if not isinstance(mood, str) or mood.strip().lower() not in MOOD_NAMES:
        _fail(f"mood must be one of {', '.join(MOOD_NAMES)}")
    mood = mood.strip().lower()
    intensity = _number(merged["intensity"], "intensity", INTENSITY_RANGE, "how strongly the mood shows")
    head_motion = _number(merged["head_motion"], "head_motion", HEAD_MOTION_RANGE,
                          "amount of head motion, 1 = natural, 0 = still")
    options = validate_options(merged["options"])
    return TakeRequest(engine=engine, mode=mode, text=text, fps=fps, voice=voice or None, seed=seed, rate=rate,
                       pitch=pitch, mouth_only=merged["mouth_only"], mood=mood, intensity=intensity,
                       head_motion=head_motion, options=options)


def validate_options(options) -> dict:
    if not isinstance(options, Mapping):
        _fail("options must be a JSON object such as {\"lead_in\": 0}")
    if len(options) > MAX_OPTIONS:
        _fail(f"options has {len(options)} entries; at most {MAX_OPTIONS}")
    out = {}
    for name, value in options.items():
        spec = OPTIONS.get(name)
        if spec is None:
            _fail(f"unknown option {str(name)[:40]!r}; the options are {', '.join(OPTIONS)}")
        kind, low, high, what = spec
        if kind is bool:
            if not isinstance(value, bool):
                _fail(f"option {name} must be true or false ({what})")
            out[name] = value
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                _fail(f"option {name} must be a whole number from {low} to {high} ({what})")
            out[name] = value
        else:
            out[name] = _number(value, f"option {name}", (low, high), what)
    return out


def _number(value, name: str, bounds: tuple, what: str = "") -> float:
    low, high = bounds
    about = f" ({what})" if what else ""
    expected = f"{name} must be a number from {low:g} to {high:g}{about}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(expected)
    if isinstance(value, int) and abs(value) > 10**9:  # a 5,000-digit integer: refuse before converting
        _fail(expected)
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        _fail(f"{expected}, not {value:g}")
    return value


def _fail(message: str, code: str = C.E_BAD_REQUEST):
    raise RequestError(message, code)
