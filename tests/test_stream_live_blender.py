"""Live preview in the real bpy against the real backend on 127.0.0.1: arriving frames drive the shape
keys with nothing keyed, and the take then lands exactly as a normal Generate's; Cancel stops at once.

Timers do not fire in the bpy module, so the test pumps the add-on's jobs and ticks the preview itself
(what the jobs timer and the preview's timer do inside Blender)."""

import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.core import contract as C  # noqa: E402

from test_ui_generate import head_action, new_head, shape_key_channels, sound_strips  # noqa: E402

pytestmark = pytest.mark.blender

LINE = "Watch the lips while the line is still arriving."


def _setup(addon, head_name):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    scene.frame_current = 11
    addon.takes_from = "SERVER"
    head = new_head(head_name)
    scene.exomni.target = head
    scene.exomni.text, scene.exomni.seed = LINE, 4
    return scene, head


def _drive(job, timeout=90.0):
    """Pump and tick until the job ends; the jawOpen values the head showed while it ran."""
    from exomni_blender.ui import jobs, live

    shown = []
    deadline = time.monotonic() + timeout
    while not job.finished:
        assert time.monotonic() < deadline, job
        jobs.pump()
        for preview in list(live._previews):
            preview.tick()
            if preview.applied_frames and not job.finished:
                head = bpy.data.objects[preview.head_name]
                assert head_action(head) is None, "a key was written while the take played"
                shown.append(head.data.shape_keys.key_blocks["jawOpen"].value)
        time.sleep(0.005)
    return shown


def test_live_generate_previews_then_lands_like_a_normal_generate(addon):
    from exomni_blender.ui import jobs, live

    scene, head = _setup(addon, "LiveHead")
    scene.exomni.live = True
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    previews = list(live._previews)
    assert len(previews) == 1 and not job.finished
    preview = previews[0]
    shown = _drive(job)
    assert job.state == jobs.DONE, job.error
    assert preview.applied_frames > 0 and shown, "no streamed frame reached the shape keys"

    # What was shown are the take's own frames (resampled to 24 fps on both sides).
    item = scene.exomni.takes[0]
    from exomni_blender.core.take import Take

    take = Take.load(item.folder)
    # It plays out to its end (in time with its sound), then stops and gives the keys back to the Action.
    deadline = time.monotonic() + take.duration + 5
    while preview.tick():
        assert time.monotonic() < deadline
        shown.append(head.data.shape_keys.key_blocks["jawOpen"].value)
        time.sleep(0.01)
    assert preview.stopped and not live._previews
    jaw = take.channel("jawOpen")
    assert all(np.isclose(jaw, v, atol=1e-5).any() for v in shown)
    assert max(shown) > 0.05 and preview.applied_frames >= take.frames // 2

    # The same take made without Live: the same Action values and the same sound strip placement.
    scene.exomni.live = False
    other = new_head("PlainHead")
    scene.exomni.target = other
    plain = jobs.wait(jobs.latest("generate") if bpy.ops.exomni.generate() == {"FINISHED"} else None, timeout=90)
    assert plain.state == jobs.DONE, plain.error
    live_curves, plain_curves = shape_key_channels(head_action(head)), shape_key_channels(head_action(other))
    assert live_curves.keys() == plain_curves.keys() and len(live_curves) == 52
    for path, fc in live_curves.items():
        a = [tuple(k.co) for k in fc.keyframe_points]
        b = [tuple(k.co) for k in plain_curves[path].keyframe_points]
        assert np.allclose(a, b), path
    strips = sound_strips(scene)
    assert len(strips) == 2
    assert {s.frame_start for s in strips} == {11}
    assert strips[0].frame_final_duration == strips[1].frame_final_duration


def test_cancel_stops_sound_and_motion_at_once_and_keys_nothing(addon):
    from exomni_blender.ui import jobs, live

    scene, head = _setup(addon, "CancelHead")
    scene.exomni.live = True
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    preview = live._previews[0]
    deadline = time.monotonic() + 60
    while not preview.applied_frames and not job.finished:  # until the head moves
        assert time.monotonic() < deadline
        jobs.pump()
        preview.tick()
        time.sleep(0.005)
    assert bpy.ops.exomni.cancel() == {"FINISHED"}
    assert preview.stopped and not live._previews and not preview._handles
    assert head.data.shape_keys.key_blocks["jawOpen"].value == 0.0  # back where it was
    jobs.wait(job, timeout=60)
    assert job.state == jobs.CANCELLED and head_action(head) is None and not scene.exomni.takes


def test_a_lost_stream_falls_back_to_the_job_with_a_message(addon, monkeypatch):
    from exomni_blender.remote import stream
    from exomni_blender.ui import jobs, live

    def broken(client, job_id, stall_s=0):
        raise stream.StreamLost("the live stream broke (test)")
        yield  # a generator, as the real one

    monkeypatch.setattr(stream, "stream_job", broken)
    scene, head = _setup(addon, "LostHead")
    scene.exomni.live = True
    assert bpy.ops.exomni.generate() == {"FINISHED"}
    job = jobs.latest("generate")
    messages = []
    deadline = time.monotonic() + 90
    while not job.finished:
        assert time.monotonic() < deadline
        jobs.pump()
        messages.append(job.message)
        for preview in list(live._previews):
            preview.tick()
        time.sleep(0.01)
    assert job.state == jobs.DONE and head_action(head) is not None and not live._previews
    assert any("Live preview stopped" in m for m in messages), messages
