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
import threading
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
                                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
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
            self._process.stdin.close()
            self._process.stderr.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def wait(helper: Helper, tick: Callable[[], None]) -> Optional[dict]:
    """The helper's result, or None when it failed; `tick` runs every POLL_S meanwhile (a cancelled
    job's progress report raises there, and the caller's `finally` stops the helpers)."""
    while not helper.finished(POLL_S):
        tick()
    return helper.result()


def _die_with_parent(folder: str) -> None:
    """A helper outlives no caller, on every platform: the caller holds the helper's stdin open and
    never writes to it, so end-of-file there means the caller is gone (killed, crashed, or done with
    it). The helper then removes its folder and exits, within a stretch's decoding (pocketsphinx
    lets this thread run between passes)."""
    def watch():
        try:
            sys.stdin.buffer.read()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(3)

    threading.Thread(target=watch, name="exomni-align-helper-watch", daemon=True).start()


def main() -> int:
    job_path, result_path = sys.argv[1:3]
    _die_with_parent(os.path.dirname(job_path))
    with open(job_path, "rb") as f:
        message = pickle.load(f)
    module, name = message["function"]
    result = getattr(importlib.import_module(module), name)(message["job"])
    with open(result_path + ".part", "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(result_path + ".part", result_path)
    return 0


if __name__ == "__main__":
    # Out at once, without the interpreter's shutdown: the watching thread is blocked reading stdin,
    # which the shutdown would wait on. The result file is already closed.
    try:
        code = main()
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        code = 1
    os._exit(code)
