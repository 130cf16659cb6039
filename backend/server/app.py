"""The backend's HTTP API (FastAPI), versioned under /v1. Paths and codes come from the contract."""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager
import json
import logging
import shutil
import tempfile
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from exomni_blender.core import contract as C
from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON

from .. import __version__
from ..audio_input import load_recording
from ..dialogue.service import make_router as make_dialogue_router
from ..engines.base import EngineError
from ..engines.registry import EngineRegistry
from ..jobs import JobQueue
from ..store import TakeStore
from .requests import decode_base64_audio, parse_take_request

log = logging.getLogger("exomni.server")


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(store_dir, registry: EngineRegistry, token: str | None = None) -> FastAPI:
    store = TakeStore(store_dir)
    jobs = JobQueue(registry, store)
    @asynccontextmanager
    async def lifespan(_app):
        yield
        jobs.shutdown()

    app = FastAPI(title="Ex-Omni backend", version=__version__, lifespan=lifespan,
                  description="Talking-head takes: ARKit-52 blendshape curves and speech.")
    app.state.store, app.state.jobs, app.state.registry = store, jobs, registry

    @app.middleware("http")
    async def check_token(request: Request, call_next):
        if token and request.url.path != C.HEALTH:
            sent = request.headers.get(C.TOKEN_HEADER, "")
            if not hmac.compare_digest(sent, f"Bearer {token}"):
                return error(401, C.E_UNAUTHORIZED, "missing or wrong token: set the token the server was "
                             "started with in the add-on preferences (sent as 'Authorization: Bearer <token>')")
        return await call_next(request)

    @app.exception_handler(EngineError)
    async def on_engine_error(_request, exc: EngineError):
        return error(exc.status, exc.code, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request, exc):
        if exc.status_code == 404:
            return error(404, C.E_NOT_FOUND, f"no such endpoint {request.url.path}; endpoints live under {C.API_PREFIX}")
        if exc.status_code == 405:
            return error(405, C.E_BAD_REQUEST, f"{request.method} is not allowed on {request.url.path}")
        return error(exc.status_code, C.E_BAD_REQUEST, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request, exc):
        return error(422, C.E_BAD_REQUEST, f"invalid request: {exc.errors()}")

    @app.exception_handler(Exception)
    async def on_unexpected(_request, exc):
        log.exception("unexpected error")
        return error(500, C.E_INTERNAL, f"internal error ({type(exc).__name__}); the server keeps running, see its log")

    app.include_router(make_dialogue_router(registry))

    @app.get(C.HEALTH)
    def health():
        return {"status": "ok", "version": __version__, "api": C.API_PREFIX, "engines": registry.names()}

    @app.get(C.ENGINES)
    def engines():
        return {"engines": registry.describe()}

    @app.post(C.TAKES, status_code=202)
    async def submit(request: Request):
        ctype = request.headers.get("content-type", "")
        upload = None
        try:
            if ctype.startswith("multipart/form-data"):
                data, upload, filename = await _read_multipart(request)
            else:
                data = await _read_json(request)
                filename = None
                if isinstance(data, dict) and data.get("audio_base64"):
                    filename = data.get("audio_filename") or "clip.wav"
                    if not isinstance(filename, str):
                        raise EngineError("audio_filename must be a string such as 'line.wav'", C.E_BAD_REQUEST)
                    upload = decode_base64_audio(data["audio_base64"], Path(filename).suffix or ".wav")
            req = parse_take_request(data, registry, has_audio=upload is not None)
            registry.check_available(req.engine)
            if upload is not None:
                # A bad recording is refused now, with its own name in the message, not later in a job.
                req.options["audio_filename"] = filename
                await run_in_threadpool(load_recording, upload, name=filename)
        except BaseException:
            if upload is not None:
                upload.unlink(missing_ok=True)
            raise
        if upload is not None:
            req.audio_path = str(upload)
        job = jobs.submit(req, cleanup=[upload] if upload else [])
        return JSONResponse(job.to_json(), status_code=202)

    @app.get(C.JOB)
    def job_status(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            raise EngineError(f"no job {job_id!r}: it never existed or the server restarted "
                              "(finished takes survive restarts: list them at /v1/takes)", C.E_NOT_FOUND)
        return job.to_json()

    @app.delete(C.JOB)
    def job_cancel(job_id: str):
        job = jobs.cancel(job_id)
        if job is None:
            raise EngineError(f"no job {job_id!r} to cancel", C.E_NOT_FOUND)
        return job.to_json()

    @app.get(C.TAKES)
    def take_list():
        return {"takes": store.list()}

    def _take_file(take_id: str, name: str):
        path = store.file(take_id, name)
        if path is None:
            raise EngineError(f"no take {take_id!r} (or it has no {name})", C.E_NOT_FOUND)
        return path

    @app.get(C.TAKE)
    def take_info(take_id: str):
        _take_file(take_id, TAKE_JSON)
        return store.info(take_id)

    @app.get(C.TAKE_BLENDSHAPES)
    def take_blendshapes(take_id: str):
        return FileResponse(_take_file(take_id, BLENDSHAPES_JSON), media_type="application/json")

    @app.get(C.TAKE_AUDIO)
    def take_audio(take_id: str):
        return FileResponse(_take_file(take_id, AUDIO_WAV), media_type="audio/wav")

    return app


async def _read_json(request: Request):
    body = await request.body()
    if not body.strip():
        raise EngineError('the request body is empty; send JSON such as {"text": "Hello there."}',
                          C.E_MALFORMED_JSON)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineError(f"the request body is not valid JSON ({exc}); send a JSON object", C.E_MALFORMED_JSON) from None


FORM_NUMBERS = {"fps": float, "seed": int, "rate": float, "pitch": float}


async def _read_multipart(request: Request):
    """Form fields (or one 'request' JSON field) plus the 'audio' file, copied to disk under a size cap."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > C.MAX_AUDIO_BYTES + 1_000_000:
        raise EngineError(f"upload is {declared // 2**20} MB, over the {C.MAX_AUDIO_BYTES // 2**20} MB limit; "
                          "trim or compress the recording", C.E_TOO_LARGE)
    form = await request.form(max_files=1, max_fields=32)
    data: dict = {}
    if "request" in form:
        try:
            data = json.loads(form["request"])
        except (json.JSONDecodeError, TypeError):
            data = None
        if not isinstance(data, dict):
            raise EngineError("the 'request' form field must hold a JSON object such as "
                              '{"mode": "lipsync", "text": "..."}', C.E_MALFORMED_JSON)
    for key, value in form.multi_items():
        if key in ("request", "audio") or not isinstance(value, str):
            continue
        try:
            data[key] = FORM_NUMBERS[key](value) if key in FORM_NUMBERS else (
                value.lower() in ("1", "true", "yes") if key == "mouth_only" else value)
        except ValueError:
            raise EngineError(f"form field {key!r} must be a number, got {value!r}", C.E_BAD_REQUEST) from None
    upload = form.get("audio")
    if upload is None or isinstance(upload, str):
        return data, None, None
    suffix = Path(upload.filename or "clip.wav").suffix or ".wav"
    fh = tempfile.NamedTemporaryFile(prefix="exomni-upload-", suffix=suffix, delete=False)
    size = 0
    try:
        with fh:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > C.MAX_AUDIO_BYTES:
                    raise EngineError(f"the recording is over the {C.MAX_AUDIO_BYTES // 2**20} MB limit; "
                                      "trim or compress it", C.E_TOO_LARGE)
                fh.write(chunk)
    except BaseException:  # over the cap, a full disk, a dropped client: no half upload stays behind
        Path(fh.name).unlink(missing_ok=True)
        raise
    finally:
        await upload.close()
    return data, Path(fh.name), upload.filename or "upload" + suffix
