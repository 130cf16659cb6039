"""The one F-curve writer and the one NLA policy in the real bpy, as keying, jaw takes and dialogue scenes use them."""

import bpy
import numpy as np
import pytest

from exomni_blender.blender import compat, nla
from exomni_blender.blender.fcurves import read_fcurve, sparse_channels, sparse_indices, write_fcurves
from exomni_blender.core import face
from exomni_blender.core.arkit import INDEX
from exomni_blender.core.take import Take

pytestmark = pytest.mark.blender


@pytest.fixture(autouse=True)
def empty_file():
    bpy.ops.wm.read_factory_settings(use_empty=True)


def empty_object(name="Thing"):
    obj = bpy.data.objects.new(name, None)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def jaw_rig():
    data = bpy.data.armatures.new("Face")
    rig = bpy.data.objects.new("Face", data)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    jaw = data.edit_bones.new("jaw")
    jaw.head, jaw.tail = (0, 0, 1.5), (0, -0.1, 1.45)
    bpy.ops.object.mode_set(mode="OBJECT")
    return rig


@pytest.mark.parametrize("legacy", [None, True, False])
def test_write_fcurves_keys_every_value_linear_on_each_action_kind(legacy):
    if legacy is True and not compat.HAS_LEGACY_FCURVES or legacy is False and not compat.HAS_LAYERED_ACTIONS:
        pytest.skip("this Blender has no such Action kind")
    obj = empty_object()
    action = compat.new_action("A")
    frames = np.array([1.0, 2.5, 4.0, 7.0])
    values = {("location", 0): [0.0, 1.0, -2.0, 3.5], "hide_viewport": [0, 1, 1, 0],
              ("scale", 2): (np.array([1.0, 9.0]), np.array([1.0, 2.0]))}
    if legacy is not None:  # the writer goes through compat; force each path here
        compat_new = compat.new_fcurve
        compat.new_fcurve = lambda *a, **k: compat_new(*a, **{**k, "legacy": legacy})
    try:
        curves = write_fcurves(action, obj, values, frames, group="G")
    finally:
        if legacy is not None:
            compat.new_fcurve = compat_new
    assert [(c.data_path, c.array_index) for c in curves] == [("location", 0), ("hide_viewport", 0), ("scale", 2)]
    for curve in curves:
        assert {p.interpolation for p in curve.keyframe_points} == {"LINEAR"}
        assert curve.group.name == "G"
    f, v = read_fcurve(curves[0])
    assert np.allclose(f, frames) and np.allclose(v, values[("location", 0)])
    assert curves[0].evaluate(1.75) == pytest.approx(0.5)  # linear between keys
    assert np.allclose(read_fcurve(curves[2])[0], [1.0, 9.0])
    with pytest.raises(ValueError, match="3 values for 4 frames"):
        write_fcurves(action, obj, {("location", 1): [0, 1, 2]}, frames)
    with pytest.raises(ValueError, match="unknown interpolation"):
        write_fcurves(action, obj, {("location", 2): [0, 1, 2, 3]}, frames, interpolation="SMOOTH")


def test_sparse_keys_keep_every_value_within_the_tolerance():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 4, 481)
    signal = 0.4 * np.sin(2 * np.pi * 1.3 * t) ** 2 + 0.05 * rng.standard_normal(t.size).cumsum() / 20
    for tolerance in (0.001, 0.01, 0.05):
        keep = sparse_indices(signal, tolerance)
        assert keep[0] == 0 and keep[-1] == t.size - 1
        rebuilt = np.interp(np.arange(t.size), keep, signal[keep])
        assert np.abs(rebuilt - signal).max() <= tolerance + 1e-9
        assert keep.size < t.size
    assert sparse_indices(np.full(50, 0.3), 0.01).tolist() == [0, 49]
    out = sparse_channels({"a": np.zeros(10), "b": np.full(10, 0.5)}, np.arange(10.0), 0.01)
    assert list(out) == ["b"]
    held = sparse_channels({"a": np.zeros(10)}, np.arange(10.0) + 5, 0.01, skip_still=False)
    assert held["a"][0].tolist() == [5.0] and held["a"][1].tolist() == [0.0]


def test_a_jaw_take_is_linear_and_its_predecessor_goes_to_the_takes_track():
    from exomni_blender.blender.bone_face import key_bone_face

    rig = jaw_rig()
    weights = np.zeros((20, 52), np.float32)
    weights[:, INDEX["jawOpen"]] = np.linspace(0, 1, 20)
    first = key_bone_face(rig, Take(fps=24, weights=weights, text="first"), start_frame=1)
    second = key_bone_face(rig, Take(fps=24, weights=weights, text="second"), start_frame=40)
    for action in (first, second):
        for curve in compat.all_fcurves(action):
            assert {p.interpolation for p in curve.keyframe_points} == {"LINEAR"}
    ad = rig.animation_data
    assert ad.action == second and ad.action_extrapolation == "NOTHING"
    tracks = [t for t in ad.nla_tracks if t.name.startswith(nla.TAKE_TRACK)]
    assert len(tracks) == 1 and [s.action for s in tracks[0].strips] == [first]
    assert tracks[0].strips[0].extrapolation == "NOTHING"


def test_the_animators_own_action_gets_a_track_of_its_own_and_keeps_its_extrapolation():
    obj = empty_object()
    own = compat.new_action("Walk")
    write_fcurves(own, obj, {("location", 0): [0.0, 1.0]}, [1.0, 10.0])
    compat.assign_action(obj, own)
    take = compat.new_action("ExOmni: take")
    take[nla.TAKE_MARK] = "hello"
    write_fcurves(take, obj, {("location", 1): [0.0, 1.0]}, [20.0, 30.0])
    nla.activate(obj, take)
    tracks = list(obj.animation_data.nla_tracks)
    assert [t.name for t in tracks] == ["Walk"] and tracks[0].strips[0].action == own
    assert tracks[0].strips[0].extrapolation != "NOTHING"
    # takes that do not overlap share one track; an overlapping one gets the next
    later = compat.new_action("ExOmni: later")
    later[nla.TAKE_MARK] = "later"
    write_fcurves(later, obj, {("location", 1): [0.0, 1.0]}, [25.0, 35.0])
    nla.activate(obj, later)
    nla.push_down_active(obj)
    names = [t.name for t in obj.animation_data.nla_tracks]
    assert names == ["Walk", nla.TAKE_TRACK, f"{nla.TAKE_TRACK} 2"]


def test_nla_refuses_tweak_mode_with_what_to_do():
    obj = empty_object()
    action = compat.new_action("A")
    write_fcurves(action, obj, {("location", 0): [0.0, 1.0]}, [1.0, 10.0])
    strip, track = nla.place(obj, action, 1.0, "ExOmni test")
    obj.animation_data.use_tweak_mode = True
    if not obj.animation_data.use_tweak_mode:
        pytest.skip("this Blender does not enter tweak mode without an editor")
    with pytest.raises(nla.NlaError, match="tweak mode"):
        nla.place(obj, action, 20.0, "ExOmni test")


def test_the_dialogue_idle_layer_blinks_with_the_engines_generator():
    from exomni_blender.blender.dialogue_scene import idle_curves

    fps, seed = 24.0, 7
    frames, weights = idle_curves(1, 481, fps, seed)
    rng = np.random.default_rng(seed)
    times = (frames - 1) / fps
    expected = face.blink_curve(times, face.blink_onsets(float(times[-1]), rng), fps, rng)
    assert np.allclose(weights[:, INDEX["eyeBlinkLeft"]], expected)
    assert np.allclose(weights[:, INDEX["eyeBlinkRight"]], expected)
    assert weights[:, INDEX["jawOpen"]].max() == 0.0 and expected.max() > 0.9
