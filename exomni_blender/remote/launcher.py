"""The backend as a child process of Blender: find `exomni`, start `exomni serve`, watch it, stop it.

The backend lives in its own Python environment (it needs torch, eSpeak NG, FastAPI...), never in
Blender's. The add-on only needs its command: `exomni` on PATH, the full path of the executable, or
the virtual environment folder that holds it.
"""

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .client import BackendError, Client, host_and_port, is_local_url

LOG_NAME = "exomni-backend.log"

_process = None  # the subprocess.Popen this Blender session started
_log_path = None


def resolve_command(command: str) -> list:
    """argv for the backend command, with its program resolved to an existing executable."""
    try:
        argv = shlex.split(command or "exomni", posix=os.name != "nt")
    except ValueError as exc:
        raise BackendError(f"Backend command {command!r} cannot be parsed ({exc}); "
                           "fix it in the add-on preferences.") from None
    if not argv:
        argv = ["exomni"]
    program = os.path.expanduser(argv[0])
    if os.path.isdir(program):  # a virtual environment folder
        for sub in (("bin", "exomni"), ("Scripts", "exomni.exe")):
            candidate = os.path.join(program, *sub)
            if os.path.isfile(candidate):
                return [candidate, *argv[1:]]
        raise BackendError(f"The folder {program} has no bin/exomni; point 'Backend command' at the virtual "
                           "environment where the backend is installed (see the README), or at its exomni.")
    found = shutil.which(program)
    if found is None:
        where = "was not found" if os.sep in program or "/" in program else "was not found on PATH"
        raise BackendError(f"Backend command '{argv[0]}' {where}. Install the backend (the README's first "
                           "command makes .venv/bin/exomni) and set 'Backend command' in the add-on "
                           "preferences to the full path of that exomni.")
    return [found, *argv[1:]]


def serve_argv(command: str, url: str, token: str = "", store: str = "") -> list:
    """argv for `exomni serve` at `url` (the token is not part of it: give it to `start`)."""
    if not is_local_url(url):
        host, _ = host_and_port(url)
        raise BackendError(f"The backend URL points to another machine ({host}); start `exomni serve` there, "
                           "or set the URL to http://127.0.0.1:PORT to run it here.")
    host, port = host_and_port(url)
    argv = resolve_command(command) + ["serve", "--host", host, "--port", str(port)]
    if store:
        argv += ["--store", os.path.abspath(os.path.expanduser(store))]
    # The token is never put in argv (any user on the machine can read it with `ps`): `start` passes it
    # in the environment as EXOMNI_TOKEN, which `exomni serve` reads.
    return argv


def serve_env(token: str = "", base=None) -> dict:
    """The environment `exomni serve` starts with: this one, unbuffered, with the token as EXOMNI_TOKEN."""
    env = {**(os.environ if base is None else base), "PYTHONUNBUFFERED": "1"}
    if token:
        env["EXOMNI_TOKEN"] = token.strip()
    return env


def running() -> bool:
    return _process is not None and _process.poll() is None


def start(argv: list, log_dir: str = "", token: str = "") -> "subprocess.Popen":
    """Start the backend with `argv` (from `serve_argv`) and `token` in its environment (EXOMNI_TOKEN, never
    on the command line). Returns at once; its output goes to a log."""
    global _process, _log_path
    if running():
        raise BackendError(f"The backend started from Blender is already running (pid {_process.pid}).")
    log_dir = Path(log_dir or tempfile.gettempdir())
    log_dir.mkdir(parents=True, exist_ok=True)
    _log_path = str(log_dir / LOG_NAME)
    log = open(_log_path, "wb")
    try:
        kwargs = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt" else {"start_new_session": True}
        _process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=serve_env(token), **kwargs)
    except OSError as exc:
        raise BackendError(f"Could not start '{argv[0]}': {exc}. Check 'Backend command' in the add-on preferences.") from None
    finally:
        log.close()  # the child holds its own handle
    return _process


def wait_until_ready(url: str, token: str = "", timeout: float = 60.0, should_stop=None) -> dict:
    """Poll /v1/health until the backend this session started answers (see `poll_health`)."""
    return poll_health(url, token, _process, timeout=timeout, should_stop=should_stop, log=_log_path)


def poll_health(url: str, token: str = "", process=None, timeout: float = 60.0, should_stop=None,
                log=None, interval: float = 0.1) -> dict:
    """Poll /v1/health until a backend answers; a clear error if `process` (a Popen) died or none answered.

    The one start-up wait: the add-on's Start Backend and the CLI's local server (backend.server.launcher).
    """
    deadline = time.monotonic() + timeout
    with Client(url, token, connect_timeout=1.0, read_timeout=5.0) as client:
        while True:
            if process is not None and process.poll() is not None:
                tail = _tail(log)
                raise BackendError(f"The backend exited (code {process.returncode}) before it answered."
                                   + (f" Its last words:\n{tail}" if tail else "")
                                   + (f"\nFull log: {log}" if log else ""))
            try:
                return client.health()
            except BackendError as exc:
                if exc.code not in ("unreachable",):
                    raise
            if should_stop is not None and should_stop():
                raise BackendError("Stopped waiting for the backend.")
            if time.monotonic() > deadline:
                raise BackendError(f"The backend did not answer at {url} within {timeout:.0f} s"
                                   + (f"; see its log: {log}" if log else "."))
            time.sleep(interval)


def terminate(process, timeout: float = 5.0) -> bool:
    """Stop a backend process: politely, then for good. True if it was running."""
    if process is None or process.poll() is not None:
        return False
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
    return True


def stop(timeout: float = 5.0) -> bool:
    """Stop the backend this session started (not one started elsewhere). True if one was running."""
    global _process
    process, _process = _process, None
    return terminate(process, timeout)


def _tail(path, lines: int = 6) -> str:
    if not path or not os.path.exists(path):
        return ""
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        return "\n".join(fh.read().strip().splitlines()[-lines:])
