"""The main job, as a new user runs it: `exomni demo` through the real server, Blender and the preview."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from exomni_blender.core.arkit import ARKIT_52
from exomni_blender.core.take import Take

LINE = "Bob may move the map."


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # Under umask 022, as most users have it: every file written must be readable by others.
    r = subprocess.run([sys.executable, "-m", "backend.cli", "demo", "--out", str(out), "--text", LINE],
                       capture_output=True, text=True, timeout=900, preexec_fn=lambda: os.umask(0o022))
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_demo_writes_every_file(demo):
    for name in ("demo.blend", "demo.mp4", "curves.png", "take/take.json", "take/blendshapes.json", "take/audio.wav"):
        assert (demo / name).is_file() and (demo / name).stat().st_size > 0, name
    take = Take.load(demo / "take")
    assert take.text == LINE and take.engine == "phonetic" and take.has_audio and take.phonemes


def test_demo_files_honour_the_umask(demo):
    """demo.blend, demo.mp4, the take folder and the server's take store: 0644 files, 0755 folders."""
    seen = {"file": 0, "dir": 0}
    for path in demo.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        kind = "dir" if path.is_dir() else "file"
        seen[kind] += 1
        assert mode == (0o755 if kind == "dir" else 0o644), f"{path.relative_to(demo)} is {oct(mode)}"
    assert not list(demo.rglob("*.part")) and not list(demo.rglob(".*rendering*"))
    assert seen["file"] >= 8 and (demo / "store").is_dir(), seen  # the store's take is among them


def test_demo_blend_has_head_action_and_strip(demo):
    import bpy

    from exomni_blender.blender import compat

    take = Take.load(demo / "take")
    bpy.ops.wm.open_mainfile(filepath=str(demo / "demo.blend"))
    scene = bpy.context.scene
    head = bpy.data.objects["ExOmniHead"]
    keys = [k.name for k in head.data.shape_keys.key_blocks[1:]]
    assert sorted(keys) == sorted(ARKIT_52)
    anim = head.data.shape_keys.animation_data
    fcurves = compat.action_fcurves(anim.action, head.data.shape_keys)
    assert len(fcurves) == 52
    for fc in fcurves:
        frames = [k.co[0] for k in fc.keyframe_points]
        assert len(frames) == take.frames and frames[0] == 1
    strips = [s for s in compat.sequencer_all_strips(scene) if s.type == "SOUND"]
    assert len(strips) == 1 and strips[0].frame_final_start == 1
    assert abs(strips[0].frame_final_duration - take.duration * scene.render.fps) <= 1
    assert scene.frame_end >= strips[0].frame_final_end - 1


def _probe(video):
    import imageio_ffmpeg

    info = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(video)], capture_output=True, text=True).stderr
    return info


def test_preview_plays_with_sound_and_the_mouth_moves_with_the_speech(demo):
    import imageio_ffmpeg

    take = Take.load(demo / "take")
    info = _probe(demo / "demo.mp4")
    assert "Video: h264" in info and "Audio: aac" in info
    h, m, s = info.split("Duration: ")[1].split(",")[0].split(":")
    assert abs(float(h) * 3600 + float(m) * 60 + float(s) - take.duration) < 0.25
    # Decode the video as grey frames and watch the lower middle of the picture (the mouth).
    size = 96
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(demo / "demo.mp4"),
                          "-vf", f"scale={size}:{size},format=gray", "-f", "rawvideo", "-"], capture_output=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, size, size).astype(np.float32)
    mouth = frames[:, int(size * 0.55):int(size * 0.85), int(size * 0.3):int(size * 0.7)]
    # After the line the mouth is at rest: measure every frame's change of the mouth region against it.
    assert take.weights[-1, :].max() < 0.05 or take.channel("jawOpen")[-1] < 0.02
    motion = np.abs(mouth - mouth[-1]).mean(axis=(1, 2))
    opening = take.channel("jawOpen")
    n = min(len(motion), len(opening))
    assert motion[:n].max() > 2.0  # visibly moves (grey levels)
    assert np.corrcoef(motion[:n], opening[:n])[0, 1] > 0.5
