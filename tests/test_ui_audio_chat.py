"""A spoken chat prompt from the panel: the sound strip is uploaded to the real server running the
`exomni` engine on a tiny random checkpoint, and the answer lands as a new take with its own strip."""

import time

import numpy as np
import pytest
import requests
import soundfile as sf

bpy = pytest.importorskip("bpy")
pytest.importorskip("torch")

from exomni_blender.core import contract as C  # noqa: E402

pytestmark = [pytest.mark.blender, pytest.mark.slow]  # a server with the model starts (~half a minute)


@pytest.fixture(scope="module")
def exomni_server(tmp_path_factory):
    from backend.models.exomni.tiny import make_tiny_checkpoint
    from backend.server.launcher import LocalServer

    root = tmp_path_factory.mktemp("chat_server")
    ckpt = make_tiny_checkpoint(root / "ckpt")
    with LocalServer(root / "store", extra_args=["--exomni-checkpoint", str(ckpt), "--device", "cpu"],
                     log_path=root / "server.log", startup_timeout=120) as server:
        deadline = time.monotonic() + 120
        while not _exomni_ready(server.url):  # the model loads in the background after start-up
            assert time.monotonic() < deadline, "the exomni engine did not finish loading"
            time.sleep(0.2)
        yield server.url


def _exomni_ready(url) -> bool:
    engines = requests.get(url + C.ENGINES, timeout=10).json()["engines"]
    return any(e["name"] == "exomni" and e.get("state") == "ready" for e in engines)


@pytest.fixture
def backend_url(exomni_server):
    return exomni_server


def test_a_spoken_prompt_from_a_strip_gets_an_answer_with_its_own_strip(addon, tmp_path):
    from backend.engines.phonetic import espeak
    from exomni_blender.ui import jobs
    from exomni_blender.blender.compat import new_sound_strip, sequencer_all_strips
    from exomni_blender.blender.head import create_head
    from exomni_blender.core.take import Take

    speech = espeak.synthesize("How are you today?", voice="en-us")
    prompt = tmp_path / "prompt.wav"
    sf.write(prompt, speech.audio, speech.sample_rate)
    scene = bpy.context.scene
    scene.render.fps = 30
    head = create_head("ChatHead")
    bpy.context.view_layer.objects.active = head
    strip = new_sound_strip(scene, "Question", str(prompt), 1, 5)
    scene.sequence_editor.active_strip = strip

    assert bpy.ops.exomni.refresh_engines() == {"FINISHED"}
    assert jobs.wait(jobs.latest("backend"), timeout=60).state == jobs.DONE
    settings = scene.exomni
    settings.engine = "exomni"
    settings.mode = "chat"
    settings.text = ""
    with pytest.raises(RuntimeError, match="Type a prompt, or turn on Spoken prompt"):
        bpy.ops.exomni.generate()
    settings.voice_prompt = True
    settings.audio_source = "STRIP"
    settings.use_playhead = False
    settings.start_frame = 100

    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.wait(jobs.latest("generate"), timeout=180)
    assert job.state == jobs.DONE, job.error
    item = settings.takes[-1]
    assert item.mode == "chat" and item.start_frame == 100 and item.strip_name == ""
    assert item.text  # the reply
    sounds = sorted((s for s in sequencer_all_strips(scene) if s.type == "SOUND"), key=lambda s: s.frame_start)
    # The prompt's strip stays as it was; an answer with audio (a checkpoint with its decoder) gets its own.
    take = Take.load(item.folder)
    assert take.meta.get("spoken_prompt") and take.meta.get("reply") == item.text  # it heard the recording
    answered = take.has_audio
    assert [s.frame_start for s in sounds] == [5] + ([100] if answered else []) and sounds[0].name == "Question"
    from exomni_blender.blender.compat import action_fcurves
    jaw = {fc.data_path: fc for fc in action_fcurves(head.data.shape_keys.animation_data.action)}[
        'key_blocks["jawOpen"].value']
    frames = np.array([k.co[0] for k in jaw.keyframe_points])
    assert frames[0] == 100 and len(frames) == item.frames
