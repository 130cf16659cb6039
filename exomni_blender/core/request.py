"""The take request: its one declaration and its one validator.

`TakeRequest` declares every field once: its type, default, range and meaning (`Spec`, in each field's
metadata), and `OPTIONS` declares the engine options the same way. Everything else is made from them:
the validator below, the OpenAPI schema (`backend/server/schemas.py`), the form-field parsing of
uploads, the command line's flags (`exomni take`), and the Generate panel's properties and ranges. A
request one of them accepts is one every other accepts and every engine can make: ranges are the
narrowest any engine supports (eSpeak NG's rate is 80..450 words per minute, 175 at 1.0).

Each rule fails with a `RequestError` whose code (and so HTTP status) is fixed in `contract`, and whose
message names the field, its range and what to send instead, in words that read the same on the
command line, in the panel and in an HTTP reply.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Collection, Mapping, Optional

from . import contract as C
from .errors import ExOmniError
from .face import MOOD_NAMES

MODES = C.MODES
MODES_NEEDING_AUDIO = ("lipsync",)  # a recording is the input
MODES_TAKING_AUDIO = ("lipsync", "chat")  # a recording may be the input (a spoken prompt in chat)

TEXT_LIMIT = 2000  # characters a voice speaks in one take
TRANSCRIPT_LIMIT = 100_000  # a lip-sync transcript: a whole chapter of an audiobook
MAX_OPTIONS = 16


@dataclass(frozen=True)
class Spec:
    """What one request field or engine option is: the single source of its rules and its words."""
    kind: type  # str, float, int, bool or dict
    default: object
    help: str
    low: Optional[float] = None
    high: Optional[float] = None  # for a str: its longest length; for a dict: its most entries
    low_open: bool = False  # the low end itself refused ("above 0")
    choices: Optional[tuple] = None
    panel: bool = True  # a setting of the Generate panel
    engines: tuple = ()  # engine options only: the engines that read it

    @property
    def bounds(self) -> tuple:
        return (self.low, self.high)

    def describe(self) -> str:
        """The rule in words: 'a number from 0.5 to 2.5', 'a number above 0 and at most 1', 'one of ...'."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind in (int, float) and self.low is not None:
            show = (lambda x: str(int(x))) if self.kind is int else (lambda x: f"{x:g}")
            span = (f"above {show(self.low)} and at most" if self.low_open else f"from {show(self.low)} to")
            return f"a {'whole ' if self.kind is int else ''}number {span} {show(self.high)}"
        if self.kind is bool:
            return "true or false"
        return ""

    def accepts(self, value) -> bool:
        """Whether a number is inside the range (the type is checked by the validator)."""
        if self.low is None:
            return True
        return (value > self.low if self.low_open else value >= self.low) and value <= self.high


def declare(spec: Spec):
    """A dataclass field holding its Spec."""
    if spec.kind is dict:
        return field(default_factory=dict, metadata={"spec": spec})
    return field(default=spec.default, metadata={"spec": spec})


@dataclass
class TakeRequest:
    engine: str = declare(Spec(str, C.DEFAULT_ENGINE, "an engine from GET /v1/engines, such as 'phonetic'",
                               high=64))
    mode: str = declare(Spec(str, "say", "say: speak the line; chat: answer it; lipsync: animate a recording",
                             choices=MODES))
    text: str = declare(Spec(str, "", f"the line to say (at most {TEXT_LIMIT} characters), a chat prompt, or a "
                                      f"lip-sync transcript (at most {TRANSCRIPT_LIMIT})", high=TRANSCRIPT_LIMIT))
    fps: float = declare(Spec(float, 30.0, "frames per second of the curves", 1.0, 240.0, panel=False))
    voice: Optional[str] = declare(Spec(str, None, "an engine voice such as 'en-us'; none: the engine's default",
                                        high=64))
    language: str = declare(Spec(str, "en", "the language spoken, an eSpeak NG code such as en, es, de, fr, it, pt, ja "
                                 "or cmn: a line with no voice is spoken in it, a recording's transcript is read in it",
                                 high=16))
    seed: int = declare(Spec(int, 0, "blinks, brows, gaze and sampling vary with it; the same seed, the same take",
                             0, 2**31 - 1))
    rate: float = declare(Spec(float, 1.0, "speaking-rate multiplier, 1 = the voice's normal pace", 0.5, 2.5))
    pitch: float = declare(Spec(float, 1.0, "pitch multiplier, 1 = the voice's normal pitch", 0.5, 2.0))
    mouth_only: bool = declare(Spec(bool, False, "only the mouth: no blinks, brows, gaze, mood or head motion"))
    mood: str = declare(Spec(str, "neutral", "the face's (and where the engine can, the voice's) mood",
                             choices=MOOD_NAMES))
    intensity: float = declare(Spec(float, 1.0, "how strongly the mood shows", 0.0, 1.0))
    head_motion: float = declare(Spec(float, 1.0, "head nods and sway: 1 = natural, 0 = a still head", 0.0, 2.0))
    options: dict = declare(Spec(dict, None, "engine options (see OPTIONS)", high=MAX_OPTIONS, panel=False))
    audio_path: Optional[str] = None  # a recording already on local disk (never sent as a field)

    def to_json(self) -> dict:
        """The request as POST /v1/takes sends it."""
        body = asdict(self)
        body.pop("audio_path")
        return body


# name -> Spec of every field a request may carry, in declaration order.
SPECS = {f.name: f.metadata["spec"] for f in fields(TakeRequest) if "spec" in f.metadata}
FIELDS = tuple(SPECS)
DEFAULTS = {name: ({} if spec.kind is dict else spec.default) for name, spec in SPECS.items()}
PANEL_FIELDS = tuple(name for name, spec in SPECS.items() if spec.panel)
DEFAULT_FPS = SPECS["fps"].default
MAX_NEW_TOKENS = 2048  # the longest reply the model's context leaves room for

# Engine options, declared as the fields are. Unknown names are refused, so a typo never silently
# does nothing; an engine ignores the options that are not its own.
OPTIONS = {
    "lead_in": Spec(float, 0.2, "seconds of silence before the line", 0.0, 5.0, engines=("phonetic",)),
    "tail": Spec(float, 0.15, "seconds of silence after the line", 0.0, 5.0, engines=("phonetic",)),
    "temperature": Spec(float, 0.2, "sampling temperature of the model's reply; 0 = always the likeliest",
                        0.0, 2.0, engines=("exomni",)),
    "top_p": Spec(float, None, "nucleus sampling mass of the reply; 1 = off", 0.0, 1.0, low_open=True,
                  engines=("exomni",)),
    "top_k": Spec(int, None, "sample the reply among the k most likely tokens; 0 = all", 0, 10_000,
                  engines=("exomni",)),
    "repetition_penalty": Spec(float, None, "how much a repeated token of the reply is discouraged; 1 = not at all",
                               0.5, 2.0, engines=("exomni",)),
    "greedy": Spec(bool, False, "always take the most likely token and unit", engines=("exomni",)),
    "max_new_tokens": Spec(int, 128, "longest reply of the model, in tokens", 1, MAX_NEW_TOKENS,
                           engines=("exomni",)),
    "stream_audio": Spec(bool, True, "decode audio while the units are generated", engines=("exomni",)),
    "stream_face": Spec(bool, True, "animate the face while the units are generated", engines=("exomni",)),
    "audio_filename": Spec(str, None, "the recording's own file name, for messages (an upload's is set by the "
                                      "server)", high=255, engines=("phonetic",)),
}


def option_value(options: Mapping, name: str):
    """An engine option from a checked request, or its declared default."""
    value = (options or {}).get(name)
    return OPTIONS[name].default if value is None else value


class RequestError(ExOmniError, ValueError):
    """A request that cannot be made; `code` is a contract error code, `status` its HTTP status."""

    def __init__(self, message: str, code: str = C.E_BAD_REQUEST):
        super().__init__(message)
        self.code = code
        self.status = C.STATUS[code]


@dataclass(frozen=True)
class EngineSpec:
    """What an engine can make, as `GET /v1/engines` describes it."""
    name: str
    modes: tuple
    voices: Optional[Collection[str]] = None  # lowercased names without "+variant"; None: no list to check
    variants: Optional[Collection[str]] = None  # lowercased "+variant" names; None: no list to check
    available: bool = True
    reason: str = ""

    @classmethod
    def from_description(cls, info: Mapping) -> "EngineSpec":
        voices, variants = info.get("voices"), info.get("variants")
        return cls(name=info["name"], modes=tuple(info.get("modes", ())), available=bool(info.get("available", True)),
                   voices=None if voices is None else frozenset(v.split("+")[0].lower() for v in voices),
                   variants=None if variants is None else frozenset(v.lower() for v in variants),
                   reason=info.get("reason", ""))


def validate(data: Mapping, *, has_audio: bool = False,
             engines: Optional[Mapping[str, EngineSpec]] = None) -> TakeRequest:
    """A checked TakeRequest from request fields (JSON, form fields, panel settings, CLI flags).

    `engines` (name -> EngineSpec) adds what only the engines know: their modes and voices.
    """
    if not isinstance(data, Mapping):
        _fail('the request must be a JSON object such as {"engine": "phonetic", "mode": "say", "text": "Hello."}')
    unknown = sorted(_printable(k) for k in data if k not in DEFAULTS)
    if unknown:
        _fail(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(FIELDS)}")
    merged = {**DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
    out = {name: _checked(name, SPECS[name], merged[name]) for name in ("fps", "seed", "rate", "pitch",
                                                                         "mouth_only", "intensity", "head_motion")}

    engine, mode = merged["engine"], merged["mode"]
    if not isinstance(engine, str) or not engine or len(engine) > SPECS["engine"].high or not _is_text(engine):
        _fail("engine must be the name of an engine, such as 'phonetic'")
    if not isinstance(mode, str) or mode not in MODES:
        _fail(f"mode must be one of {', '.join(MODES)}", C.E_UNKNOWN_MODE)
    spec = None
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
    if not _is_text(text):
        _fail("the text holds a broken character (an unpaired surrogate, or bytes that are not UTF-8); send it as UTF-8 text")
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

    language = _language(merged["language"], engine, spec)  # first: a dialogue line's voice is made from it
    voice = _voice(merged["voice"], engine, spec)
    mood = merged["mood"]
    if not isinstance(mood, str) or mood.strip().lower() not in MOOD_NAMES:
        _fail(f"mood must be one of {', '.join(MOOD_NAMES)}")
    options = validate_options(merged["options"])
    return TakeRequest(engine=engine, mode=mode, text=text, voice=voice, mood=mood.strip().lower(), options=options,
                       language=language, **out)


def _voice(voice, engine: str, spec: Optional[EngineSpec]):
    if voice is None:
        return None
    if (not isinstance(voice, str) or len(voice) > SPECS["voice"].high or not voice.strip()
            or not _is_text(voice)):
        _fail("voice must be a voice name such as 'en-us'")
    voice = voice.strip()
    name, _, variant = voice.partition("+")
    if spec is not None and spec.voices is not None and name.strip().lower() not in spec.voices:
        some = [v for v in ("en-us", "en-gb", "de", "fr-fr", "es") if v in spec.voices]
        _fail(f"unknown voice {voice!r} for the {engine} engine; use one such as {', '.join(some) or 'its default'}"
              " (`exomni voices` lists them all)")
    if variant and spec is not None and spec.variants is not None and variant.strip().lower() not in spec.variants:
        some = sorted(spec.variants)[:4]
        _fail(f"unknown voice variant {variant!r} for the {engine} engine; use one such as "
              f"{', '.join('+' + v for v in some) or 'none'} after the voice, or no variant")
    return voice


def is_english(language: Optional[str]) -> bool:
    """Whether a language code is English ("", "en", "en-gb" ...): the default every path treats alike."""
    return not language or language == "en" or language.startswith("en-")


def _language(language, engine: str, spec: Optional[EngineSpec]) -> str:
    """A language code the engine's voices know (eSpeak NG's codes are among its voice names)."""
    if (not isinstance(language, str) or len(language) > SPECS["language"].high or not language.strip()
            or not _is_text(language)):
        _fail("language must be a language code such as 'en', 'es' or 'ja'")
    language = language.strip().lower()
    known = spec.voices if spec is not None else None  # "en" stands for its regional voices (en-us, en-gb)
    if known is not None and language not in known and not any(v.startswith(language + "-") for v in known):
        _fail(f"unknown language {language!r} for the {engine} engine; use a code such as en, es, de, fr, it, pt, "
              "ja or cmn (`exomni voices` lists the engine's voices, whose codes it takes)")
    return language


def check_field(name: str, value):
    """One number or switch of the request checked against its declaration (for requests made of parts,
    such as a dialogue plan's frame rate and seed); RequestError as `validate` gives it."""
    return _checked(name, SPECS[name], value)


def is_text(value) -> bool:
    """A str that can be written as UTF-8: no lone surrogates (a JSON body may carry one as an escape)."""
    return isinstance(value, str) and _is_text(value)


def validate_options(options) -> dict:
    """The engine options, each checked against its declaration in OPTIONS."""
    if not isinstance(options, Mapping):
        _fail("options must be a JSON object such as {\"lead_in\": 0}")
    if len(options) > MAX_OPTIONS:
        _fail(f"options has {len(options)} entries; at most {MAX_OPTIONS}")
    out = {}
    for name, value in options.items():
        spec = OPTIONS.get(name)
        if spec is None:
            _fail(f"unknown option {_printable(name)[:40]!r}; the options are {', '.join(OPTIONS)}")
        if value is not None:
            out[name] = _checked(f"option {name}", spec, value)
    return out


def _checked(name: str, spec: Spec, value):
    """A bool, int, float or (an option's) str checked against its Spec."""
    about = f" ({spec.help})"
    if spec.kind is str:
        if not isinstance(value, str) or len(value) > spec.high or not _is_text(value):
            _fail(f"{name} must be text of at most {spec.high} characters{about}")
        return value
    if spec.kind is bool:
        if not isinstance(value, bool):  # "false" as a string would otherwise mean true
            _fail(f"{name} must be true or false{about}")
        return value
    expected = f"{name} must be {spec.describe()}{about}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(expected)
    if isinstance(value, int) and abs(value) > 10**18:  # a 5,000-digit integer: refuse before converting
        _fail(expected)
    if spec.kind is int:
        if not isinstance(value, int):
            _fail(expected)
        if not spec.accepts(value):
            _fail(f"{expected}, not {value}")
        return value
    value = float(value)
    if not (math.isfinite(value) and spec.accepts(value)):
        _fail(f"{expected}, not {value:g}")
    return value


def _is_text(value: str) -> bool:
    """No lone surrogates: text that can be written as UTF-8 (a JSON body may carry one as an escape)."""
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _printable(value) -> str:
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _fail(message: str, code: str = C.E_BAD_REQUEST):
    raise RequestError(message, code)


def bounds(name: str) -> tuple:
    """(low, high) of a request field, from its declaration."""
    return SPECS[name].bounds


FPS_RANGE, INTENSITY_RANGE = bounds("fps"), bounds("intensity")  # the dialogue planner's checks read these
