"""The embedded engine: takes made inside Blender, with no server, no virtual environment and no network.

The extension zip carries the phonetic engine's code in `engine/` and its dependencies as wheels,
which Blender installs into its extensions' site-packages. A take is made by one child process of
Blender's own Python (`python -m backend.embedded REQUEST.json OUT_DIR`), so nothing of the engine is
imported into Blender's process. The child reports progress as JSON lines; cancelling ends it.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from ...core.errors import ExOmniError
from ...core.take import Take
from .. import jobs

PACKAGE = Path(__file__).resolve().parents[2]  # the add-on's package folder
ENGINE_FOLDER = "engine"
MODES = ("say", "lipsync")  # what the embedded engine makes; chat and the exomni engine go to the backend server
ENTRY = "backend.embedded"


class EmbeddedEngineError(ExOmniError):
    """The embedded engine could not make the take; the message says why and what to do."""


def engine_root():
    """The folder holding the engine's `backend` package: the zip's `engine/`, or a checkout's root."""
    shipped = PACKAGE / ENGINE_FOLDER
    if (shipped / "backend" / "embedded.py").is_file():
        return shipped
    checkout = PACKAGE.parent
    if (checkout / "backend" / "embedded.py").is_file():
        return checkout
    return None


def shipped() -> bool:
    """This install carries the engine (the extension zip), not only a source checkout."""
    return (PACKAGE / ENGINE_FOLDER / "backend" / "embedded.py").is_file()


def wheel_site_packages():
    """Where Blender installed the extension's wheels (None outside Blender's extension system)."""
    import bpy

    extensions = bpy.utils.user_resource("EXTENSIONS")
    folder = Path(extensions, ".local", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    return folder if folder.is_dir() else None


def child_path(root: Path, site_packages=None) -> list:
    """The child's module path: the wheels first (so they win over anything else installed), the
    engine's code, then the folder that holds this add-on's package (its core)."""
    return [str(p) for p in (site_packages, root, PACKAGE.parent) if p is not None]


def make_take(job, request: dict, out_root: str, path: list, executable: str = sys.executable) -> dict:
    """Worker thread: run the embedded engine for `request` and load the take it wrote under `out_root`."""
    take_id = f"embedded-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"  # a contract.TAKE_ID
    folder = Path(out_root) / take_id
    folder.parent.mkdir(parents=True, exist_ok=True)
    fd, request_file = tempfile.mkstemp(prefix="exomni-request-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(request, fh)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONNOUSERSITE": "1",
           "PYTHONIOENCODING": "utf-8"}
    job.report(0.02, "Starting the embedded engine")
    try:
        # -P: the working folder does not come first on the path (a `backend` there must not stand in
        # for the engine); -s: nor does the user's own site-packages.
        final, stderr = _run(job, [executable, "-s", "-P", "-m", ENTRY, request_file, str(folder)], env)
    finally:
        os.unlink(request_file)
        partial = folder.with_name(f".{folder.name}.part")  # left by a child ended half way
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    if "done" not in final:
        if final.get("bug") or "error" not in final:
            tail = "\n".join(stderr.strip().splitlines()[-3:])
            raise EmbeddedEngineError(
                f"The embedded engine failed: {final.get('error') or tail or 'it stopped without a word'}. "
                "Reinstall the extension for this platform, or choose the backend server in the add-on's "
                "preferences.")
        raise EmbeddedEngineError(f"{final['error'][:1].upper()}{final['error'][1:]}")
    job.report(0.95, "Loading the take")
    return {"take": Take.load(folder), "folder": str(folder), "take_id": take_id, "modules": final.get("modules")}


def _run(job, argv: list, env: dict):
    """(the child's last message, its stderr); progress is reported as it comes, cancel ends the child."""
    creation = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window flashing up on Windows
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, encoding="utf-8", env=env, creationflags=creation)
    lines: "queue.Queue" = queue.Queue()
    errors = []
    readers = [threading.Thread(target=_pipe, args=(process.stdout, lines.put), daemon=True),
               threading.Thread(target=_pipe, args=(process.stderr, errors.append), daemon=True)]
    for reader in readers:
        reader.start()
    final = {}
    try:
        while True:
            if job.cancel_requested:
                raise jobs.Cancelled()
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                if process.poll() is not None and not readers[0].is_alive() and lines.empty():
                    break
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a library printing on stdout: not ours
            if "progress" in message:
                job.report(0.05 + 0.85 * float(message["progress"]), str(message.get("message") or ""))
            else:
                final = message
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for reader in readers:
            reader.join(1)
    return final, "".join(errors)


def _pipe(stream, put) -> None:
    for line in stream:
        put(line)
