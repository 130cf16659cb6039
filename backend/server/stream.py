"""GET /v1/jobs/{id}/stream: a take job's output as it is made, as server-sent events.

The wire is defined in `contract` (STREAM_*); the events are made in the engine worker
(`backend.streaming.make_take_streamed`) and kept on the job (`JobQueue.events`) while it runs, so a
client that connects late first gets everything already made. A finished job's events are dropped
and what a client still lacks is read from the stored take instead (the same bytes), so a client
that connects after the end, or while the job ends, still gets the whole take. The guard applies its
Host, Origin and token rules here as everywhere.
"""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from exomni_blender.core import contract as C

from ..streaming import stored_take_events
from . import schemas as S

POLL_S = 0.02  # how often a running job's new events are looked for

stream_router = APIRouter(tags=["jobs"])


def sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode("utf-8")


class Cursor:
    """What a client holds: samples and frames sent so far (a `start` below it replaces from there)."""

    def __init__(self):
        self.samples = 0
        self.frames = 0

    def sent(self, name: str, data: dict) -> None:
        if name == C.STREAM_AUDIO:
            self.samples = data["start"] + data["count"]
        elif name == C.STREAM_FRAMES:
            self.frames = data["start"] + data["count"]


@stream_router.get(C.JOB_STREAM, summary="The job's audio and blendshape frames as they are made (server-sent events)",
                   response_class=StreamingResponse, responses=S.errors(C.E_UNKNOWN_JOB, C.E_JOB_EXPIRED))
async def job_stream(job_id: str, request: Request):
    jobs, store = request.app.state.jobs, request.app.state.store
    jobs.get(job_id)  # an unknown job is a 404 now, not an empty stream

    async def events():
        cursor, seen, shown = Cursor(), 0, None
        keepalive = time.monotonic()
        while True:
            job = jobs.get(job_id)
            state = job.state  # read before the events: once finished, the events are complete
            pending = job.events[seen:]
            seen += len(pending)
            for name, data in pending:
                cursor.sent(name, data)
                yield sse(name, data)
            status = (job.state, round(job.progress, 3), job.message)
            if status != shown and state not in C.FINISHED_STATES:
                shown = status
                yield sse(C.STREAM_PROGRESS, {"state": status[0], "progress": status[1], "message": status[2]})
            if state in C.FINISHED_STATES:
                if state == C.DONE and job.take_id:
                    folder = store.path(job.take_id)
                    if folder is not None:
                        with store.reading(job.take_id):  # only while the files are opened
                            rest = await run_in_threadpool(stored_take_events, folder, cursor.samples, cursor.frames)
                        try:
                            while (event := await run_in_threadpool(next, rest, None)) is not None:
                                cursor.sent(*event)
                                yield sse(*event)
                                if await request.is_disconnected():
                                    return
                        finally:
                            rest.close()
                yield sse(C.STREAM_END, job.to_json())
                return
            if pending:
                keepalive = time.monotonic()
            elif time.monotonic() - keepalive >= C.STREAM_KEEPALIVE_S:
                keepalive = time.monotonic()
                yield b": alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(POLL_S)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
