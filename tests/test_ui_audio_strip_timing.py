"""Where a sound strip plays its sound, as Blender itself mixes it down, against what lip sync keys by.

A click at a known time in the file is found in Blender's own mixdown of the scene; the frame the
add-on keys a lip-sync take at (`compat.sound_start_frame`) must put the click where Blender plays it.
"""

import wave

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.blender

RATE = 48000
FPS = 25
CLICK_SECONDS = 0.5


@pytest.fixture
def click_strip(tmp_path):
    samples = np.zeros(RATE * 2, np.int16)
    at = int(CLICK_SECONDS * RATE)
    samples[at:at + 480] = 30000
    path = tmp_path / "click.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_start, scene.frame_end = 1, 150
    from exomni_blender.blender.compat import new_sound_strip
    return scene, new_sound_strip(scene, "Click", str(path), 1, 40)


def heard_click_frame(scene, out) -> float:
    """The scene frame where the click is in Blender's mixdown of the scene."""
    bpy.ops.sound.mixdown(filepath=str(out), container="WAV", codec="PCM", format="S16", mixrate=RATE)
    with wave.open(str(out)) as w:
        channels = w.getnchannels()
        mixed = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, channels)[:, 0]
    loud = np.flatnonzero(np.abs(mixed) > 9000)
    assert loud.size, "the click is not in the mixdown"
    return scene.frame_start + loud[0] / RATE * FPS


@pytest.mark.parametrize("edit", [
    {},
    {"frame_offset_start": 6},  # trimmed on the left: the visible part starts later, the sound does not move
    {"frame_offset_start": 3, "frame_offset_end": 10},  # what a split leaves of either half
    {"sound_offset": 0.2},
    {"sound_offset": -0.12},
    {"animation_offset_start": 4},  # the content itself trimmed
])
def test_lipsync_keys_where_blender_plays_the_sound(click_strip, tmp_path, edit):
    from exomni_blender.blender.compat import sound_start_frame
    scene, strip = click_strip
    for name, value in edit.items():
        setattr(strip, name, value)
    predicted = sound_start_frame(strip, FPS) + CLICK_SECONDS * FPS
    heard = heard_click_frame(scene, tmp_path / "mix.wav")
    assert heard == pytest.approx(predicted, abs=0.05), (edit, heard, predicted)
