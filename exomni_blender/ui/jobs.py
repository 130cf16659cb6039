"""Background work for the add-on: slow calls on worker threads, results applied on the main thread.

Blender's data may only be touched from its main thread, and the UI must never wait on the network.
`start()` runs `work(job)` on a daemon thread. Everything the work reports (progress, its result, its
error) goes through one queue that `pump()` drains on the main thread, where the job's callbacks run.
A `bpy.app.timers` timer calls `pump()` while jobs are alive; scripts and tests running the `bpy`
module (which has no event loop, so timers never fire) call `pump()` or `wait()` themselves.
"""

import itertools
import queue
import threading
import time
import traceback

import bpy

from ..core.errors import ExOmniError

RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
TICK_SECONDS = 0.1

_ids = itertools.count(1)
_events: "queue.Queue" = queue.Queue()
_active: dict = {}  # job id -> Job, until its finish is applied
_latest: dict = {}  # kind -> the most recent Job of that kind (kept after it finishes, for the panel)
_generation = 0  # bumped by shutdown(): events from threads of an earlier registration are dropped


class Cancelled(Exception):
    """Raised by work that noticed its job was cancelled."""


class Job:
    """One piece of background work, as the panel sees it. Its fields change only on the main thread."""

    def __init__(self, kind: str, label: str, on_finish=None, on_progress=None):
        self.id = next(_ids)
        self.kind = kind
        self.label = label
        self.state = RUNNING
        self.progress = 0.0  # 0..1
        self.message = label
        self.error = ""
        self.result = None
        self.remote_id = None  # the server's job id, once known
        self.started = time.monotonic()
        self.finished_at = None
        self._cancel = threading.Event()
        self._on_finish = on_finish
        self._on_progress = on_progress

    # -- either thread ---------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return self.state != RUNNING

    # -- worker thread ------------------------------------------------------------------------
    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def report(self, progress: float, message: str = "") -> None:
        _events.put((_generation, "progress", self, (max(0.0, min(1.0, float(progress))), message)))

    def __repr__(self):
        return f"<Job {self.id} {self.kind} {self.state} {self.progress:.0%} {self.message!r}>"


def start(kind: str, work, label: str = "", on_finish=None, on_progress=None) -> Job:
    """Run `work(job)` on a worker thread; `on_finish(job)` runs on the main thread when it ends."""
    job = Job(kind, label or kind, on_finish, on_progress)
    _active[job.id] = job
    _latest[kind] = job
    thread = threading.Thread(target=_run, args=(job, work, _generation), name=f"exomni-{kind}-{job.id}",
                              daemon=True)
    thread.start()
    _ensure_timer()
    return job


def record(kind: str, message: str, state: str = FAILED) -> Job:
    """A finished entry for something decided at once (bad input, a stop), shown where jobs are shown."""
    job = Job(kind, message)
    job.state, job.message, job.finished_at = state, message, time.monotonic()
    if state == FAILED:
        job.error = message
    _latest[kind] = job
    _redraw()
    return job


def fail(kind: str, message: str) -> Job:
    return record(kind, message, FAILED)


def _run(job: Job, work, generation: int) -> None:
    try:
        outcome = (DONE, work(job))
    except Cancelled:
        outcome = (CANCELLED, None)
    except Exception as exc:  # reported on the main thread; a worker must never die silently
        if not _is_expected(exc):
            traceback.print_exc()
        outcome = (FAILED, exc)
    _events.put((generation, "finish", job, outcome))


def pump() -> int:
    """Apply everything the workers reported so far, on the calling (main) thread. Returns how many."""
    handled = 0
    while True:
        try:
            generation, what, job, payload = _events.get_nowait()
        except queue.Empty:
            break
        if generation != _generation or job.finished:
            continue
        handled += 1
        if what == "progress":
            job.progress, message = payload
            if message:
                job.message = message
            _call(job, job._on_progress)
        else:
            _finish(job, *payload)
    if handled:
        _redraw()
    return handled


def _finish(job: Job, state: str, value) -> None:
    _active.pop(job.id, None)
    job.finished_at = time.monotonic()
    if state == DONE and job.cancel_requested:
        state = CANCELLED  # the user asked to stop: finishing anyway would surprise them
    job.state = state
    if state == DONE:
        job.result, job.progress = value, 1.0
    elif state == CANCELLED:
        job.message = "Cancelled"
    else:
        job.error = error_message(value)
        job.message = job.error
    _call(job, job._on_finish)


def _call(job: Job, callback) -> None:
    if callback is None:
        return
    try:
        callback(job)
    except Exception as exc:  # never let a callback's error escape into Blender's timer loop
        traceback.print_exc()
        job.state = FAILED
        job.error = error_message(exc)
        job.message = job.error


def error_message(exc) -> str:
    if _is_expected(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (details in the system console)"


def _is_expected(exc) -> bool:
    """Errors written for a person are shown as they are, without a traceback."""
    return isinstance(exc, ExOmniError)


# -- queries for the panel and operators ---------------------------------------------------------

def latest(kind: str):
    return _latest.get(kind)


def running(kind: str = None) -> list:
    return [j for j in _active.values() if kind is None or j.kind == kind]


def busy(kind: str = None) -> bool:
    return bool(running(kind))


def cancel(kind: str = None) -> int:
    jobs = running(kind)
    for job in jobs:
        job.cancel()
    return len(jobs)


def wait(job: Job, timeout: float = 60.0, interval: float = 0.02) -> Job:
    """Pump on the calling thread until `job` has finished (for scripts, tests and the bpy module)."""
    deadline = time.monotonic() + timeout
    while not job.finished:
        pump()
        if job.finished:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job!r} did not finish within {timeout:.0f} s")
        time.sleep(interval)
    return job


def shutdown() -> None:
    """Cancel everything and forget it (add-on unregister). Worker threads end on their own."""
    global _generation
    for job in list(_active.values()):
        job.cancel()
    _active.clear()
    _latest.clear()
    _generation += 1
    while True:
        try:
            _events.get_nowait()
        except queue.Empty:
            break
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)


# -- Blender's timer ----------------------------------------------------------------------------

def _tick():
    try:
        pump()
    except Exception:  # Blender drops a timer that raises, and every running job would stall with it
        traceback.print_exc()
    return TICK_SECONDS if (_active or not _events.empty()) else None


def _ensure_timer() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if not bpy.app.timers.is_registered(_tick):
        # persistent: a job started before File > Open still reports after it
        bpy.app.timers.register(_tick, first_interval=TICK_SECONDS, persistent=True)


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES", "SEQUENCE_EDITOR"}:
                area.tag_redraw()
