"""The backend's HTTP API (FastAPI), versioned under /v1: the app, its guard and its error replies.

Endpoints live in `routes.py` (and the dialogue planner's router); the guard in `guard.py` decides
which requests reach them; jobs run in an engine worker process (`backend.jobs`).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from exomni_blender.core import contract as C
from exomni_blender.core.errors import ExOmniError

from .. import __version__
from ..dialogue.service import make_router as make_dialogue_router
from ..engines.registry import EngineRegistry
from ..jobs import JobQueue, QueueFull
from ..settings import Settings
from ..store import TakeStore
from .guard import Guard
from .routes import jobs_router, system, takes_router
from .stream import stream_router

log = logging.getLogger("exomni.server")


def error(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_app(store_dir=None, registry: EngineRegistry | None = None, token: str | None = None, *,
               settings: Settings | None = None, registry_factory=None, body_timeout: float | None = None) -> FastAPI:
    """The app over a take store. `settings` (host, token, origins, limits) defaults to Settings();
    `token`/`store_dir` given here win. `registry_factory` builds the worker's engines (default: a copy
    of `registry`); `body_timeout`: seconds the guard waits for the next piece of a request body."""
    settings = (settings or Settings()).but(token=token, store=Path(store_dir) if store_dir else None)
    if settings.token == "":
        raise ValueError("an empty token would turn authentication off; give a real one or none")
    registry = registry if registry is not None else registry_factory()
    store = TakeStore(settings.store)
    jobs = JobQueue(registry, store, settings, registry_factory=registry_factory)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        jobs.shutdown()

    docs = settings.docs
    app = FastAPI(title="Ex-Omni backend", version=__version__, lifespan=lifespan,
                  docs_url="/docs" if docs else None, redoc_url=None,
                  description="Talking-head takes: ARKit-52 blendshape curves and speech. Every POST needs "
                              f"`Content-Type: application/json` or the `{C.CLIENT_HEADER}` header.")
    app.state.store, app.state.jobs, app.state.registry, app.state.settings = store, jobs, registry, settings
    app.add_middleware(Guard, token=settings.token, bound_host=settings.host, allow_hosts=settings.allow_hosts,
                       allow_origins=settings.allow_origins,
                       **({"body_timeout": body_timeout} if body_timeout is not None else {}))
    _add_error_handlers(app)
    app.include_router(system)
    app.include_router(jobs_router)
    app.include_router(takes_router)
    app.include_router(stream_router)
    app.include_router(make_dialogue_router(registry))
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ExOmniError)
    async def on_user_error(_request, exc: ExOmniError):
        code = getattr(exc, "code", C.E_BAD_REQUEST)
        code = code if code in C.STATUS else C.E_BAD_REQUEST
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFull) else None
        return error(C.STATUS[code], code, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request, exc):
        if exc.status_code == 404:
            return error(404, C.E_NOT_FOUND, f"no such endpoint {request.url.path[:100]}; endpoints live under "
                                             f"{C.API_PREFIX}")
        if exc.status_code == 405:
            return error(405, C.E_BAD_REQUEST, f"{request.method} is not allowed on {request.url.path[:100]}")
        if exc.status_code == 413:
            return error(413, C.E_TOO_LARGE, str(exc.detail))
        return error(exc.status_code if 400 <= exc.status_code < 500 else 400, C.E_BAD_REQUEST, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request, exc):
        return error(422, C.E_BAD_REQUEST, f"invalid request: {str(exc.errors())[:300]}")

    @app.exception_handler(RecursionError)
    async def on_deep_json(_request, _exc):
        return error(400, C.E_MALFORMED_JSON, "the request body is JSON nested too deeply; send a flat JSON object")

    @app.exception_handler(OSError)
    async def on_os_error(_request, exc: OSError):
        from ..store import is_disk_full, is_read_only, store_read_only

        if is_disk_full(exc):
            store = app.state.store.root
            return error(507, C.E_STORE_FULL, f"the take store is full: free space in {store} or set retention "
                                              "(exomni serve --keep-takes N or --keep-bytes SIZE)")
        if is_read_only(exc):
            return error(C.STATUS[C.E_STORE_READ_ONLY], C.E_STORE_READ_ONLY, str(store_read_only(app.state.store.root)))
        log.exception("unexpected error")
        return error(500, C.E_INTERNAL, f"internal error ({type(exc).__name__}); the server keeps running, see its log")

    @app.exception_handler(Exception)
    async def on_unexpected(_request, exc):
        log.exception("unexpected error")
        return error(500, C.E_INTERNAL, f"internal error ({type(exc).__name__}); the server keeps running, see its log")
