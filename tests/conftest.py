"""Shared fixtures: a real backend on 127.0.0.1, the add-on enabled against it in the real bpy, the
shared sample and parity-fixture folders."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The project's shared material (samples, parity fixtures): $EXOMNI_SHARED or ../shared."""
    return Path(os.environ.get("EXOMNI_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    d = shared_dir() / "samples"
    if not d.is_dir():
        pytest.skip(f"shared samples not found at {d} (set EXOMNI_SHARED)")
    return d


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real HTTP server in a child process, with a fresh take store; yields its base URL."""
    from backend.server.launcher import LocalServer

    root = tmp_path_factory.mktemp("server")
    with LocalServer(root / "store", log_path=root / "server.log") as server:
        yield server.url


@pytest.fixture
def wait_job():
    """wait_job(url, job_id, timeout=120): poll the server until the job finishes; returns its JSON."""
    import requests

    from exomni_blender.core import contract as C

    def wait(url, job_id, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = requests.get(url + C.job_path(job_id), timeout=10).json()
            if job["state"] in C.FINISHED_STATES:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish: {job}")

    return wait


@contextlib.contextmanager
def _online_access_on(bpy):
    system = bpy.context.preferences.system
    before = system.use_online_access
    system.use_online_access = True
    try:
        yield
    finally:
        system.use_online_access = before


@pytest.fixture
def online_access():
    """Blender's online-access switch is off by default in the bpy module; the add-on honours it.
    On for the test where bpy is loaded, as it was after."""
    bpy = sys.modules.get("bpy")
    if bpy is None:
        yield
        return
    with _online_access_on(bpy):
        yield


@pytest.fixture
def backend_url(live_server):
    """The backend the `addon` fixture points the add-on at; a test module overrides it to use another."""
    return live_server


@pytest.fixture
def addon(backend_url, tmp_path):
    """A saved empty file with the add-on enabled, online access on, and the backend URL set; yields
    the add-on's preferences. The file is saved so that takes land beside it."""
    bpy = pytest.importorskip("bpy")
    import addon_utils

    def _raise(exc):
        raise exc

    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    with _online_access_on(bpy):
        addon_utils.enable("exomni_blender", default_set=True, handle_error=_raise)
        prefs = bpy.context.preferences.addons["exomni_blender"].preferences
        prefs.backend_url = backend_url
        from exomni_blender.ui import jobs
        yield prefs
        jobs.shutdown()
        addon_utils.disable("exomni_blender", default_set=True)


def pytest_collection_modifyitems(config, items):
    """Every test of a module that touches Blender (bpy in-process, or Blender work in a child
    process) is marked `blender`, so `-m blender` runs them on another Blender version."""
    touches = {}
    for item in items:
        path = Path(str(item.fspath))
        if path not in touches:
            text = path.read_text(encoding="utf-8", errors="replace")
            touches[path] = "bpy" in text or "exomni_blender.blender" in text or "exomni demo" in text
        if touches[path]:
            item.add_marker(pytest.mark.blender)


def pytest_sessionfinish(session, exitstatus):
    # "No tests collected" (5) is not a failure of the product, e.g. when a filter selects nothing.
    if exitstatus == 5:
        session.exitstatus = 0


@pytest.fixture
def registered_scene():
    """An empty Blender file with the add-on registered (no server); yields its scene."""
    bpy = pytest.importorskip("bpy")
    import exomni_blender

    bpy.ops.wm.read_homefile(use_empty=True)
    exomni_blender.register()
    yield bpy.context.scene
    exomni_blender.unregister()
