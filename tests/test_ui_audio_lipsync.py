"""Lip sync from the panel, in the real bpy against the real backend: a recording in, a keyed head out.

The recording is real speech (eSpeak NG through the backend's synthesizer) saved as WAV or FLAC.
The bpy module has no event loop, so the tests finish jobs with `jobs.wait()` (the timer's `pump()`).
"""

import glob
import os
import tempfile

import numpy as np
import pytest
import requests
import soundfile as sf

bpy = pytest.importorskip("bpy")

from exomni_blender.core import contract as C  # noqa: E402
from exomni_blender.core.take import Take  # noqa: E402

pytestmark = pytest.mark.blender

LINE = "Maybe the puppy plays by the pool."
FPS = 30


@pytest.fixture(scope="module")
def speech():
    from backend.engines.phonetic import espeak
    return espeak.synthesize(LINE, voice="en-us")


@pytest.fixture
def recording(speech, tmp_path):
    """The line as a WAV and as a FLAC on disk."""
    paths = {}
    for fmt in ("WAV", "FLAC"):
        paths[fmt] = tmp_path / f"line.{fmt.lower()}"
        sf.write(paths[fmt], speech.audio, speech.sample_rate, format=fmt)
    return paths


@pytest.fixture
def addon(addon):
    """The shared add-on fixture (tests/conftest.py) with the scene at 30 fps."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    return addon


def new_head():
    from exomni_blender.blender.head import create_head
    head = create_head("TestHead")
    bpy.context.view_layer.objects.active = head
    return head


def sound_strips(scene) -> list:
    from exomni_blender.blender.compat import sequencer_all_strips
    return [s for s in sequencer_all_strips(scene) if s.type == "SOUND"]


def add_strip(scene, path, frame, channel=1, name="Dialogue"):
    from exomni_blender.blender.compat import new_sound_strip
    strip = new_sound_strip(scene, name, str(path), channel, frame)
    for other in sound_strips(scene):
        other.select = False
    strip.select = True
    scene.sequence_editor.active_strip = strip
    return strip


def jaw_keys(head):
    from exomni_blender.blender.compat import action_fcurves
    action = head.data.shape_keys.animation_data.action
    curve = {fc.data_path: fc for fc in action_fcurves(action)}['key_blocks["jawOpen"].value']
    return np.array([tuple(k.co) for k in curve.keyframe_points])


def lipsync_mode(addon):
    """Ask the real backend for its engines (the panel's mode list follows them) and pick lip sync."""
    from exomni_blender.ui import jobs
    assert bpy.ops.exomni.refresh_engines() == {"FINISHED"}
    assert jobs.wait(jobs.latest("backend"), timeout=30).state == jobs.DONE
    settings = bpy.context.scene.exomni
    settings.engine = "phonetic"
    settings.mode = "lipsync"
    return settings


def generate_and_wait(timeout=90.0):
    from exomni_blender.ui import jobs
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    assert job is not None and not job.finished  # the upload and the take happen off the main thread
    return jobs.wait(job, timeout=timeout)


def server_take_count(url) -> int:
    return len(requests.get(url + C.TAKES, timeout=10).json()["takes"])


def test_lipsync_reuses_the_selected_strip_and_keys_from_where_its_sound_starts(addon, recording, speech):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    head = new_head()
    add_strip(scene, recording["WAV"], 10, channel=2, name="Other line")  # not selected: not used
    strip = add_strip(scene, recording["WAV"], 40)
    # Trimmed by the animator: the visible part starts later, the sound still starts at frame 40.
    strip.frame_offset_start = 6
    assert strip.frame_final_start == 46 and strip.frame_start == 40
    scene.frame_current = 1  # the playhead is not where the take goes
    settings = lipsync_mode(addon)
    settings.audio_source = "STRIP"
    settings.text = LINE
    before = len(sound_strips(scene))

    job = generate_and_wait()
    assert job.state == jobs.DONE, job.error
    assert "frame 40" in job.message and "'Dialogue'" in job.message

    assert len(sound_strips(scene)) == before  # reused, not duplicated
    item = settings.takes[-1]
    assert item.start_frame == 40 and item.strip_name == "Dialogue" and item.mode == "lipsync"
    take = Take.load(item.folder).resampled(FPS)
    assert take.mode == "lipsync" and take.sample_rate == speech.sample_rate
    assert abs(take.audio.size - speech.audio.size) <= 1  # made from the recording itself
    keys = jaw_keys(head)
    assert keys[0, 0] == 40 and keys[-1, 0] == 40 + take.frames - 1 and len(keys) == take.frames
    assert np.allclose(keys[:, 1], take.channel("jawOpen"), atol=1e-4) and keys[:, 1].max() > 0.1
    # Evaluated in the scene, the head moves with the strip's sound: at rest before it, open during it.
    peak = int(np.argmax(take.channel("jawOpen")))
    scene.frame_set(40 + peak)
    assert head.data.shape_keys.key_blocks["jawOpen"].value == pytest.approx(take.channel("jawOpen")[peak], abs=1e-3)


def test_lipsync_from_a_picked_file_adds_one_strip_at_the_start_frame(addon, recording, speech):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    head = new_head()
    settings = lipsync_mode(addon)
    settings.audio_source = "FILE"
    settings.audio_file = str(recording["FLAC"])
    settings.text = ""  # no transcript: the backend recognises the phones
    settings.use_playhead = False
    settings.start_frame = 25

    job = generate_and_wait()
    assert job.state == jobs.DONE, job.error
    strips = sound_strips(scene)
    assert len(strips) == 1 and strips[0].frame_start == 25
    assert abs(strips[0].frame_final_duration - speech.audio.size / speech.sample_rate * FPS) <= 1.0
    assert jaw_keys(head)[0, 0] == 25 and settings.takes[-1].strip_name == ""


def test_a_packed_sound_strip_is_uploaded_from_the_blend(addon, recording, tmp_path):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    head = new_head()
    lonely = tmp_path / "packed_line.wav"
    os.replace(recording["WAV"], lonely)
    strip = add_strip(scene, lonely, 12)
    strip.sound.pack()
    os.remove(lonely)  # only the .blend has it now
    settings = lipsync_mode(addon)
    settings.text = LINE
    leftovers = set(glob.glob(os.path.join(tempfile.gettempdir(), "exomni-packed-*")))

    job = generate_and_wait()
    assert job.state == jobs.DONE, job.error
    assert jaw_keys(head)[0, 0] == 12 and len(sound_strips(scene)) == 1
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "exomni-packed-*"))) <= leftovers  # cleaned up


def test_a_file_that_is_not_audio_shows_the_backends_message_and_keys_nothing(addon, tmp_path, live_server):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    head = new_head()
    notes = tmp_path / "notes.wav"
    notes.write_text("these are my notes, not audio\n" * 20)
    settings = lipsync_mode(addon)
    settings.audio_source = "FILE"
    settings.audio_file = str(notes)
    # What the backend says about this file, asked directly.
    r = requests.post(live_server + C.TAKES, files={"audio": ("notes.wav", notes.read_bytes())},
                      data={"mode": "lipsync"}, headers={C.CLIENT_HEADER: "tests"}, timeout=30)
    assert r.status_code == 422
    server_message = r.json()["error"]["message"]

    job = generate_and_wait()
    assert job.state == jobs.FAILED and server_message in job.error and "notes.wav" in job.error
    assert "Traceback" not in job.error
    assert head.data.shape_keys.animation_data is None and not sound_strips(scene) and not len(settings.takes)

    # The next take still works: nothing was left half made.
    settings.audio_file = str(tmp_path / "line.flac")
    sf.write(settings.audio_file, np.zeros(100), 16000)  # too short and silent: refused by the backend too
    job = generate_and_wait()
    assert job.state == jobs.FAILED and job.error.startswith("The backend could not use the audio file line.flac")


def test_lipsync_without_a_usable_recording_is_refused_before_any_request(addon, recording, tmp_path, live_server):
    from exomni_blender.ui import jobs
    scene = bpy.context.scene
    new_head()
    settings = lipsync_mode(addon)
    takes_before = server_take_count(live_server)

    def refused(pattern):
        with pytest.raises(RuntimeError, match=pattern):
            bpy.ops.exomni.generate()
        job = jobs.latest("generate")
        assert job.state == jobs.FAILED and job.remote_id is None and not jobs.busy()
        return job.error

    settings.audio_source = "STRIP"
    assert "Video Sequencer" in refused("Lip sync needs a recording. The scene has no sound strip")
    strip = add_strip(scene, recording["WAV"], 40)
    strip.select = False
    scene.sequence_editor.active_strip = None
    refused("No sound strip is selected")

    settings.audio_source = "FILE"
    settings.audio_file = ""
    refused("Lip sync needs a recording: pick the audio file")
    settings.audio_file = str(tmp_path / "nowhere.wav")
    refused("nowhere.wav' is missing")
    (tmp_path / "empty.wav").write_bytes(b"")
    settings.audio_file = str(tmp_path / "empty.wav")
    refused(r"empty.wav is empty \(0 bytes\)")
    settings.audio_file = str(tmp_path)
    refused("is a folder")
    with open(tmp_path / "huge.wav", "wb") as fh:  # sparse: no disk space used
        fh.truncate(C.MAX_AUDIO_BYTES + 1)
    settings.audio_file = str(tmp_path / "huge.wav")
    limit = C.MAX_AUDIO_BYTES // 2**20
    refused(f"huge.wav is {limit}.0 MB, over the backend's limit of {limit} MB; trim it")

    settings.audio_source = "SOUND"
    refused("pick a Sound")

    # A strip whose file was moved away after it was added.
    gone = tmp_path / "moved.wav"
    os.replace(recording["FLAC"], gone)
    moved = add_strip(scene, gone, 80, channel=3, name="Moved")
    os.remove(gone)
    settings.audio_source = "STRIP"
    assert moved.name in refused("The sound strip 'Moved'.*is missing.*Find Missing Files")

    assert server_take_count(live_server) == takes_before and not len(settings.takes)


def test_the_modes_offered_follow_the_backends_engines(addon):
    from exomni_blender.ui.generate import props
    settings = lipsync_mode(addon)
    assert settings.mode == "lipsync"
    offered = {e["name"]: e["modes"] for e in props.engines()}
    assert "lipsync" in offered["phonetic"]

    # A backend whose phonetic engine only speaks: lip sync is not offered, and Generate says so.
    props.set_engines([{"name": "phonetic", "modes": ["say"], "available": True}])
    assert settings.mode != "lipsync"
    with pytest.raises(TypeError):
        settings.mode = "lipsync"
    new_head()
    with pytest.raises(RuntimeError, match="Pick a mode: engine 'phonetic' offers say"):
        bpy.ops.exomni.generate()
