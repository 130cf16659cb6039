"""The job queue: take requests run one at a time on a worker thread, with progress and cancel.

One worker, because engines hold large models and the embedded engine's synthesizer is a
process-wide library; queued jobs wait their turn in order.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field

from exomni_blender.core import contract as C

from .engines.base import Cancelled, EngineError, Progress, TakeRequest
from .engines.registry import EngineRegistry
from .store import TakeStore

MAX_FINISHED_JOBS = 1000  # finished jobs kept in memory for polling; takes themselves stay on disk


@dataclass
class Job:
    request: TakeRequest
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    state: str = C.QUEUED
    progress: float = 0.0
    message: str = "queued"
    take_id: str | None = None
    error: dict | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel_requested: bool = False
    cleanup: list = field(default_factory=list)  # temp files (uploads) removed when the job ends

    def to_json(self) -> dict:
        return {"job_id": self.job_id, "state": self.state, "progress": round(self.progress, 4),
                "message": self.message, "take_id": self.take_id, "error": self.error,
                "engine": self.request.engine, "mode": self.request.mode,
                "created": self.created, "finished": self.finished}


class JobQueue:
    def __init__(self, engines: EngineRegistry, store: TakeStore):
        self.engines = engines
        self.store = store
        self._jobs: dict[str, Job] = {}  # in submission order
        self._lock = threading.Lock()
        self._queue: "queue.Queue[Job | None]" = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="exomni-jobs", daemon=True)
        self._worker.start()

    def submit(self, request: TakeRequest, cleanup=()) -> Job:
        job = Job(request=request, cleanup=list(cleanup))
        with self._lock:
            self._jobs[job.job_id] = job
            self._forget_old()
        self._queue.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == C.QUEUED:
                self._finish(job, C.CANCELLED, "cancelled before it started")
            elif job.state == C.RUNNING:
                job.cancel_requested = True
                job.message = "cancelling"
            return job

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop the worker. Queued jobs are cancelled (their uploads removed, which a stopped process
        could no longer do) and the running one is asked to stop; waits up to `wait` seconds for it."""
        with self._lock:
            for job in self._jobs.values():
                if job.state == C.QUEUED:
                    self._finish(job, C.CANCELLED, "cancelled: the server stopped")
                elif job.state == C.RUNNING:
                    job.cancel_requested = True
        self._queue.put(None)
        self._worker.join(wait)

    def _forget_old(self) -> None:
        while len(self._jobs) > MAX_FINISHED_JOBS:
            oldest = next(iter(self._jobs.values()))
            if oldest.state not in C.FINISHED_STATES:
                break
            del self._jobs[oldest.job_id]

    def _finish(self, job: Job, state: str, message: str, error: dict | None = None) -> None:
        # The state last: a poller reading without the lock never sees "failed" without its error.
        job.message, job.error, job.finished = message, error, time.time()
        job.state = state
        for path in job.cleanup:
            try:
                path.unlink()
            except OSError:
                pass

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.state != C.QUEUED:  # cancelled while waiting
                    continue
                job.state, job.message = C.RUNNING, "starting"

            def report(fraction, message, job=job):
                job.progress = fraction
                if message:
                    job.message = message

            progress = Progress(report, lambda job=job: job.cancel_requested)
            try:
                engine = self.engines.get(job.request.engine)
                take = engine.make_take(job.request, progress)
                progress.check()
                take_id = self.store.put(take)
                with self._lock:
                    job.take_id, job.progress = take_id, 1.0
                    self._finish(job, C.DONE, "done")
            except Cancelled:
                with self._lock:
                    self._finish(job, C.CANCELLED, "cancelled")
            except EngineError as exc:
                with self._lock:
                    self._finish(job, C.FAILED, str(exc), {"code": exc.code, "message": str(exc)})
            except Exception as exc:  # an engine bug must not kill the worker or the server
                traceback.print_exc()
                with self._lock:
                    self._finish(job, C.FAILED, f"internal error: {exc}",
                                 {"code": C.E_INTERNAL, "message": f"the engine failed: {exc!r}; see the server log"})
