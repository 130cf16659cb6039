"""Key Take From Disk in the real bpy with a Live Link Face CSV and a Rhubarb Lip Sync JSON."""

import json

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.core.arkit import INDEX  # noqa: E402
from exomni_blender.core.exchange import write_livelink_csv  # noqa: E402
from exomni_blender.core.take import Take, encode_wav  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def scene(registered_scene):
    from exomni_blender.blender.head import create_head

    registered_scene.exomni.target = create_head("CsvHead")
    return registered_scene


def shape_key_value(head, name, frame):
    bpy.context.scene.frame_set(frame)
    return head.data.shape_keys.key_blocks[name].value


def sound_strips(scene):
    from exomni_blender.blender.compat import sequencer_all_strips

    return [s for s in sequencer_all_strips(scene) if s.type == "SOUND"]


def test_a_live_link_face_csv_is_keyed_on_the_head(scene, tmp_path):
    scene.render.fps = 30
    scene.frame_current = 10
    w = np.zeros((60, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 1, 60)
    w[20:25, INDEX["eyeBlinkLeft"]] = 1.0
    write_livelink_csv(Take(fps=60, weights=w), tmp_path / "capture.csv")  # a 60 fps recording

    assert bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "capture.csv")) == {"FINISHED"}
    item = scene.exomni.takes[-1]
    assert item.text == "capture" and item.start_frame == 10 and item.frames == 30  # resampled to the scene's 30
    head = scene.exomni.target
    assert shape_key_value(head, "jawOpen", 10) == pytest.approx(0.0, abs=1e-3)
    assert shape_key_value(head, "jawOpen", 39) == pytest.approx(w[58, INDEX["jawOpen"]], abs=0.02)
    assert shape_key_value(head, "eyeBlinkLeft", 21) == pytest.approx(1.0, abs=1e-3)
    assert shape_key_value(head, "eyeBlinkLeft", 30) == pytest.approx(0.0, abs=1e-3)
    assert not sound_strips(scene)  # no WAV beside it


def test_a_rhubarb_json_with_its_wav_gets_the_mouth_and_an_audio_strip(scene, tmp_path):
    scene.render.fps = 24
    scene.frame_current = 1
    (tmp_path / "line.json").write_text(json.dumps({
        "metadata": {"soundFile": "line.wav", "duration": 1.0},
        "mouthCues": [{"start": 0.0, "end": 0.25, "value": "X"}, {"start": 0.25, "end": 0.75, "value": "D"},
                      {"start": 0.75, "end": 1.0, "value": "A"}]}))
    (tmp_path / "line.wav").write_bytes(encode_wav(np.zeros(16000, np.float32), 16000))

    assert bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "line.wav")) == {"FINISHED"}
    head = scene.exomni.target
    assert shape_key_value(head, "jawOpen", 1 + 12) > 0.5  # 0.5 s: inside the wide-open D
    assert shape_key_value(head, "jawOpen", 1 + 2) == pytest.approx(0.0, abs=1e-3)
    assert shape_key_value(head, "mouthPressLeft", 1 + 22) > 0.2  # lips pressed for A
    assert len(sound_strips(scene)) == 1


def test_a_malformed_csv_is_reported_not_a_traceback(scene, tmp_path):
    from exomni_blender.ui import jobs

    (tmp_path / "bad.csv").write_text("Frame,JawOpen\n1,0.5\n")
    with pytest.raises(RuntimeError, match="first column is 'Frame'") as err:
        bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "bad.csv"))
    assert "Traceback" not in str(err.value) and "Timecode" in jobs.latest("generate").error
    assert len(scene.exomni.takes) == 0


def test_a_format_registered_outside_the_add_on_is_offered_and_keyed(scene, tmp_path):
    from exomni_blender.core.exchange import register_format, unregister_format
    from exomni_blender.ui.takes.operators import take_file_filter
    from test_exchange_registry import TOY, jaw_take

    assert "*.toy" not in take_file_filter().split(";")
    register_format(TOY)
    try:
        assert "*.toy" in take_file_filter().split(";")  # what Key Take From Disk's file browser shows
        scene.render.fps = 30
        scene.frame_current = 5
        TOY.write(jaw_take(frames=30, audio=False), tmp_path / "jaw.toy")
        assert bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "jaw.toy")) == {"FINISHED"}
        item = scene.exomni.takes[-1]
        assert item.text == "jaw" and item.frames == 30 and item.folder == str(tmp_path)
        assert shape_key_value(scene.exomni.target, "jawOpen", 5 + 29) == pytest.approx(1.0, abs=1e-3)
    finally:
        unregister_format("toy")
    with pytest.raises(RuntimeError, match="unknown kind of file|not a take"):
        bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "jaw.toy"))
