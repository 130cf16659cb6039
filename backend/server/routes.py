"""The /v1 endpoints as FastAPI routers: health and engines, take jobs, the take store.

Each endpoint reads its services from `request.app.state` (store, jobs, registry, settings), so the
routers hold no state of their own; errors are `RequestError`s whose code fixes the status.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from exomni_blender.core import contract as C
from exomni_blender.core.request import RequestError
from exomni_blender.core.take import AUDIO_WAV, BLENDSHAPES_JSON, TAKE_JSON

from ..audio_input import check_recording
from . import schemas as S
from .requests import (decode_json, form_fields, parse_take_request, read_body, save_base64_audio, save_upload,
                       upload_suffix)

system = APIRouter(tags=["backend"])
jobs_router = APIRouter(tags=["jobs"])
takes_router = APIRouter(tags=["takes"])


@system.get(C.HEALTH, response_model=S.Health, summary="Whether the server is up (and nothing more)")
def health():
    return {"status": "ok"}


@system.get(C.ENGINES, response_model=S.Engines, responses=S.errors(C.E_UNAUTHORIZED))
def engines(request: Request):
    return {"engines": request.app.state.jobs.engines()}


@jobs_router.post(C.TAKES, status_code=202, response_model=S.JobStatus, summary="Start a take job",
                  openapi_extra=S.take_request_body(),
                  responses=S.errors(C.E_BAD_REQUEST, C.E_MALFORMED_JSON, C.E_TOO_LARGE, C.E_BUSY, C.E_STORE_FULL,
                                     C.E_UNSUPPORTED_MEDIA, C.E_ENGINE_UNAVAILABLE, C.E_FORBIDDEN))
async def submit(request: Request):
    jobs, registry = request.app.state.jobs, request.app.state.registry
    jobs.check_room()  # before reading a large upload that would only be refused
    job_id = jobs.new_id()
    upload = filename = None
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=32)
            try:
                data = form_fields(form)
                part = form.get("audio")
                if part is not None and not isinstance(part, str):
                    filename = part.filename or "upload" + upload_suffix(None)
                    upload = jobs.upload_path(job_id, upload_suffix(part.filename))
                    await save_upload(part, upload)
            finally:
                await form.close()  # the parser's spooled copy; the recording now lives in the store
        else:
            data = decode_json(await read_body(request))
            if isinstance(data, dict) and data.get("audio_base64"):
                filename = data.get("audio_filename") or "clip.wav"
                if not isinstance(filename, str):
                    raise RequestError("audio_filename must be a string such as 'line.wav'", C.E_BAD_REQUEST)
                upload = jobs.upload_path(job_id, upload_suffix(filename))
                await run_in_threadpool(save_base64_audio, data["audio_base64"], upload)
        take_request = parse_take_request(data, registry, has_audio=upload is not None)
        jobs.check_available(take_request.engine)
        if upload is not None:
            # A hostile or broken recording is refused now, with its own name, not later in a job.
            take_request.options["audio_filename"] = filename
            await run_in_threadpool(check_recording, upload, filename)
        job = await run_in_threadpool(jobs.submit, take_request, job_id, upload)
    except BaseException:
        jobs.discard_upload(job_id)
        raise
    return JSONResponse(job.to_json(), status_code=202)


@jobs_router.get(C.JOB, response_model=S.JobStatus, responses=S.errors(C.E_UNKNOWN_JOB, C.E_JOB_EXPIRED))
def job_status(job_id: str, request: Request):
    return request.app.state.jobs.get(job_id).to_json()


@jobs_router.delete(C.JOB, response_model=S.JobStatus, summary="Cancel a job (a running one stops within a second)",
                    responses=S.errors(C.E_UNKNOWN_JOB, C.E_JOB_EXPIRED))
def job_cancel(job_id: str, request: Request):
    return request.app.state.jobs.cancel(job_id).to_json()


@takes_router.get(C.TAKES, response_model=S.TakeList)
def take_list(request: Request):
    return {"takes": request.app.state.store.list()}


def _take_file(request: Request, take_id: str, name: str):
    path = request.app.state.store.file(take_id, name)
    if path is None:
        raise RequestError(f"no take {take_id[:70]!r} (or it has no {name}); the takes are listed at {C.TAKES}",
                           C.E_NOT_FOUND)
    return path


@takes_router.get(C.TAKE, response_model=S.TakeInfo, responses=S.errors(C.E_NOT_FOUND, C.E_TAKE_DAMAGED))
def take_info(take_id: str, request: Request):
    _take_file(request, take_id, TAKE_JSON)
    return request.app.state.store.info(take_id)


@takes_router.delete(C.TAKE, response_model=S.Deleted, responses=S.errors(C.E_NOT_FOUND))
def take_delete(take_id: str, request: Request):
    if not request.app.state.store.delete(take_id):
        raise RequestError(f"no take {take_id[:70]!r} to delete; the takes are listed at {C.TAKES}", C.E_NOT_FOUND)
    return {"take_id": take_id, "deleted": True}


def _send_file(request: Request, take_id: str, name: str, media_type: str):
    store = request.app.state.store
    path = _take_file(request, take_id, name)
    reading = store.reading(take_id)
    reading.__enter__()  # released when the response has been sent: retention never prunes it mid-download
    return FileResponse(path, media_type=media_type, background=BackgroundTask(reading.__exit__, None, None, None))


@takes_router.get(C.TAKE_BLENDSHAPES, responses=S.errors(C.E_NOT_FOUND),
                  response_class=FileResponse, summary="The curves as Audio2Face blendshape JSON")
def take_blendshapes(take_id: str, request: Request):
    return _send_file(request, take_id, BLENDSHAPES_JSON, "application/json")


@takes_router.get(C.TAKE_AUDIO, responses=S.errors(C.E_NOT_FOUND), response_class=FileResponse,
                  summary="The take's audio (WAV)")
def take_audio(take_id: str, request: Request):
    return _send_file(request, take_id, AUDIO_WAV, "audio/wav")
