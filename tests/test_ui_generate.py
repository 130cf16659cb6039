"""The panel's operators end to end in the real bpy against the real backend on 127.0.0.1.

The bpy module has no event loop, so bpy.app.timers never fire here: the tests drive the add-on's
job runner with `jobs.wait()`, which calls the same `pump()` the timer calls inside Blender.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from backend.server.launcher import free_port  # noqa: E402
from exomni_blender.core import arkit, contract as C  # noqa: E402
from exomni_blender.remote.client import Client  # noqa: E402
from exomni_blender.core.take import Take, encode_wav  # noqa: E402

pytestmark = pytest.mark.blender

LINE = "Maybe the puppy plays by the pool."


def new_head(name="TestHead"):
    from exomni_blender.blender.head import create_head
    head = create_head(name)
    bpy.context.view_layer.objects.active = head
    return head


def shape_key_channels(action) -> dict:
    """data_path -> F-curve of a shape-key action, across Blender versions."""
    from exomni_blender.blender.compat import action_fcurves
    return {fc.data_path: fc for fc in action_fcurves(action)}


def sound_strips(scene) -> list:
    from exomni_blender.blender.compat import sequencer_all_strips
    return [s for s in sequencer_all_strips(scene) if s.type == "SOUND"]


def head_action(head):
    anim = head.data.shape_keys.animation_data
    return anim.action if anim is not None else None


def generate_and_wait(timeout=90.0):
    from exomni_blender.ui import jobs
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    assert job is not None and not job.finished  # the operator returned before the work was done
    return jobs.wait(job, timeout=timeout)


def test_generate_keys_the_active_head_and_lays_the_audio_at_the_playhead(addon):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_current = 11
    head = new_head()
    scene.exomni.text = LINE
    scene.exomni.seed = 5

    job = generate_and_wait()
    assert job.state == jobs.DONE, job.error

    item = scene.exomni.takes[0]
    assert len(scene.exomni.takes) == 1 and item.start_frame == 11 and item.text == LINE
    assert item.object_name == head.name and item.engine == "phonetic" and item.take_id
    take = Take.load(item.folder)
    assert Path(item.folder).parent == Path(bpy.path.abspath("//")) / "ExOmniTakes"
    assert take.fps == 24.0 and take.frames == item.frames

    action = head_action(head)
    assert action is not None and action.name == item.action_name
    channels = shape_key_channels(action)
    assert len(channels) == 52
    jaw = channels['key_blocks["jawOpen"].value']
    frames = [k.co[0] for k in jaw.keyframe_points]
    assert frames[0] == 11 and frames[-1] == 11 + take.frames - 1
    values = np.array([k.co[1] for k in jaw.keyframe_points])
    assert np.allclose(values, take.channel("jawOpen"), atol=1e-4) and values.max() > 0.1

    strips = sound_strips(scene)
    assert len(strips) == 1
    strip = strips[0]
    assert strip.frame_start == 11
    assert abs(strip.frame_final_duration - take.duration * 24.0) <= 1.0
    assert "Keyed" in job.message


def test_a_second_take_is_listed_and_jump_and_rekey_use_it(addon):
    scene = bpy.context.scene
    head = new_head()
    scene.exomni.text = "Hello."
    scene.exomni.use_playhead = False
    scene.exomni.start_frame = 40
    generate_and_wait()
    first_action = head_action(head)
    scene.exomni.text = "Goodbye."
    scene.exomni.start_frame = 90
    generate_and_wait()
    assert [t.start_frame for t in scene.exomni.takes] == [40, 90]
    assert scene.exomni.takes_index == 1 and head_action(head) is not first_action

    scene.exomni.takes_index = 0
    assert bpy.ops.exomni.jump_to_take() == {"FINISHED"} and scene.frame_current == 40
    assert bpy.ops.exomni.rekey_take() == {"FINISHED"}
    rekeyed = head_action(head)
    assert rekeyed.name == scene.exomni.takes[0].action_name
    assert min(k.co[0] for k in shape_key_channels(rekeyed)['key_blocks["jawOpen"].value'].keyframe_points) == 40
    assert len(sound_strips(scene)) == 2  # re-keying leaves the audio as it was

    assert bpy.ops.exomni.remove_take() == {"FINISHED"}
    assert [t.start_frame for t in scene.exomni.takes] == [90]


def test_cancel_stops_the_server_job_and_keys_nothing(addon, live_server):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    head = new_head()
    scene.exomni.text = ("The quick brown fox jumps over the lazy dog while the band plays on. " * 25)[:1900]
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    while job.remote_id is None and not job.finished:
        jobs.pump()
    assert bpy.ops.exomni.cancel() == {"FINISHED"}
    jobs.wait(job, timeout=60)
    assert job.state == jobs.CANCELLED and job.message == "Cancelled"
    assert len(scene.exomni.takes) == 0 and head_action(head) is None and not sound_strips(scene)
    with Client(live_server) as client:
        assert client.job(job.remote_id)["state"] == C.CANCELLED
    assert bpy.ops.exomni.cancel() == {"CANCELLED"}  # nothing left to cancel


def test_server_down_gives_the_clear_error_and_nothing_escapes(addon):
    from exomni_blender.ui import jobs
    addon.backend_url = f"http://127.0.0.1:{free_port()}"
    scene = bpy.context.scene
    head = new_head()
    scene.exomni.text = LINE
    job = generate_and_wait(timeout=30)
    assert job.state == jobs.FAILED
    assert "Cannot reach the Ex-Omni backend" in job.error and "exomni serve" in job.error
    assert "add-on preferences" in job.error and "Traceback" not in job.error
    assert len(scene.exomni.takes) == 0 and head_action(head) is None

    assert bpy.ops.exomni.refresh_engines() == {"FINISHED"}
    check = jobs.wait(jobs.latest("backend"), timeout=30)
    assert check.state == jobs.FAILED and "Cannot reach" in check.error


def test_a_take_that_cannot_be_keyed_says_where_it_is_saved(addon):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    head = new_head()
    scene.exomni.text = "Hello."
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    head.shape_key_clear()  # the head changes while the take is being made
    job = jobs.wait(jobs.latest("generate"), timeout=90)
    assert job.state == jobs.FAILED and "nothing a take can move" in job.error
    folder = job.error.split("saved in ", 1)[1].split("; key it", 1)[0]
    assert Take.load(folder).text == "Hello." and "Key Take From Disk" in job.error
    assert len(scene.exomni.takes) == 0


def test_a_take_started_before_another_file_was_opened_does_not_land_there(addon, tmp_path):
    from exomni_blender.ui import jobs
    bpy.context.scene.exomni.text = "Hello."
    new_head("Bob")
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    bpy.ops.wm.read_homefile(use_empty=True)  # another shot: the same scene name, a rig of the same name
    other = new_head("Bob")
    job = jobs.wait(jobs.latest("generate"), timeout=90)
    assert job.state == jobs.FAILED and "Another file was opened" in job.error and "Key Take From Disk" in job.error
    assert head_action(other) is None and not sound_strips(bpy.context.scene)


def test_bad_input_and_offline_are_refused_with_what_to_do(addon):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    scene.exomni.text = LINE
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="Pick a head"):
        bpy.ops.exomni.generate()
    new_head()
    scene.exomni.text = "   "
    with pytest.raises(RuntimeError, match="Type a line"):
        bpy.ops.exomni.generate()
    assert jobs.latest("generate").error == "Type a line for the head to say."

    scene.exomni.text = LINE
    bpy.context.preferences.system.use_online_access = False
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.exomni.generate()
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.exomni.refresh_engines()
    assert not jobs.busy()


def test_refresh_engines_fills_the_engine_list(addon):
    from exomni_blender.ui import jobs
    from exomni_blender.ui.generate import props
    props.set_engines([])
    assert bpy.ops.exomni.refresh_engines() == {"FINISHED"}
    job = jobs.wait(jobs.latest("backend"), timeout=30)
    assert job.state == jobs.DONE and "Backend ready" in job.message and "phonetic" in job.message
    names = [e["name"] for e in props.engines()]
    assert "phonetic" in names
    settings = bpy.context.scene.exomni
    for name in names:  # each listed engine can be chosen in the panel
        settings.engine = name
        assert settings.engine == name


def test_key_take_from_disk_takes_a_take_folder_or_an_audio2face_json(addon, tmp_path):
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_current = 5
    head = new_head()
    rate, seconds = 16000, 1.5
    t = np.arange(int(rate * seconds)) / rate
    audio = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    frames = int(30 * seconds)
    weights = np.zeros((frames, 52), np.float32)
    weights[:, arkit.INDEX["jawOpen"]] = 0.5 + 0.5 * np.sin(np.linspace(0, 6 * np.pi, frames))
    Take(fps=30.0, weights=weights, audio=audio, sample_rate=rate, text="from disk").save(tmp_path / "folder")

    assert bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "folder")) == {"FINISHED"}
    item = scene.exomni.takes[-1]
    assert item.text == "from disk" and item.start_frame == 5 and item.frames == round(seconds * 24)
    assert abs(sound_strips(scene)[0].frame_final_duration - seconds * 24) <= 1.0

    # An Audio2Face export from another tool: a subset of channels, in another order, its WAV beside it.
    a2f = tmp_path / "a2f"
    a2f.mkdir()
    names = ["mouthClose", "jawOpen"]
    (a2f / "line.json").write_text(json.dumps({
        "exportFps": 30, "trackPath": "/World/x", "numPoses": 2, "numFrames": frames, "facsNames": names,
        "weightMat": np.stack([weights[:, arkit.INDEX[n]] for n in names], 1).tolist()}))
    (a2f / "line.wav").write_bytes(encode_wav(audio, rate))
    scene.frame_current = 100
    assert bpy.ops.exomni.key_take_from_disk(filepath=str(a2f / "line.wav")) == {"FINISHED"}
    item = scene.exomni.takes[-1]
    assert item.start_frame == 100 and item.text == "line" and len(scene.exomni.takes) == 2
    jaw = shape_key_channels(head_action(head))['key_blocks["jawOpen"].value']
    assert max(k.co[1] for k in jaw.keyframe_points) > 0.9
    assert len(sound_strips(scene)) == 2

    with pytest.raises(RuntimeError, match="[Nn]othing at"):
        bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError, match="not a take folder"):
        bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "empty"))


def test_start_backend_runs_exomni_serve_from_the_preferences(addon, tmp_path):
    from exomni_blender.remote import launcher
    from exomni_blender.ui import jobs
    from exomni_blender.ui.generate import props
    venv = Path(sys.executable).parent.parent  # the virtual environment running the tests has the backend
    if not (venv / "bin" / "exomni").exists() and not (venv / "Scripts" / "exomni.exe").exists():
        venv = Path(__file__).resolve().parents[1] / ".venv"  # the README's environment
    addon.backend_command = str(venv)
    addon.backend_url = f"http://127.0.0.1:{free_port()}"
    addon.store = str(tmp_path / "store")
    props.set_engines([])
    assert bpy.ops.exomni.start_backend() == {"FINISHED"}
    job = jobs.wait(jobs.latest("backend"), timeout=90)
    try:
        assert job.state == jobs.DONE, job.error
        assert launcher.running() and "phonetic" in [e["name"] for e in props.engines()]
        with Client(addon.backend_url) as client:
            assert client.health() is not None
    finally:
        assert bpy.ops.exomni.stop_backend() == {"FINISHED"}
    assert not launcher.running()


def test_a_missing_backend_command_is_explained(addon):
    addon.backend_command = "exomni-not-installed-here"
    with pytest.raises(RuntimeError, match="was not found on PATH.*Backend command"):
        bpy.ops.exomni.start_backend()
    addon.backend_command = "exomni"
    addon.backend_url = "http://192.0.2.7:8765"
    with pytest.raises(RuntimeError, match="another machine"):
        bpy.ops.exomni.start_backend()


def test_mood_head_motion_and_layers_from_the_panel_and_change_mood_rekeys_only_the_expression(addon):
    from exomni_blender.blender import layers
    from exomni_blender.core import face
    from exomni_blender.ui import jobs

    scene = bpy.context.scene
    head = new_head()
    settings = scene.exomni
    settings.text, settings.seed = LINE, 3
    settings.mood, settings.intensity, settings.head_motion, settings.layered = "happy", 0.8, 1.5, True
    job = generate_and_wait()
    assert job.state == jobs.DONE, job.error

    item = settings.takes[0]
    take = Take.load(item.folder)
    assert face.mood_of(take.meta) == ("happy", 0.8) and take.meta["head_motion"] == 1.5
    key_ad = head.data.shape_keys.animation_data
    assert key_ad.action is None  # every layer is a strip the animator can mute or scale
    tracks = {t.name for t in key_ad.nla_tracks}
    assert {layers.TRACKS[name] for name in ("mouth", "eyes", "expression")} <= tracks
    mouth = bpy.data.actions[item.action_name]
    assert mouth[layers.LAYER_KEY] == "mouth" and mouth[face.MOOD] == "happy"
    head_strips = [s for t in head.animation_data.nla_tracks for s in t.strips]
    assert len(head_strips) == 1 and head_strips[0].action.get(layers.LAYER_KEY) == "head"  # the delta rotation
    head_name = head_strips[0].action.name

    def expression_actions():  # looked up afresh: re-keying replaces strips (old references dangle)
        return [s.action.name for t in key_ad.nla_tracks if t.name.startswith(layers.TRACKS["expression"])
                for s in t.strips]

    smile = expression_actions()
    assert len(smile) == 1 and bpy.data.actions[smile[0]][face.MOOD] == "happy"
    settings.mood, settings.intensity = "angry", 1.0
    assert bpy.ops.exomni.change_mood() == {"FINISHED"}
    [angry_name] = expression_actions()
    angry = bpy.data.actions[angry_name]
    assert angry[face.MOOD] == "angry"  # the happy layer is gone, not kept below the angry one
    curves = shape_key_channels(angry)
    assert 'key_blocks["browDownLeft"].value' in curves and 'key_blocks["mouthSmileLeft"].value' not in curves
    assert bpy.data.actions[item.action_name] == mouth  # the mouth layer is the one keyed before
    assert [s.action.name for t in head.animation_data.nla_tracks for s in t.strips] == [head_name]


def test_change_mood_of_a_take_keyed_as_one_action_says_what_to_do(addon):
    scene = bpy.context.scene
    new_head()
    scene.exomni.text = "Hello."
    generate_and_wait()
    with pytest.raises(RuntimeError, match="turn on Layers"):
        bpy.ops.exomni.change_mood()


def test_mouth_only_from_the_panel_keys_no_mood_or_head(addon):
    from exomni_blender.core import face

    scene = bpy.context.scene
    head = new_head()
    scene.exomni.text = LINE
    scene.exomni.mood, scene.exomni.mouth_only, scene.exomni.layered = "sad", True, True
    generate_and_wait()
    take = Take.load(scene.exomni.takes[0].folder)
    assert face.mood_of(take.meta)[0] == "neutral" and face.head_rotation(take.meta) is None
    assert head.animation_data is None or not head.animation_data.nla_tracks
