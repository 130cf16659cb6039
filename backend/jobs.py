"""Take jobs: durable, bounded, run one at a time by an engine worker process the server manages.

- Accepted means durable: a job is a row in SQLite (`.jobs.sqlite3` in the take store) before its
  202, and its recording lives in the store (`.uploads/<job id>/`), not in a temp folder. After a
  crash (kill -9 included) and a restart, every queued or running job runs again, or ends `failed`
  with the reason when it already took a server down twice or its recording is gone. The same rule
  holds when only the engine worker dies under a job: it runs once more, and a second death fails it.
- The engines run in `backend.worker`, a child process: nothing an engine does stalls the API, and
  cancelling a running job stops it within a second (the worker is killed and restarted when it
  does not stop on its own).
- Bounded: at most `max_queued` jobs wait (then `QueueFull`, a 429 with Retry-After); finished
  jobs are remembered by count and age, and an id that aged out answers "expired", never "no such job".
- Each job keeps an event list the worker appends to (`events()`), for clients that stream output.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import secrets
import shutil
import sqlite3
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

from exomni_blender.core import contract as C
from exomni_blender.core.request import RequestError, TakeRequest

from . import worker as worker_module
from .settings import Settings
from .store import TakeStore, store_full, store_read_only

CANCEL_GRACE_S = 0.5  # a running job that has not stopped by then is stopped by killing its worker
MAX_ATTEMPTS = 2  # a job whose process (worker or server) died under it this many times is not run again
RECENT = 256  # finished jobs kept in memory for polling (the rest are read from SQLite)
UPLOADS = ".uploads"
DB_NAME = ".jobs.sqlite3"
log = logging.getLogger("exomni.jobs")
_JOB_ID = re.compile(r"^[0-9a-f]{16}$")


class QueueFull(RequestError):
    def __init__(self, queued: int, retry_after: int):
        super().__init__(f"the backend is busy: {queued} takes are waiting; try again in {retry_after} s "
                         "(or cancel some of yours)", C.E_BUSY)
        self.retry_after = retry_after


BUSY_TIMEOUT_S = 10.0  # how long a write waits for a jobs database another process holds


def _is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "disk image" in text or "corrupt" in text


def new_job_id(key: bytes | None = None) -> str:
    """16 hex digits: the acceptance time (seconds), 4 random ones, then 4 of a tag keyed with the store's
    id key, so an unknown id can be dated and told apart from one this store never issued. Without a key
    the last 8 digits are random."""
    head = f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(2)}"
    return head + (_id_tag(key, head) if key else secrets.token_hex(2))


def _id_tag(key: bytes, head: str) -> str:
    return hmac.new(key, head.encode("ascii"), hashlib.sha256).hexdigest()[:4]


@dataclass
class Job:
    job_id: str
    request: dict  # TakeRequest fields
    upload: str | None = None
    state: str = C.QUEUED
    progress: float = 0.0
    message: str = "queued"
    take_id: str | None = None
    error: dict | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    cancel_at: float | None = None  # when a cancel of the running job was asked
    events: list = field(default_factory=list)

    def to_json(self) -> dict:
        progress = self.progress if self.state == C.DONE else min(self.progress, 0.99)
        return {"job_id": self.job_id, "state": self.state, "progress": round(progress, 4),
                "message": self.message, "take_id": self.take_id, "error": self.error,
                "engine": self.request.get("engine"), "mode": self.request.get("mode"),
                "created": self.created, "finished": self.finished}


class JobTable:
    """The jobs on disk (SQLite, standard library), one row each; every change is committed at once."""

    COLUMNS = ("job_id", "state", "progress", "message", "take_id", "error", "request", "upload", "created",
               "started", "finished", "attempts")

    def __init__(self, path: Path):
        self.root = path.parent
        self.path = path
        self._lock = threading.Lock()
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise
            self._set_aside(exc)
            self._open()

    def _open(self) -> None:
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None,
                                   timeout=BUSY_TIMEOUT_S)
        try:
            self._create()
            row = self._db.execute("PRAGMA quick_check").fetchone()
            if row and row[0] != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed ({row[0]})")
            self._db.execute(f"SELECT {', '.join(self.COLUMNS)} FROM jobs WHERE state IN (?, ?) LIMIT 1",
                             (C.QUEUED, C.RUNNING)).fetchall()
        except sqlite3.Error:
            self._db.close()
            raise

    def _set_aside(self, exc) -> None:
        """A damaged jobs database renamed beside itself (kept for a look), so a fresh one can start."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                os.replace(part, Path(str(aside) + suffix))
        message = (f"exomni: the jobs database {self.path} was damaged ({exc}); it was set aside as {aside.name} "
                   "and a new one started: jobs queued before are lost, takes in the store are kept")
        print(message, file=sys.stderr, flush=True)

    def _create(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a 202 is a promise: the row is on disk
            self._db.execute("CREATE TABLE IF NOT EXISTS jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                             "job_id TEXT UNIQUE, state TEXT, progress REAL, message TEXT, take_id TEXT, "
                             "error TEXT, request TEXT, upload TEXT, created REAL, started REAL, "
                             "finished REAL, attempts INTEGER)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL)")

    def save(self, job: Job) -> None:
        row = (job.job_id, job.state, job.progress, job.message, job.take_id,
               json.dumps(job.error) if job.error else None, json.dumps(job.request), job.upload, job.created,
               job.started, job.finished, job.attempts)
        try:
            self._upsert(row)
        except sqlite3.Error as exc:
            raise self.fault(exc) from None

    def fault(self, exc: sqlite3.Error) -> Exception:
        """What a database error means for the client: a named store error, or `exc` itself."""
        text = str(exc).lower()
        if "full" in text:  # SQLITE_FULL: the disk under the store
            return store_full(self.root)
        if "locked" in text or "busy" in text:
            return RequestError(f"the jobs database in {self.root} stayed locked by another process for "
                                f"{BUSY_TIMEOUT_S:g} s (a second server on the same store, or a backup holding it); "
                                "retry, or stop the other process", C.E_STORE_BUSY)
        if "readonly" in text or "read-only" in text or "permission" in text or "access" in text:
            return store_read_only(self.root)
        if _is_corrupt(exc):
            return RequestError(f"the jobs database {self.path} is damaged ({exc}); restart the server: it sets "
                                "the file aside and starts a new one (takes are kept)", C.E_STORE_CORRUPT)
        return exc

    def _upsert(self, row) -> None:
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({', '.join(self.COLUMNS)}) VALUES ({', '.join('?' * len(row))}) "
                             "ON CONFLICT(job_id) DO UPDATE SET " +
                             ", ".join(f"{c}=excluded.{c}" for c in self.COLUMNS[1:]), row)

    def load(self, job_id: str) -> Job | None:
        try:
            with self._lock:
                row = self._db.execute(f"SELECT {', '.join(self.COLUMNS)} FROM jobs WHERE job_id=?",
                                       (job_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self.fault(exc) from None
        return self._job(row) if row else None

    def unfinished(self) -> list[Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(self.COLUMNS)} FROM jobs WHERE state IN (?, ?) ORDER BY seq",
                                    (C.QUEUED, C.RUNNING)).fetchall()
        return [self._job(r) for r in rows]

    def forget_old(self, keep: int, max_age_s: float) -> None:
        """Drop finished jobs beyond the newest `keep` or older than `max_age_s`; remember the horizon."""
        finished = tuple(C.FINISHED_STATES)
        where = ("state IN (?, ?, ?) AND (finished < ? OR seq <= COALESCE((SELECT seq FROM jobs WHERE state IN "
                 "(?, ?, ?) ORDER BY seq DESC LIMIT 1 OFFSET ?), -1))")
        args = (*finished, time.time() - max_age_s, *finished, max(keep, 0))
        with self._lock:
            newest = self._db.execute(f"SELECT MAX(created) FROM jobs WHERE {where}", args).fetchone()[0]
            if newest is None:
                return
            self._db.execute("BEGIN")
            self._db.execute(f"DELETE FROM jobs WHERE {where}", args)
            self._db.execute("INSERT INTO meta (key, value) VALUES ('forgotten_until', ?) ON CONFLICT(key) "
                             "DO UPDATE SET value=MAX(value, excluded.value)", (newest,))
            self._db.execute("COMMIT")

    def id_key(self) -> bytes:
        """The store's key for job id tags, made on first use and kept in the database."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='id_key'").fetchone()
            if row is None or not isinstance(row[0], str):
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('id_key', ?)",
                                 ("k" + secrets.token_hex(16),))
                row = self._db.execute("SELECT value FROM meta WHERE key='id_key'").fetchone()
        return row[0].encode("ascii")

    def forgotten_until(self) -> float:
        try:
            with self._lock:
                row = self._db.execute("SELECT value FROM meta WHERE key='forgotten_until'").fetchone()
        except sqlite3.Error as exc:
            raise self.fault(exc) from None
        return row[0] if row else 0.0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _job(self, row) -> Job:
        d = dict(zip(self.COLUMNS, row))
        d["error"] = json.loads(d["error"]) if d["error"] else None
        d["request"] = json.loads(d["request"])
        return Job(**d)


class JobQueue:
    def __init__(self, registry, store: TakeStore, settings: Settings | None = None, registry_factory=None):
        """`registry_factory()` builds the worker's engines in the child (default: the forked `registry`)."""
        self.registry = registry
        self.store = store
        self.settings = settings or Settings()
        self._factory = registry_factory or (lambda: registry)
        self._table = JobTable(store.root / DB_NAME)
        self._id_key = self._table.id_key()
        self._uploads = store.root / UPLOADS
        self._uploads.mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._active: dict[str, Job] = {}  # queued and running
        self._recent: "OrderedDict[str, Job]" = OrderedDict()
        self._queue: deque = deque()
        self._current: Job | None = None
        self._engines: list | None = None  # as the worker last described them
        self._durations: deque = deque(maxlen=20)
        self._finished_since_forget = 0
        self._stopping = False
        self._worker = None
        self._conn = None
        self._wake_r, self._wake_w = multiprocessing.Pipe(duplex=False)
        self._recover()
        self._thread = threading.Thread(target=self._dispatch, name="exomni-jobs", daemon=True)
        self._thread.start()

    # -- the API side --------------------------------------------------------------------------------
    def upload_path(self, job_id: str, suffix: str) -> Path:
        """Where a job's recording is kept (in the store, so it survives a crash with its job)."""
        folder = self._uploads / job_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder / ("audio" + (suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix or "") else ".bin"))

    def discard_upload(self, job_id: str) -> None:
        shutil.rmtree(self._uploads / job_id, ignore_errors=True)

    def check_room(self) -> None:
        with self._lock:
            queued = len(self._queue)
        if queued >= self.settings.max_queued:
            raise QueueFull(queued, self.retry_after(queued))

    def retry_after(self, queued: int) -> int:
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else 2.0
        return int(min(600, max(1, typical * queued / 2)))

    def submit(self, request: TakeRequest, job_id: str | None = None, upload: Path | None = None) -> Job:
        fields = request.to_json()
        job = Job(job_id=job_id or self.new_id(), request=fields, upload=str(upload) if upload else None)
        with self._lock:
            if len(self._queue) >= self.settings.max_queued:
                raise QueueFull(len(self._queue), self.retry_after(len(self._queue)))
            self._table.save(job)  # on disk before anyone is told it was accepted
            self._active[job.job_id] = job
            self._queue.append(job)
        self._wake()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._active.get(job_id) or self._recent.get(job_id)
        if job is None and _JOB_ID.match(job_id or ""):
            job = self._table.load(job_id)
        if job is None:
            raise self._unknown(job_id)
        return job

    def events(self, job_id: str, since: int = 0) -> list:
        return list(self.get(job_id).events[since:])

    def cancel(self, job_id: str) -> Job:
        with self._lock:
            job = self._active.get(job_id)
            if job is not None and job.state == C.QUEUED:
                self._queue.remove(job)
                self._finish(job, C.CANCELLED, "cancelled before it started")
            elif job is not None and job.state == C.RUNNING and job.cancel_at is None:
                job.cancel_at, job.message = time.monotonic(), "cancelling"
                self._send(("cancel", job_id))
        self._wake()
        return job or self.get(job_id)

    def engines(self) -> list:
        """What each engine can do now; model loading progress comes from the worker that loads it."""
        return self._engines if self._engines is not None else self.registry.describe()

    def check_available(self, name: str) -> None:
        for info in self._engines or ():
            if info.get("name") == name:
                if not info.get("available", True):
                    raise RequestError(f"engine {name!r} is not available: {info.get('reason', '')}",
                                       C.E_ENGINE_UNAVAILABLE)
                return
        self.registry.check_available(name)

    def counts(self) -> dict:
        with self._lock:
            return {"queued": len(self._queue), "running": int(self._current is not None)}

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop the worker; queued and running jobs stay on disk and run after the next start."""
        self._stopping = True
        self._wake()
        self._thread.join(wait)
        self._kill_worker()
        with self._lock:
            if self._current is not None:  # a clean stop is not a crash: it runs again, not counted
                job, self._current = self._current, None
                job.state, job.message, job.progress = C.QUEUED, "queued again after a restart", 0.0
                self._table.save(job)
        self._table.close()

    # -- jobs that were accepted before a restart --------------------------------------------------------
    def _recover(self) -> None:
        for job in self._table.unfinished():
            if job.state == C.RUNNING:
                job.attempts += 1
            if job.attempts >= MAX_ATTEMPTS:
                self._finish(job, C.FAILED, "stopped", error=(C.E_INTERNAL, (
                    f"the server stopped {job.attempts} times while this take was being made, so it was not "
                    "tried again; make it again, shorter or on another engine")))
            elif job.upload and not Path(job.upload).is_file():
                self._finish(job, C.FAILED, "recording lost", error=(C.E_BAD_AUDIO, (
                    "the recording of this job was lost while the server was stopped; upload it again")))
            else:
                job.state, job.progress, job.message, job.started = C.QUEUED, 0.0, "queued again after a restart", None
                self._table.save(job)
                self._active[job.job_id] = job
                self._queue.append(job)
        self._table.forget_old(self.settings.keep_jobs, self.settings.keep_job_days * 86400)
        keep = {Path(j.upload).parent.name for j in self._active.values() if j.upload}
        for folder in self._uploads.iterdir():  # recordings of jobs that ended or were never accepted
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)

    def new_id(self) -> str:
        """A job id this store can later recognise as its own (see `new_job_id`)."""
        return new_job_id(self._id_key)

    def issued(self, job_id: str) -> bool:
        """Whether `job_id` carries this store's tag: an id it issued, known or aged out."""
        return bool(_JOB_ID.match(job_id or "")) and hmac.compare_digest(_id_tag(self._id_key, job_id[:12]),
                                                                          job_id[12:])

    def _unknown(self, job_id: str) -> RequestError:
        if self.issued(job_id):
            accepted = int(job_id[:8], 16)
            if accepted <= self._table.forgotten_until():
                days = self.settings.keep_job_days
                return RequestError(
                    f"job {job_id} ended long ago and its record was dropped (this server remembers its last "
                    f"{self.settings.keep_jobs} jobs for {days:g} days); a take it made is still listed at "
                    f"{C.TAKES}", C.E_JOB_EXPIRED)
        return RequestError(f"no job {job_id[:40]!r}: this server never issued it (finished takes are listed "
                            f"at {C.TAKES})", C.E_UNKNOWN_JOB)

    # -- the dispatcher: one thread that feeds the worker and reads what it says ---------------------
    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"!")
        except OSError:
            pass

    def _send(self, message) -> None:
        try:
            if self._conn is not None:
                self._conn.send(message)
        except OSError:
            pass  # a dead worker is noticed and replaced by the dispatcher

    def _start_worker(self) -> None:
        ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=worker_module.main, name="exomni-engine-worker", daemon=True,
                              args=(child, self._factory, str(self.store.root), os.getpid(), self.settings.preload))
        process.start()
        child.close()
        self._worker, self._conn = process, parent

    def _kill_worker(self) -> None:
        process, conn = self._worker, self._conn
        self._worker = self._conn = None
        if process is not None and process.is_alive():
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()
        self.store.sweep()  # a take it was writing is half a take

    def _dispatch(self) -> None:
        while not self._stopping:
            try:
                self._dispatch_once()
            except Exception:  # e.g. no process could be started: say so, wait, try again
                log.exception("the job dispatcher hit an error; retrying in a second")
                time.sleep(1.0)
        self._kill_worker()

    def _dispatch_once(self) -> None:
        """Start the next job when the worker is free, then wait for the worker, a wake-up or a deadline."""
        if self._worker is None:
            self._start_worker()
        with self._lock:
            if self._current is None:
                while self._queue and self._current is None:
                    job = self._queue.popleft()
                    if job.state == C.QUEUED:
                        job.state, job.message, job.started = C.RUNNING, "starting", time.time()
                        job.progress = 0.0
                        self._persist(job)
                        self._current = job
                        self._send(("run", job.job_id, job.request, job.upload))
            current = self._current
        timeout = None
        if current is not None and current.cancel_at is not None:
            timeout = max(0.0, current.cancel_at + CANCEL_GRACE_S - time.monotonic())
        ready = multiprocessing.connection.wait([self._conn, self._wake_r, self._worker.sentinel], timeout)
        if self._wake_r in ready:
            while self._wake_r.poll():
                self._wake_r.recv_bytes()
        if self._conn in ready:
            try:
                while self._conn.poll():
                    self._handle(self._conn.recv())
            except (EOFError, OSError):
                self._worker_died()
                return
        elif self._worker.sentinel in ready:
            self._worker_died()
            return
        with self._lock:
            late = (self._current is not None and self._current.cancel_at is not None
                    and time.monotonic() >= self._current.cancel_at + CANCEL_GRACE_S)
        if late:  # the engine is deep in a call that does not look at cancel: stop its process
            self._kill_worker()
            with self._lock:
                if self._current is not None:
                    self._finish(self._current, C.CANCELLED, "cancelled")

    def _worker_died(self) -> None:
        """One rule for a job whose process died under it, the worker's or the whole server's (`_recover`):
        it runs once more, and a second death fails it, so a take that kills its process cannot loop."""
        code = self._worker.exitcode if self._worker is not None else None
        self._kill_worker()
        with self._lock:
            job, self._current = self._current, None
            if job is None:
                return
            job.attempts += 1
            if job.cancel_at is not None:
                self._finish(job, C.CANCELLED, "cancelled")
            elif job.attempts >= MAX_ATTEMPTS:
                self._finish(job, C.FAILED, "the engine process stopped", error=(C.E_INTERNAL, (
                    f"the engine process stopped {job.attempts} times while making this take (last exit status "
                    f"{code}), so it was not tried again; make it again, shorter or on another engine, and see "
                    "the server log")))
            else:
                log.warning("the engine process stopped (exit status %s) during job %s; running it again", code,
                            job.job_id)
                # Takes are seeded, so the run again streams the same pieces: a client's cursor stays valid.
                job.state, job.progress, job.started, job.events = C.QUEUED, 0.0, None, []
                job.message = f"queued again: the engine process stopped (exit status {code})"
                self._persist(job)
                self._queue.appendleft(job)

    def _handle(self, message) -> None:
        kind = message[0]
        if kind == "engines":
            self._engines = message[1]
            return
        if kind == "done" and (self.settings.keep_takes or self.settings.keep_bytes):
            # Before the job reads "done": whoever sees it done sees the store already within its limits.
            self.store.prune(self.settings.keep_takes, self.settings.keep_bytes, protect={message[2]})
        with self._lock:
            job = self._current
            if job is None or job.job_id != message[1]:
                return  # about a job already ended (e.g. cancelled as the worker finished it)
            if kind == "progress":
                job.progress = max(0.0, min(0.99, float(message[2])))
                if message[3]:
                    job.message = str(message[3])
            elif kind == "event":
                job.events.append(message[2])
            elif kind == "done":
                job.take_id, job.progress = message[2], 1.0
                self._finish(job, C.DONE, "done")
            elif kind == "cancelled":
                self._finish(job, C.CANCELLED, "cancelled")
            elif kind == "failed":
                self._finish(job, C.FAILED, message[3], error=(message[2], message[3]))

    def _persist(self, job: Job) -> None:
        """Save from the dispatcher: a full disk must not stop it (the job still answers from memory)."""
        try:
            self._table.save(job)
        except (RequestError, sqlite3.Error) as exc:
            log.warning("job %s: its state could not be saved (%s)", job.job_id, exc)

    def _finish(self, job: Job, state: str, message: str, error: tuple | None = None) -> None:
        """Called with the lock held (or before the dispatcher runs)."""
        job.message, job.finished = message, time.time()
        job.error = {"code": error[0], "message": error[1]} if error else None
        job.state = state  # last: a poller never sees "failed" without its error
        job.events = []  # streamed output is memory; a finished take streams from the store
        self._persist(job)
        if job.upload:
            shutil.rmtree(Path(job.upload).parent, ignore_errors=True)
        if job is self._current:
            self._current = None
            if job.started:
                self._durations.append(job.finished - job.started)
        self._active.pop(job.job_id, None)
        self._recent[job.job_id] = job
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        self._finished_since_forget += 1
        if self._finished_since_forget >= 50:
            self._finished_since_forget = 0
            self._table.forget_old(self.settings.keep_jobs, self.settings.keep_job_days * 86400)
