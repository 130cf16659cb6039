"""Validation of take requests: every rejection says what was wrong and what to send instead."""

from __future__ import annotations

import base64
import binascii
import math
import tempfile
from pathlib import Path

from exomni_blender import contract as C

from ..engines.base import EngineError, TakeRequest
from ..engines.registry import EngineRegistry

AUDIO_MODES = ("lipsync",)  # modes that need a recording


def parse_take_request(data, registry: EngineRegistry, has_audio: bool = False) -> TakeRequest:
    if not isinstance(data, dict):
        raise EngineError("the request body must be a JSON object such as "
                          '{"engine": "phonetic", "mode": "say", "text": "Hello there."}', C.E_BAD_REQUEST)
    unknown = sorted(set(data) - set(C.TAKE_REQUEST_DEFAULTS) - {"audio_base64", "audio_filename"})
    if unknown:
        raise EngineError(f"unknown field(s) {', '.join(unknown)}; accepted fields: "
                          f"{', '.join(C.TAKE_REQUEST_DEFAULTS)}, audio_base64", C.E_BAD_REQUEST)
    merged = {**C.TAKE_REQUEST_DEFAULTS, **{k: v for k, v in data.items() if v is not None or k == "voice"}}

    engine, mode = merged["engine"], merged["mode"]
    if not isinstance(engine, str) or not isinstance(mode, str):
        raise EngineError("engine and mode must be strings", C.E_BAD_REQUEST)
    registry.get(engine, mode)  # unknown engine / mode
    if mode not in C.MODES:
        raise EngineError(f"unknown mode {mode!r}; modes: {', '.join(C.MODES)}", C.E_UNKNOWN_MODE)

    text = merged["text"]
    if not isinstance(text, str):
        raise EngineError("text must be a string", C.E_BAD_REQUEST)
    text = text.strip()
    if not text and not (has_audio and mode in ("lipsync", "chat")):
        what = "a line to speak" if mode == "say" else "a prompt (text, or a recording)"
        raise EngineError(f"text is empty: send {what} in the 'text' field", C.E_EMPTY_TEXT, 422)
    if len(text) > C.MAX_TEXT_CHARS:
        raise EngineError(f"text is {len(text)} characters, over the limit of {C.MAX_TEXT_CHARS}; "
                          "split it into several takes", C.E_TEXT_TOO_LONG, 413)
    if mode in AUDIO_MODES and not has_audio:
        raise EngineError(f"mode {mode!r} needs a recording: upload it as the multipart field 'audio' "
                          "or send it base64-encoded in 'audio_base64'", C.E_BAD_AUDIO, 422)

    fps = _number(merged["fps"], "fps")
    if not (C.MIN_FPS <= fps <= C.MAX_FPS):
        raise EngineError(f"fps must be between {C.MIN_FPS:g} and {C.MAX_FPS:g}, got {fps:g}", C.E_BAD_REQUEST, 422)
    seed = merged["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or not (0 <= seed <= C.MAX_SEED):
        raise EngineError(f"seed must be an integer from 0 to {C.MAX_SEED}", C.E_BAD_REQUEST, 422)
    rate, pitch = _number(merged["rate"], "rate"), _number(merged["pitch"], "pitch")
    for name, value in (("rate", rate), ("pitch", pitch)):
        if not (0.25 <= value <= 4.0):
            raise EngineError(f"{name} is a multiplier between 0.25 and 4, got {value:g}", C.E_BAD_REQUEST, 422)
    voice = merged["voice"]
    if voice is not None and not isinstance(voice, str):
        raise EngineError("voice must be a string such as 'en-us'", C.E_BAD_REQUEST, 422)
    if not isinstance(merged["mouth_only"], bool):  # "false" as a string would otherwise mean true
        raise EngineError("mouth_only must be true or false", C.E_BAD_REQUEST, 422)
    options = merged["options"]
    if not isinstance(options, dict):
        raise EngineError("options must be a JSON object", C.E_BAD_REQUEST, 422)
    return TakeRequest(engine=engine, mode=mode, text=text, fps=fps, voice=voice or None, seed=seed,
                       rate=rate, pitch=pitch, mouth_only=merged["mouth_only"], options=options)


def decode_base64_audio(value, suffix: str = ".wav") -> Path:
    """A small base64 clip to a temp file (the caller removes it); large clips go multipart."""
    if not isinstance(value, str):
        raise EngineError("audio_base64 must be a base64 string", C.E_BAD_AUDIO, 422)
    if len(value) * 3 // 4 > C.MAX_AUDIO_BYTES:
        raise EngineError(f"the clip is over {C.MAX_AUDIO_BYTES // 2**20} MB; upload it as multipart 'audio'",
                          C.E_TOO_LARGE, 413)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EngineError("audio_base64 is not valid base64", C.E_BAD_AUDIO, 422) from None
    fh = tempfile.NamedTemporaryFile(prefix="exomni-upload-", suffix=suffix, delete=False)
    with fh:
        fh.write(data)
    return Path(fh.name)


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise EngineError(f"{name} must be a number", C.E_BAD_REQUEST, 422)
    return float(value)
