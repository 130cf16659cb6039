"""A take's audio on the sequencer in the real bpy: saved beside the .blend or packed into it."""

import os

import bpy
import numpy as np
import pytest

from exomni_blender.blender import compat
from exomni_blender.core.take import Take, decode_wav
from exomni_blender.blender.timeline import TimelineError, add_audio_strip, free_channel

pytestmark = [
    pytest.mark.blender,
    pytest.mark.skipif(not bpy.app.build_options.audaspace,
                       reason=f"this bpy ({bpy.app.version_string}) was built without audio support"),
]


@pytest.fixture(autouse=True)
def empty_file():
    bpy.ops.wm.read_factory_settings(use_empty=True)


def make_take(seconds=2.37, sample_rate=22050, text="Audio for the timeline test"):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = (0.4 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t * 4)).astype(np.float32)
    frames = int(round(seconds * 30))
    return Take(fps=30, weights=np.zeros((frames, 52), np.float32), audio=audio, sample_rate=sample_rate, text=text)


def frames_of(take, scene):
    return take.duration * scene.render.fps / scene.render.fps_base


def test_unsaved_file_gets_a_packed_strip_at_the_start_frame_with_the_audio_length(tmp_path):
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_end = 20
    take = make_take()
    strip = add_audio_strip(scene, take, start_frame=12)
    assert strip.type == "SOUND" and strip.name.startswith("ExOmni: Audio for")
    assert strip.frame_final_start == 12
    assert abs(strip.frame_final_duration - frames_of(take, scene)) <= 1.0
    assert strip.sound.packed_file is not None
    assert scene.frame_end == strip.frame_final_end - 1  # grew to fit

    # The packed audio survives saving and opening the file again.
    path = str(tmp_path / "packed.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    strips = [s for s in compat.sequencer_all_strips(bpy.context.scene) if s.type == "SOUND"]
    assert len(strips) == 1 and strips[0].sound.packed_file is not None
    assert strips[0].frame_final_start == 12
    assert not (tmp_path / "exomni_audio").exists()


def test_saved_file_gets_the_wav_beside_it_with_a_relative_path(tmp_path):
    blend = tmp_path / "shot" / "scene.blend"
    blend.parent.mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    scene.render.fps = 30
    take = make_take(seconds=1.5)
    strip = add_audio_strip(scene, take, start_frame=1)
    assert strip.sound.packed_file is None
    assert strip.sound.filepath.startswith("//exomni_audio/") and strip.sound.filepath.endswith(".wav")
    wav = blend.parent / strip.sound.filepath[2:]
    assert wav.exists()
    samples, rate = decode_wav(wav.read_bytes())
    assert rate == take.sample_rate and np.allclose(samples, take.audio, atol=1.0 / 32767 + 1e-6)
    assert abs(strip.frame_final_duration - frames_of(take, scene)) <= 1.0
    # the same take again reuses its file, another take gets its own
    add_audio_strip(scene, take, start_frame=200)
    add_audio_strip(scene, make_take(seconds=1.0, text="Another line"), start_frame=400)
    assert len(os.listdir(blend.parent / "exomni_audio")) == 2


def test_a_folder_that_cannot_be_written_packs_the_audio_instead(tmp_path):
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    (tmp_path / "exomni_audio").write_text("a file where the audio folder would go")
    take = make_take(seconds=1.0)
    strip = add_audio_strip(bpy.context.scene, take, start_frame=3)
    assert strip.sound.packed_file is not None and strip.frame_final_start == 3
    assert abs(strip.frame_final_duration - frames_of(take, bpy.context.scene)) <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exomni_audio", "scene.blend"]  # no stray .part


def test_strips_go_on_a_free_channel_and_the_end_frame_never_shrinks():
    scene = bpy.context.scene
    scene.render.fps = 30
    scene.frame_end = 1000
    take = make_take(seconds=1.0)
    a = add_audio_strip(scene, take, start_frame=10)
    b = add_audio_strip(scene, take, start_frame=20)        # overlaps a
    c = add_audio_strip(scene, take, start_frame=100)       # clear of both
    d = add_audio_strip(scene, take, start_frame=50, channel=5)
    assert (a.channel, b.channel, c.channel, d.channel) == (1, 2, 1, 5)
    assert scene.frame_end == 1000
    assert free_channel(scene, 15, 25) == 3


def test_sequence_editor_is_created_when_missing():
    scene = bpy.data.scenes.new("Fresh")
    assert scene.sequence_editor is None
    add_audio_strip(scene, make_take(seconds=0.5), start_frame=1)
    assert scene.sequence_editor is not None
    assert len(compat.sequencer_strips(scene)) == 1


def test_bad_input_gets_errors_that_say_what_to_do():
    scene = bpy.context.scene
    silent = Take(fps=30, weights=np.zeros((10, 52), np.float32))
    with pytest.raises(TimelineError, match="no audio"):
        add_audio_strip(scene, silent, start_frame=1)
    with pytest.raises(TimelineError, match="channel"):
        add_audio_strip(scene, make_take(seconds=0.5), start_frame=1, channel=0)
    with pytest.raises(TimelineError, match="scene"):
        add_audio_strip(None, make_take(seconds=0.5), start_frame=1)


@pytest.mark.parametrize("legacy", [False, True])
def test_compat_sound_strips_through_strips_and_sequences(tmp_path, legacy):
    if legacy and not hasattr(bpy.types.SequenceEditor, "sequences") and \
            "sequences" not in bpy.types.SequenceEditor.bl_rna.properties:
        pytest.skip(f"Blender {bpy.app.version_string} has no sequence_editor.sequences")
    if not legacy and not compat.HAS_SEQUENCER_STRIPS:
        pytest.skip(f"Blender {bpy.app.version_string} has no sequence_editor.strips")
    scene = bpy.context.scene
    wav = tmp_path / "tone.wav"
    take = make_take(seconds=1.0)
    from exomni_blender.core.take import encode_wav
    wav.write_bytes(encode_wav(take.audio, take.sample_rate))
    strip = compat.new_sound_strip(scene, "tone", str(wav), 3, 7, legacy=legacy)
    assert strip.channel == 3 and strip.frame_final_start == 7
    assert list(compat.sequencer_strips(scene, legacy=legacy)) == [strip]
    assert compat.sequencer_all_strips(scene) == [strip]
