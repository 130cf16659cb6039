"""Reading a take request off the wire: JSON or multipart, with the recording saved into the store.

Checking it is the one validator's job (`EngineRegistry.validate` = `exomni_blender.core.request.validate`);
every refusal here says what was wrong and what to send instead.
"""

from __future__ import annotations

import base64
import binascii
import json
from contextlib import contextmanager
from pathlib import Path

from exomni_blender.core import contract as C
from exomni_blender.core import request as R

from ..engines.base import EngineError, TakeRequest
from ..engines.registry import EngineRegistry
from ..store import is_disk_full, store_full

UPLOAD_FIELDS = ("audio_base64", "audio_filename")  # a recording inside a JSON body
# Form fields arrive as strings; the declared numbers and switches are converted before the validator sees them.
FORM_NUMBERS = {name: spec.kind for name, spec in R.SPECS.items() if spec.kind in (int, float)}
FORM_SWITCHES = tuple(name for name, spec in R.SPECS.items() if spec.kind is bool)
MAX_FORM_FIELDS = 32


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


def decode_json(body: bytes):
    if not body.strip():
        raise EngineError('the request body is empty; send JSON such as {"text": "Hello there."}', C.E_MALFORMED_JSON)
    try:
        return json.loads(body)
    except RecursionError:
        raise EngineError("the request body is JSON nested too deeply; send a flat JSON object",
                          C.E_MALFORMED_JSON) from None
    except ValueError as exc:  # bad JSON, bad UTF-8, or a number with thousands of digits
        raise EngineError(f"the request body is not valid JSON ({str(exc)[:160]}); send a JSON object",
                          C.E_MALFORMED_JSON) from None


async def read_body(request) -> bytes:
    """The body (the guard in front has already capped it while it streamed in)."""
    chunks = []
    async for chunk in request.stream():
        chunks.append(chunk)
    return b"".join(chunks)


def save_base64_audio(value, target: Path) -> None:
    """A small base64 clip from a JSON body, written to the job's upload path."""
    if not isinstance(value, str):
        raise EngineError("audio_base64 must be a base64 string", C.E_BAD_AUDIO)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EngineError("audio_base64 is not valid base64", C.E_BAD_AUDIO) from None
    _write(target, [data])


def form_fields(form) -> dict:
    """The take request from form fields, or from one 'request' field holding the JSON object."""
    data: dict = {}
    if "request" in form:
        raw = form["request"]
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise EngineError("the 'request' form field must hold a JSON object such as "
                              '{"mode": "lipsync", "text": "..."}', C.E_MALFORMED_JSON)
    for key, value in form.multi_items():
        if key in ("request", "audio") or not isinstance(value, str):
            continue
        try:
            data[key] = FORM_NUMBERS[key](value) if key in FORM_NUMBERS else (
                value.lower() in ("1", "true", "yes") if key in FORM_SWITCHES else value)
        except ValueError:
            raise EngineError(f"form field {key!r} must be a number, got {value[:40]!r}", C.E_BAD_REQUEST) from None
    return data


async def save_upload(upload, target: Path) -> None:
    """The multipart file, copied into the store chunk by chunk (the guard caps the whole body)."""
    try:
        with _writing(target) as fh:
            while chunk := await upload.read(1 << 20):
                fh.write(chunk)
    finally:
        await upload.close()


def upload_suffix(filename: str | None) -> str:
    return Path(filename or "clip.wav").suffix.lower() or ".wav"


def _write(target: Path, parts) -> None:
    with _writing(target) as fh:
        for part in parts:
            fh.write(part)


@contextmanager
def _writing(target: Path):
    """An upload file open for writing; on failure nothing half-written stays, and a full disk is the
    store's `store_full`, not a bare OSError."""
    try:
        with open(target, "wb") as fh:
            yield fh
    except OSError as exc:
        target.unlink(missing_ok=True)
        if is_disk_full(exc):
            raise store_full(target.parent.parent.parent) from None
        raise
