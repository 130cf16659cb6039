"""Helper processes for a long recording's alignment: each aligns one part of it at once with the
others (see `align.part_spans`), on a core of its own.

pocketsphinx holds Python's lock while it decodes, so threads would take turns; processes do not.
A helper is this module run by the same Python (`python -m`), with the caller's import path: it
reads one pickled job from a file, runs the module-level function it names on it (`align.run_part`),
and writes the pickled result beside it. This module knows nothing of alignment itself.
Helpers are started with `subprocess`, not `multiprocessing`, because the server's engine worker is
itself a daemon process, which multiprocessing forbids to have children.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

POLL_S = 0.25  # how often a wait for a helper reports progress (and so may be cancelled)


class Helper:
    """One job in a helper process, started at once; `wait` takes its result, `stop` ends it.

    The job and the result go through files, not pipes: pocketsphinx holds Python's lock for a
    whole stretch, so a thread feeding a pipe from the caller would starve while the caller decodes
    its own part (measured: the helper then started only after the caller had finished)."""

    def __init__(self, function: Callable[[dict], dict], job: dict):
        self.failed = ""
        self._folder = tempfile.mkdtemp(prefix="exomni-align-")
        self._job, self._result = (os.path.join(self._folder, name) for name in ("job.pickle", "result.pickle"))
        with open(self._job, "wb") as f:
            pickle.dump({"function": (function.__module__, function.__qualname__), "job": job}, f,
                        protocol=pickle.HIGHEST_PROTOCOL)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        try:
            self._process = subprocess.Popen([sys.executable, "-m", __name__, self._job, self._result],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            self._process, self.failed = None, f"could not start: {exc}"

    def finished(self, timeout: float) -> bool:
        if self._process is None:
            return True
        try:
            self._process.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def result(self) -> Optional[dict]:
        if self._process is None:
            return None
        if self._process.returncode != 0:
            self.failed = self._process.stderr.read().decode("utf-8", "replace").strip()[-500:]
            return None
        try:
            with open(self._result, "rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            self.failed = str(exc)
            return None

    def stop(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
            self._process.stderr.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def wait(helper: Helper, tick: Callable[[], None]) -> Optional[dict]:
    """The helper's result, or None when it failed; `tick` runs every POLL_S meanwhile (a cancelled
    job's progress report raises there, and the caller's `finally` stops the helpers)."""
    while not helper.finished(POLL_S):
        tick()
    return helper.result()


def _die_with_parent() -> None:
    """A helper outlives no caller: on Linux the kernel ends it with its parent (a killed engine
    worker); elsewhere it ends when it next writes to the closed pipe."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def main() -> int:
    _die_with_parent()
    job_path, result_path = sys.argv[1:3]
    with open(job_path, "rb") as f:
        message = pickle.load(f)
    module, name = message["function"]
    started = time.perf_counter()
    result = getattr(importlib.import_module(module), name)(message["job"])
    result["seconds"] = time.perf_counter() - started
    with open(result_path + ".part", "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(result_path + ".part", result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
