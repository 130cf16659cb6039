"""Validation of take requests: every rejection says what was wrong and what to send instead."""

from __future__ import annotations

import base64
import binascii
import tempfile
from pathlib import Path

from exomni_blender.core import contract as C

from ..engines.base import EngineError, TakeRequest
from ..engines.registry import EngineRegistry

UPLOAD_FIELDS = ("audio_base64", "audio_filename")  # a recording inside a JSON body


def parse_take_request(data, registry: EngineRegistry, has_audio: bool = False) -> TakeRequest:
    """The checked request (the core validator, with the registry's engines), or EngineError."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in UPLOAD_FIELDS}
    try:
        return registry.validate(data, has_audio=has_audio)
    except EngineError as exc:
        if exc.code == C.E_BAD_AUDIO and not has_audio:  # say how a recording travels over HTTP
            raise EngineError(f"{exc}: upload it as the multipart file field 'audio', or send it base64-encoded "
                              "in 'audio_base64' with its 'audio_filename'", exc.code) from None
        raise


def decode_base64_audio(value, suffix: str = ".wav") -> Path:
    """A small base64 clip to a temp file (the caller removes it); large clips go multipart."""
    if not isinstance(value, str):
        raise EngineError("audio_base64 must be a base64 string", C.E_BAD_AUDIO)
    if len(value) * 3 // 4 > C.MAX_AUDIO_BYTES:
        raise EngineError(f"the clip is over {C.MAX_AUDIO_BYTES // 2**20} MB; upload it as multipart 'audio'",
                          C.E_TOO_LARGE)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EngineError("audio_base64 is not valid base64", C.E_BAD_AUDIO) from None
    fh = tempfile.NamedTemporaryFile(prefix="exomni-upload-", suffix=suffix, delete=False)
    with fh:
        fh.write(data)
    return Path(fh.name)
