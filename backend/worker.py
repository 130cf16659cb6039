"""The engine worker: a child process that makes takes, so no engine call can stall the HTTP process.

The server (backend.jobs) sends one job at a time over a pipe and may kill this process whenever a
job must stop now; the worker writes each finished take into the store itself and reports back.

Messages to the worker: ("run", job_id, request_fields, audio_path), ("cancel", job_id), ("stop",).
Messages from it: ("engines", [describe()...]), ("progress", job_id, fraction, message),
("event", job_id, payload) (incremental output for streaming clients), ("done", job_id, take_id),
("failed", job_id, code, message), ("cancelled", job_id).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
import traceback

from exomni_blender.core import contract as C
from exomni_blender.core.request import RequestError, TakeRequest

from .engines.base import Cancelled, Progress
from .store import TakeStore, is_disk_full, store_full
from .streaming import make_take_streamed

ENGINE_POLL_S = 0.5  # how often model-loading progress is sent while it changes


def _die_with_parent(parent_pid: int) -> None:
    """A worker outlives no server: on Linux the kernel kills it, elsewhere a watchdog thread does."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="exomni-parent-watch", daemon=True).start()


def main(conn, registry_factory, store_root: str, parent_pid: int, preload: bool = True) -> None:
    _die_with_parent(parent_pid)
    try:  # on a busy machine the API answers first: engines yield the CPU to the HTTP process
        os.nice(5)
    except (AttributeError, OSError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    send_lock = threading.Lock()

    def send(*message):
        with send_lock:
            try:
                conn.send(message)
            except (OSError, EOFError, BrokenPipeError):
                os._exit(0)  # the server is gone

    registry = registry_factory()
    store = TakeStore(store_root, sweep=False)
    jobs: "queue.Queue" = queue.Queue()
    cancelled: set = set()

    def read():
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)
            if message[0] == "run":
                jobs.put(message)
            elif message[0] == "cancel":
                cancelled.add(message[1])
            elif message[0] == "stop":
                os._exit(0)

    threading.Thread(target=read, name="exomni-worker-read", daemon=True).start()
    if preload:
        _preload(registry)

    def report_engines():
        last = None
        while True:
            try:
                now = registry.describe()
            except Exception:  # describing must never take the worker down
                now = last
            if now != last:
                send("engines", now)
                last = now
            time.sleep(ENGINE_POLL_S)

    threading.Thread(target=report_engines, name="exomni-worker-engines", daemon=True).start()

    while True:
        _, job_id, fields, audio_path = jobs.get()
        _run(job_id, fields, audio_path, registry, store, send, lambda job_id=job_id: job_id in cancelled)


def _preload(registry) -> None:
    """Start loading every engine that has a model configured, in the background of this process."""
    for name in registry.names():
        engine = registry.get(name)
        if getattr(engine, "checkpoint", None) and callable(getattr(engine, "preload", None)):
            engine.preload()


def _run(job_id, fields, audio_path, registry, store, send, is_cancelled) -> None:
    def report(fraction, message):
        send("progress", job_id, fraction, message)

    progress = Progress(report, is_cancelled)
    progress.publish = lambda payload: send("event", job_id, payload)  # incremental output, for streaming
    try:
        request = TakeRequest(**fields, audio_path=audio_path)
        engine = registry.get(request.engine)
        take = make_take_streamed(engine, request, progress)  # pieces go out as they are made
        progress.check()
        take_id = store.put(take)
        send("done", job_id, take_id)
    except Cancelled:
        send("cancelled", job_id)
    except RequestError as exc:
        send("failed", job_id, exc.code, str(exc))
    except OSError as exc:
        if is_disk_full(exc):
            send("failed", job_id, C.E_STORE_FULL, str(store_full(store.root)))
        else:
            traceback.print_exc()
            send("failed", job_id, C.E_INTERNAL, f"the engine failed: {exc!r}; see the server log")
    except Exception as exc:  # an engine bug fails its job, never the worker
        traceback.print_exc()
        send("failed", job_id, C.E_INTERNAL, f"the engine failed: {exc!r}; see the server log")
