"""Generate with the embedded engine: the take is made by a child process of Blender's Python (never in
Blender's own process), with no server and online access off; progress arrives, Cancel ends the child,
and what the embedded engine cannot make is refused with what to do instead."""

import sys
import time

import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402  (comes with bpy)

pytestmark = pytest.mark.blender


@pytest.fixture
def embedded(tmp_path):
    """The add-on enabled with 'Takes from' = Inside Blender, online access off, no server anywhere."""
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    assert not bpy.app.online_access
    addon_utils.enable("exomni_blender", default_set=True, handle_error=lambda exc: (_ for _ in ()).throw(exc))
    prefs = bpy.context.preferences.addons["exomni_blender"].preferences
    prefs.takes_from = "EMBEDDED"
    prefs.backend_url = "http://127.0.0.1:9"  # nothing listens there
    bpy.ops.exomni.add_demo_head()
    from exomni_blender.ui import jobs
    yield bpy.context.scene
    jobs.shutdown()
    addon_utils.disable("exomni_blender", default_set=True)


def test_a_take_is_made_by_a_child_process_and_keyed(embedded, tmp_path):
    from exomni_blender.ui import jobs

    scene = embedded
    scene.exomni.text = "Bob bought a pink balloon."
    scene.frame_current = 12
    seen = []
    before = set(sys.modules)
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    job._on_progress = lambda j: seen.append((j.progress, j.message))
    jobs.wait(job, timeout=60)
    assert job.state == jobs.DONE, job.message
    assert any("animating" in message for _, message in seen) and seen == sorted(seen, key=lambda p: p[0])
    item = scene.exomni.takes[0]
    assert item.engine == "phonetic" and item.start_frame == 12 and item.frames > 24
    assert item.folder.startswith(str(tmp_path / "ExOmniTakes")) and item.take_id.startswith("embedded-")
    # The engine ran in the child: this process imported nothing of it.
    assert {m for m in set(sys.modules) - before if m.split(".")[0] in ("backend", "espeakng_loader")} == set()
    assert "Keyed 'Take 1'" in job.message


STAND_IN = """
import json, os, sys, time
from pathlib import Path
Path(sys.argv[2]).parent.joinpath("child.pid").write_text(str(os.getpid()))
print(json.dumps({"progress": 0.5, "message": "working"}), flush=True)
if sys.argv[0].endswith("embedded.py") and os.environ.get("STAND_IN") == "crash":
    raise RuntimeError("the stand-in broke")
time.sleep(60)
"""


@pytest.fixture
def stand_in(tmp_path):
    """A child that reports progress then works for a minute (or crashes): the runner's side alone."""
    package = tmp_path / "stand_in" / "backend"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "embedded.py").write_text(STAND_IN)
    return tmp_path / "stand_in"


def _run_stand_in(stand_in, out):
    from exomni_blender.ui import jobs
    from exomni_blender.ui.generate import embedded

    job = jobs.start("embedded_test", lambda job: embedded.make_take(job, {"text": "x"}, str(out), [str(stand_in)]))
    deadline = time.monotonic() + 30
    while job.progress < 0.4 and not job.finished and time.monotonic() < deadline:
        jobs.pump()
        time.sleep(0.01)
    return job


def test_cancel_ends_the_child_at_once_and_leaves_nothing(stand_in, tmp_path):
    import os

    from exomni_blender.ui import jobs

    out = tmp_path / "takes"
    job = _run_stand_in(stand_in, out)
    assert job.progress == pytest.approx(0.05 + 0.85 * 0.5) and job.message == "working"
    pid = int((out / "child.pid").read_text())
    job.cancel()
    started = time.monotonic()
    jobs.wait(job, timeout=10)
    assert job.state == jobs.CANCELLED and time.monotonic() - started < 3
    with pytest.raises(ProcessLookupError):  # ended and reaped, not left running
        os.kill(pid, 0)
    assert [p.name for p in out.iterdir()] == ["child.pid"]


def test_a_child_that_crashes_is_reported_as_what_to_do(stand_in, tmp_path, monkeypatch):
    from exomni_blender.ui import jobs

    monkeypatch.setenv("STAND_IN", "crash")
    job = jobs.wait(_run_stand_in(stand_in, tmp_path / "takes"), timeout=30)
    assert job.state == jobs.FAILED
    assert "the stand-in broke" in job.error and "Reinstall the extension" in job.error
    assert "system console" not in job.error  # an expected failure, explained: not a bug report


def test_what_the_embedded_engine_cannot_make_is_refused_with_what_to_do(embedded):
    from exomni_blender.ui.generate import props

    props.set_engines([{"name": "phonetic", "modes": ["say", "lipsync"], "available": True},
                       {"name": "exomni", "modes": ["say", "chat"], "available": True}])
    scene = embedded
    scene.exomni.engine = "exomni"
    scene.exomni.text = "Tell me a joke."
    with pytest.raises(RuntimeError, match="set 'Takes from' to Backend server"):
        bpy.ops.exomni.generate()
    assert len(scene.exomni.takes) == 0


def test_a_recording_is_lip_synced_by_the_child_process(embedded, tmp_path):
    """Lip sync inside Blender: a real recording (tests/data/aligned_speech) animated by the embedded
    engine, with no server and online access off, nothing of the engine in Blender's process."""
    from pathlib import Path

    from exomni_blender.ui import jobs

    recording = Path(__file__).parent / "data" / "aligned_speech" / "acoustic_corpus.flac"
    scene = embedded
    scene.exomni.mode = "lipsync"
    scene.exomni.audio_source = "FILE"
    scene.exomni.audio_file = str(recording)
    scene.exomni.text = ""
    before = set(sys.modules)
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.wait(jobs.latest("generate"), timeout=240)
    assert job.state == jobs.DONE, job.error or job.message
    item = scene.exomni.takes[0]
    fps = scene.render.fps / scene.render.fps_base
    assert item.take_id.startswith("embedded-") and abs(item.frames - 26.7 * fps) <= 2  # the 26.7 s recording
    assert {m for m in set(sys.modules) - before if m.split(".")[0] in ("backend", "pocketsphinx")} == set()


def test_automatic_uses_the_server_in_a_checkout_without_the_shipped_engine(embedded):
    """'Automatic' picks the embedded engine only where the extension zip put it: a source checkout
    registered as an add-on goes to the backend server (here: online access is off, so it says so)."""
    prefs = bpy.context.preferences.addons["exomni_blender"].preferences
    prefs.takes_from = "AUTO"
    embedded.exomni.text = "Hello."
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.exomni.generate()
