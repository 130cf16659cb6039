"""eSpeak NG through ctypes: speech audio plus the synthesizer's own phoneme, word and sentence times.

The library comes from the `espeakng-loader` wheel (no system install). libespeak-ng keeps global
state (one voice, one callback, one set of parameters), so every call into it holds `_LOCK`, and
this module is the only code in the process that should load it.

eSpeak's wave generator also carries state from one utterance into the next (pitch flutter phase,
gain control, echo buffer, the Klatt generator's filters), so the same text spoken twice differs by
a few samples. To make a take reproducible, one instance is loaded per process and those statics
(plain numbers, no pointers: `_SYNTH_STATE`) are copied back to their values after loading before
each synthesis. The library's symbol table says where they are; a build without one (stripped, or
not ELF) is unloaded and loaded afresh before each synthesis instead, which grows the process by
about 2 KB a time.

Timings are read from the events eSpeak emits while it synthesizes (AUDIO_OUTPUT_SYNCHRONOUS with
phoneme events and IPA names): a phoneme starts at its event's sample position and ends where the
next event (phoneme or pause) starts. Pauses are not phonemes; they are the gaps between them.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from exomni_blender.core.take import Phoneme

from ..base import Cancelled
from exomni_blender.core.errors import ExOmniError

DEFAULT_VOICE = "en-us"
DEFAULT_WPM = 175  # eSpeak's own default speaking rate; `rate` multiplies it
MIN_WPM, MAX_WPM = 80, 450  # the range eSpeak documents for espeakRATE
DEFAULT_PITCH = 50  # eSpeak's base pitch on its 0..100 scale; `pitch` multiplies it
MIN_RATE, MAX_RATE = MIN_WPM / DEFAULT_WPM, MAX_WPM / DEFAULT_WPM
MIN_PITCH, MAX_PITCH = 0.1, 2.0

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA, _INIT_DONT_EXIT = 0x0001, 0x0002, 0x8000
_CHARS_UTF8, _ENDPAUSE = 0x1, 0x1000
_POS_CHARACTER = 1
_EV_END_LIST, _EV_WORD, _EV_SENTENCE, _EV_END, _EV_PHONEME = 0, 1, 2, 5, 7
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE, _P_PUNCTUATION, _P_CAPITALS, _P_WORDGAP = 1, 2, 3, 4, 5, 6, 7
_SILENCE = 1e-3  # peak level under which a nameless event's audio counts as a pause
_BUFFER_MS = 200  # audio per callback; larger means fewer Python round trips


class EspeakError(ExOmniError, RuntimeError):
    """eSpeak NG could not be loaded or failed while synthesizing; the message says what to do."""


class VoiceError(ExOmniError, ValueError):
    """A voice, rate or pitch eSpeak NG cannot use; the message lists what to use instead."""


@dataclass
class Word:
    text: str
    start: float
    end: float


@dataclass
class Synthesis:
    """A spoken line: mono float32 audio and the synthesizer's timeline for it."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[Phoneme]  # IPA, stress marks (ˈ ˌ) kept on the vowel they belong to
    words: list[Word] = field(default_factory=list)
    sentence_starts: list[float] = field(default_factory=list)
    voice: str = DEFAULT_VOICE  # as resolved: the language code (and +variant) that was used

    @property
    def duration(self) -> float:
        return self.audio.size / float(self.sample_rate)


# -- the library ------------------------------------------------------------------------------

class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _Voice(ctypes.Structure):
    # `languages` is a packed list (priority byte, name, NUL ...), so it is read as raw memory.
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

_LOCK = threading.RLock()
_state: dict = {}  # lib, sample_rate, callback, version, voices, variants


class _Collector:
    """Receives audio chunks and events from the synth callback during one espeak_Synth call."""

    def __init__(self, sample_rate: int, cancelled: Optional[Callable[[], bool]]):
        self.sample_rate = sample_rate
        self.cancelled = cancelled
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple] = []  # (type, sample, text_position, length, name)
        self.aborted = False

    def __call__(self, wav, n, events) -> int:
        if n > 0 and wav:
            # Copy the bytes, not a view: np.ctypeslib.as_array makes a ctypes array type per chunk length,
            # and ctypes keeps every such type forever (a slow leak of a few MB per 1,000 takes).
            self.chunks.append(np.frombuffer(ctypes.string_at(wav, 2 * n), dtype="<i2").copy())
        if events:
            i = 0
            while events[i].type != _EV_END_LIST:
                e = events[i]
                name = ""
                if e.type == _EV_PHONEME:
                    name = bytes(e.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self.events.append((e.type, self._sample(e), e.text_position, e.length, name))
                i += 1
        if self.cancelled is not None and self.cancelled():
            self.aborted = True
            return 1
        return 0

    def _sample(self, e) -> int:
        # `sample` is exact; `audio_position` (ms) is the documented field, so it guards the other.
        from_ms = e.audio_position * self.sample_rate / 1000.0
        if abs(e.sample - from_ms) <= 0.003 * self.sample_rate:
            return int(e.sample)
        return int(round(from_ms))


_active: list[Optional[_Collector]] = [None]


def _on_synth(wav, n, events) -> int:
    collector = _active[0]
    return collector(wav, n, events) if collector is not None else 0


# The wave generator's and Klatt generator's statics that one utterance leaves for the next (names as in
# libespeak-ng's symbol table; function-local statics carry a ".N" suffix there). Pointers are left out.
_SYNTH_STATE = frozenset((
    "Flutter_ix amp_inc amp_ix amplitude2 cycle_count cycle_samples echo_buf echo_head echo_tail echo_amp "
    "echo_length echo_complete h_switch_sign harm_inc hf_factor hspect hswitch last_amp_cmd last_pitch_cmd "
    "maxh maxh2 modulation_type n_samples nsamples peak_harmonic peak_height peaks phaseinc sample_count "
    "samplecount_start sourceix syllable_end syllable_start time_count nlast noise vlast kt_globals kt_frame "
    "klattp klattp1 frame_pool ix general_amplitude consonant_amp flutter_amp glottal_reduce").split())


def _elf_symbols(path: str) -> dict:
    """{name: (offset, size, kind)} from an ELF64 little-endian library's symbol tables, kind 1 for data
    objects and 2 for functions ({} for another format)."""
    import struct

    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            return {}
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        found = {}
        for _, section_type, _, _, offset, size, link, _, _, entsize in sections:
            if section_type not in (2, 11) or not entsize:  # SHT_SYMTAB, SHT_DYNSYM
                continue
            strtab = sections[link][4]
            for k in range(offset, offset + size, entsize):
                name_at, info, _, _, value, sym_size = struct.unpack_from("<IBBHQQ", data, k)
                if info & 0xF in (1, 2) and value:
                    end = data.index(b"\0", strtab + name_at)
                    found[data[strtab + name_at:end].decode("ascii", "replace")] = (value, sym_size, info & 0xF)
        return found
    except (OSError, ValueError, IndexError, struct.error):
        return {}


def _state_snapshot(lib, path: str):
    """[(address, bytes)] of the `_SYNTH_STATE` statics as they are now (just after loading), or None
    when the library's symbols cannot be read."""
    symbols = _elf_symbols(path)
    synth = symbols.get("espeak_Synth")
    if synth is None or synth[2] != 2:
        return None
    base = ctypes.cast(lib.espeak_Synth, ctypes.c_void_p).value - synth[0]
    chosen = [(base + offset, size) for name, (offset, size, kind) in symbols.items()
              if kind == 1 and size and name.split(".")[0] in _SYNTH_STATE]
    if len(chosen) < 40:  # another build, other names: do not guess
        return None
    return [(address, ctypes.string_at(address, size)) for address, size in chosen]


def _reset_synth_state() -> bool:
    """Put the wave generator's statics back as they were after loading; False where that is impossible."""
    snapshot = _state.get("snapshot")
    if not snapshot:
        return False
    for address, saved in snapshot:
        ctypes.memmove(address, saved, len(saved))
    return True


def _library():
    """The initialised library (loaded and set up on first use)."""
    with _LOCK:
        if "lib" in _state:
            return _state["lib"]
        return _load()


def _fresh_library():
    """The library with its synthesis state as after loading: its statics put back if it has spoken since
    (reloaded instead where they cannot be found)."""
    with _LOCK:
        if _state.get("dirty") and "lib" in _state and not _reset_synth_state() and _unload():
            return _load()
        return _library()


def _unload() -> bool:
    """Terminate and unload the library so its next load starts clean; False where that is impossible."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    lib = _state.get("lib")
    if lib is None or close is None:
        return False
    lib.espeak_Terminate()
    del _state["lib"]
    close(lib._handle)
    return True


def _load():
    with _LOCK:
        try:
            import espeakng_loader
        except ImportError:
            raise EspeakError("eSpeak NG is not installed; install it with: pip install espeakng-loader") from None
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise EspeakError(f"could not load eSpeak NG from the espeakng-loader wheel ({exc}); "
                              "reinstall it with: pip install --force-reinstall espeakng-loader") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        has_seed = hasattr(lib, "espeak_ng_SetRandSeed")
        if has_seed:
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed.restype = None
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode(), options)
        if rate <= 0:
            raise EspeakError(f"eSpeak NG failed to initialise with its data at {data_path}; "
                              "reinstall it with: pip install --force-reinstall espeakng-loader")
        callback = _state.get("callback") or _Callback(_on_synth)  # kept referenced for the life of the process
        lib.espeak_SetSynthCallback(callback)
        _state.update(lib=lib, sample_rate=int(rate), callback=callback, has_seed=has_seed, dirty=False,
                      version=(lib.espeak_Info(None) or b"").decode())
        _state["snapshot"] = _state_snapshot(lib, espeakng_loader.get_library_path())
        return lib


def sample_rate() -> int:
    _library()
    return _state["sample_rate"]


def version() -> str:
    _library()
    return _state["version"]


def is_available() -> tuple[bool, str]:
    """Whether eSpeak NG loads here, and if not, why and what to do."""
    try:
        _library()
        return True, ""
    except EspeakError as exc:
        return False, str(exc)


# -- voices -----------------------------------------------------------------------------------

def _languages(ptr: int) -> list[tuple[int, str]]:
    out = []
    while ptr:
        priority = ctypes.c_ubyte.from_address(ptr).value
        if priority == 0:
            break
        name = ctypes.string_at(ptr + 1)
        out.append((priority, name.decode("utf-8", "replace")))
        ptr += len(name) + 2
    return out


def _list(spec: Optional[_Voice]) -> list[tuple[str, str, list]]:
    lib = _library()
    found = lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
    out, i = [], 0
    while found and found[i]:
        v = found[i].contents
        out.append(((v.name or b"").decode(), (v.identifier or b"").decode(), _languages(v.languages)))
        i += 1
    return out


def _voice_tables() -> tuple[dict, dict, list]:
    """(language code or name -> voice identifier, variant name lowercased -> file name, voice codes)."""
    with _LOCK:
        if "voices" not in _state:
            best: dict[str, tuple[int, str]] = {}
            primary, code_of = [], {}
            for name, identifier, langs in _list(None):
                if not langs:
                    continue
                primary.append(langs[0][1].lower())
                code_of[identifier] = langs[0][1].lower()
                for priority, code in langs:
                    code = code.lower()
                    if code not in best or priority < best[code][0]:
                        best[code] = (priority, identifier)
                for key in (name.lower(), identifier.lower()):
                    best.setdefault(key, (0, identifier))
            buf = ctypes.create_string_buffer(b"variant")
            spec = _Voice()
            spec.languages = ctypes.cast(buf, ctypes.c_void_p).value
            variants = {}
            for _, identifier, _ in _list(spec):
                file_name = identifier.split("/", 1)[-1]
                variants[file_name.lower()] = file_name
            _state["voices"] = {k: v[1] for k, v in best.items()}
            _state["variants"] = variants
            _state["primary"] = sorted(set(primary))
            _state["code_of"] = code_of
        return _state["voices"], _state["variants"], _state["primary"]


def available_voices() -> list[str]:
    """eSpeak NG voices by language code ("en-us", "en-gb", "fr-fr", ...); add "+variant" for a timbre."""
    return list(_voice_tables()[2])


def available_variants() -> list[str]:
    """Voice variants that can follow a voice after "+": "en-us+f3", "en-gb+m2", ..."""
    return sorted(_voice_tables()[1].values(), key=str.lower)


def accepted_voice_names() -> frozenset:
    """Every base voice name `resolve_voice` accepts, lowercased (variants after "+" are checked there)."""
    return frozenset(_voice_tables()[0])


def resolve_voice(voice: Optional[str]) -> tuple[str, str]:
    """(normalised voice name, the name eSpeak loads) for "en-us", "en-gb+f3", "English (America)", ...

    Raises VoiceError with a list of voices to use when eSpeak has no such voice or variant.
    """
    voice = (voice or DEFAULT_VOICE).strip()
    table, variants, primary = _voice_tables()
    base, _, variant = voice.partition("+")
    base_key = base.strip().lower()
    if base_key not in table:
        some = [v for v in ("en-us", "en-gb", "en-gb-scotland", "de", "fr-fr", "es", "it", "ja") if v in table]
        raise VoiceError(f"unknown voice {voice!r}; use an eSpeak NG voice such as {', '.join(some)} "
                         f"(optionally with a variant, e.g. en-us+f3); "
                         f"{len(primary)} voices in all (`exomni voices` lists them)")
    spoken = table[base_key]
    name = _state["code_of"].get(spoken, base_key) if base_key not in primary else base_key
    if variant:
        key = variant.strip().lower()
        if key not in variants:
            some = ", ".join(v for v in ("f1", "f2", "f3", "f4", "m1", "m2", "m3", "klatt", "whisper") if v in variants)
            raise VoiceError(f"unknown voice variant {variant!r} in {voice!r}; use one of {some} "
                             f"(for example {base_key}+f3); {len(variants)} variants in all")
        spoken += "+" + variants[key]
        name += "+" + variants[key]
    return name, spoken


def check_rate_pitch(rate: float, pitch: float) -> tuple[int, int]:
    """eSpeak's words per minute and 0..100 pitch for the multipliers, or VoiceError saying the range."""
    try:
        rate, pitch = float(rate), float(pitch)
    except (TypeError, ValueError):
        raise VoiceError(f"rate and pitch must be numbers (multipliers, 1.0 = normal), got {rate!r} and {pitch!r}") from None
    if not (MIN_RATE - 1e-9 <= rate <= MAX_RATE + 1e-9):
        raise VoiceError(f"rate {rate:g} is out of range; use a multiplier from {MIN_RATE:.2f} to {MAX_RATE:.2f} "
                         f"(1.0 = {DEFAULT_WPM} words per minute)")
    if not (MIN_PITCH <= pitch <= MAX_PITCH):
        raise VoiceError(f"pitch {pitch:g} is out of range; use a multiplier from {MIN_PITCH} to {MAX_PITCH} (1.0 = normal)")
    wpm = int(round(min(MAX_WPM, max(MIN_WPM, DEFAULT_WPM * rate))))
    return wpm, int(round(min(100, DEFAULT_PITCH * pitch)))


# -- synthesis --------------------------------------------------------------------------------

def synthesize(text: str, voice: Optional[str] = None, rate: float = 1.0, pitch: float = 1.0, seed: int = 0,
               cancelled: Optional[Callable[[], bool]] = None) -> Synthesis:
    """Speak `text` with eSpeak NG: float32 mono audio at its rate (22050 Hz) and its phoneme timeline.

    `cancelled` is polled after each audio chunk; when it returns True synthesis stops and
    `Cancelled` is raised.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text is empty; give the line to speak")
    name, spoken = resolve_voice(voice)
    wpm, pitch_value = check_rate_pitch(rate, pitch)
    payload = text.replace("\0", " ").encode("utf-8")
    with _LOCK:
        lib = _fresh_library()
        sr = _state["sample_rate"]
        _state["dirty"] = True
        if lib.espeak_SetVoiceByName(spoken.encode("utf-8")) != 0:
            raise VoiceError(f"eSpeak NG could not load voice {name!r}; try {DEFAULT_VOICE}")
        for param, value in ((_P_RATE, wpm), (_P_PITCH, pitch_value), (_P_VOLUME, 100), (_P_RANGE, 50),
                             (_P_PUNCTUATION, 0), (_P_CAPITALS, 0), (_P_WORDGAP, 0)):
            lib.espeak_SetParameter(param, value, 0)
        if _state["has_seed"]:
            lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        collector = _Collector(sr, cancelled)
        _active[0] = collector
        try:
            status = lib.espeak_Synth(payload, len(payload) + 1, 0, _POS_CHARACTER, 0,
                                      _CHARS_UTF8 | _ENDPAUSE, None, None)
        finally:
            _active[0] = None
    if collector.aborted:
        raise Cancelled()
    if status != 0:
        raise EspeakError(f"eSpeak NG failed to synthesize the line (status {status}); try shorter text")
    audio = (np.concatenate(collector.chunks).astype(np.float32) / 32768.0) if collector.chunks \
        else np.zeros(0, np.float32)
    phonemes, words, sentences = timeline_from_events(collector.events, audio, sr, text)
    return Synthesis(audio=audio, sample_rate=sr, phonemes=phonemes, words=words,
                     sentence_starts=sentences, voice=name)


def timeline_from_events(events, audio: np.ndarray, sr: int, text: str = ""):
    """(phonemes, words, sentence starts) from eSpeak's event list, all in seconds.

    A phoneme ends where the next phoneme or pause event starts (the last one at the end of
    the audio). Events without an IPA name are pauses when their stretch of audio is silent (eSpeak
    writes exact zeros there) and are left out, so pauses are gaps; a nameless event with sound in
    it (eSpeak's linking between words, as in "the air") continues the phoneme before it, and so
    does a language-switch marker such as "(en)".
    """
    n_samples = int(audio.size)
    marks = sorted((e for e in events if e[0] == _EV_PHONEME), key=lambda e: e[1])
    phonemes: list[Phoneme] = []
    for i, (_, sample, _, _, name) in enumerate(marks):
        sample = min(max(sample, 0), n_samples)
        end = marks[i + 1][1] if i + 1 < len(marks) else n_samples
        end = min(max(end, sample), n_samples)
        if end <= sample:
            continue  # a zero-length marker, e.g. between two pauses
        if not name or _is_marker(name):
            voiced = _is_marker(name) or (audio.size and float(np.max(np.abs(audio[sample:end]))) > _SILENCE)
            if voiced and phonemes and abs(phonemes[-1].end - sample / sr) < 1e-9:
                phonemes[-1].end = end / sr
            continue
        phonemes.append(Phoneme(name, sample / sr, end / sr))
    sentences = sorted({e[1] / sr for e in events if e[0] == _EV_SENTENCE})
    words: list[Word] = []
    word_events = sorted((e for e in events if e[0] == _EV_WORD), key=lambda e: e[1])
    for i, (_, sample, pos, length, _) in enumerate(word_events):
        start = sample / sr
        limit = word_events[i + 1][1] / sr if i + 1 < len(word_events) else n_samples / sr
        spans = [p for p in phonemes if start - 1e-6 <= p.start < limit - 1e-6]
        if not spans:
            continue
        # text_position counts characters from 1
        words.append(Word(text[max(0, pos - 1):max(0, pos - 1) + length] if text else "", spans[0].start, spans[-1].end))
    return phonemes, words, sentences


def _is_marker(name: str) -> bool:
    """eSpeak's language-switch markers ("(en)", "(fr)") arrive as phoneme events but are not sounds."""
    return name.startswith("(") and name.endswith(")")


def phonemize(text: str, voice: Optional[str] = None) -> str:
    """The IPA transcription eSpeak NG gives `text` (words separated by spaces, stress marks kept)."""
    _, spoken = resolve_voice(voice)
    out = []
    with _LOCK:
        lib = _library()
        _state["dirty"] = True
        if lib.espeak_SetVoiceByName(spoken.encode("utf-8")) != 0:
            raise VoiceError(f"eSpeak NG could not load voice {voice!r}; try {DEFAULT_VOICE}")
        buf = ctypes.create_string_buffer(text.replace("\0", " ").encode("utf-8"))
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        while ptr.value:
            chunk = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, 0x02)
            if chunk:
                out.append(chunk.decode("utf-8", "replace").strip())
    return " ".join(s for s in out if s)

