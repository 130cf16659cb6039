"""Keying takes onto shape keys in the real bpy: values, frame rates, the NLA, errors, compat paths."""

import subprocess
import sys

import bpy
import numpy as np
import pytest

from exomni_blender.blender import compat
from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.blender.head import create_head
from exomni_blender.blender.keying import KeyingError, _identity_targets, key_take
from exomni_blender.core.take import Take

pytestmark = pytest.mark.blender


@pytest.fixture(autouse=True)
def empty_file():
    bpy.ops.wm.read_factory_settings(use_empty=True)


def make_take(frames=40, fps=30, seed=1, text="Hello there, this is a test line for keying"):
    rng = np.random.default_rng(seed)
    return Take(fps=fps, weights=rng.uniform(0, 1, size=(frames, 52)).astype(np.float32), text=text)


def curves_by_name(action):
    out = {}
    for fc in compat.all_fcurves(action):
        assert fc.data_path.startswith('key_blocks["') and fc.data_path.endswith('"].value')
        out[fc.data_path[len('key_blocks["'):-len('"].value')]] = fc
    return out


def small_mesh(name="Rig", keys=()):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    if keys:
        obj.shape_key_add(name="Basis")
        for k in keys:
            obj.shape_key_add(name=k)
    return obj


def test_key_take_writes_52_curves_with_the_take_values_at_the_scene_rate():
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    head = create_head()
    take = make_take(frames=45, fps=30)
    action = key_take(head, take, start_frame=10)

    assert action.name.startswith("ExOmni: Hello there")
    assert head.data.shape_keys.animation_data.action == action
    curves = curves_by_name(action)
    assert set(curves) == set(ARKIT_52)
    step = 24 / 30
    frames = 10 + np.arange(45) * step
    for name, fc in curves.items():
        assert len(fc.keyframe_points) == 45
        assert all(kp.interpolation == "LINEAR" for kp in fc.keyframe_points)
        keyed = np.array([fc.evaluate(f) for f in frames])
        assert np.allclose(keyed, take.weights[:, INDEX[name]], atol=1e-6), name
        # between two keys the curve interpolates linearly
        mid = fc.evaluate(frames[3] + step / 2)
        assert mid == pytest.approx(take.weights[3:5, INDEX[name]].mean(), abs=1e-5)
    assert action.frame_range[0] == pytest.approx(10) and action.frame_range[1] == pytest.approx(frames[-1])
    assert list(action["exomni_missing"]) == []


def test_the_shape_keys_play_the_take_when_the_scene_plays():
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001  # 29.97
    head = create_head()
    take = make_take(frames=30, fps=30)
    key_take(head, take, start_frame=5)
    blocks = head.data.shape_keys.key_blocks
    step = (30 / 1.001) / 30
    for frame in (5, 12, 20, 33):
        scene.frame_set(frame)
        t = (frame - 5) / step
        for name in ("jawOpen", "eyeBlinkLeft", "mouthSmileRight"):
            expected = np.interp(t, np.arange(30), take.weights[:, INDEX[name]])
            assert blocks[name].value == pytest.approx(expected, abs=1e-5)


def test_a_second_take_keeps_the_first_in_the_nla_and_both_play():
    scene = bpy.context.scene
    scene.render.fps = 30
    head = create_head()
    first_take, second_take = make_take(seed=1, text="first line"), make_take(seed=2, text="second line")
    first = key_take(head, first_take, start_frame=1)
    second = key_take(head, second_take, start_frame=101)
    ad = head.data.shape_keys.animation_data
    assert ad.action == second
    strips = [s for t in ad.nla_tracks for s in t.strips]
    assert [s.action for s in strips] == [first] and strips[0].name == first.name
    assert strips[0].frame_start == pytest.approx(1)
    jaw = head.data.shape_keys.key_blocks["jawOpen"]
    scene.frame_set(11)
    assert jaw.value == pytest.approx(first_take.weights[10, INDEX["jawOpen"]], abs=1e-5)
    scene.frame_set(111)
    assert jaw.value == pytest.approx(second_take.weights[10, INDEX["jawOpen"]], abs=1e-5)

    # A third take over the same frames as the second: the second goes to the NLA as well.
    third = key_take(head, make_take(seed=3, text="third"), start_frame=101)
    in_nla = {s.action for t in ad.nla_tracks for s in t.strips}
    assert in_nla == {first, second} and ad.action == third
    if compat.HAS_SLOTTED_ACTIONS:
        assert all(s.action_slot is not None for t in ad.nla_tracks for s in t.strips)


def test_the_animators_own_keys_are_pushed_down_not_lost():
    head = create_head()
    key = head.data.shape_keys
    blink = key.key_blocks["eyeBlinkLeft"]
    for frame, value in ((1, 0.0), (5, 1.0), (9, 0.0)):
        blink.value = value
        blink.keyframe_insert("value", frame=frame)
    own = key.animation_data.action
    own_keys = len(compat.all_fcurves(own)[0].keyframe_points)
    take_action = key_take(head, make_take(), start_frame=1)
    ad = key.animation_data
    assert ad.action == take_action
    tracks = {t.name: [s.action for s in t.strips] for t in ad.nla_tracks}
    assert tracks == {own.name: [own]}
    assert len(compat.all_fcurves(own)[0].keyframe_points) == own_keys


def test_identity_targets_match_arkit_names_ignoring_case_and_separators():
    weights = np.arange(3 * 52, dtype=np.float32).reshape(3, 52)
    names = ["JawOpen", "eye_blink_left", "mouth.Smile-Right", "EYEBLINKRIGHT", "Custom Key"]
    targets, report = _identity_targets(names, weights)
    assert set(targets) == {"JawOpen", "eye_blink_left", "mouth.Smile-Right", "EYEBLINKRIGHT"}
    assert np.array_equal(targets["JawOpen"], weights[:, INDEX["jawOpen"]])
    assert np.array_equal(targets["mouth.Smile-Right"], weights[:, INDEX["mouthSmileRight"]])
    assert report["mapped"]["eyeBlinkLeft"] == "eye_blink_left"
    assert report["unused"] == ["Custom Key"]
    assert len(report["missing"]) == 48 and "jawOpen" not in report["missing"]


def test_channels_without_a_shape_key_are_reported_on_the_action():
    rig = small_mesh(keys=("jawOpen", "eye_blink_left", "Custom"))
    action = key_take(rig, make_take())
    assert set(curves_by_name(action)) == {"jawOpen", "eye_blink_left"}
    missing = list(action["exomni_missing"])
    assert len(missing) == 50 and "mouthSmileLeft" in missing and "jawOpen" not in missing


def test_a_preset_supplies_the_mapping():
    class HalfJaw:
        name = "half jaw"

        def targets(self, key_names, weights):
            assert "JawDrop" in key_names and "Basis" not in key_names
            return {"JawDrop": 0.5 * weights[:, INDEX["jawOpen"]]}, {"missing": ["everything else"]}

    bpy.context.scene.render.fps = 30
    rig = small_mesh(keys=("JawDrop",))
    take = make_take(frames=12)
    action = key_take(rig, take, preset=HalfJaw())
    fc = curves_by_name(action)["JawDrop"]
    assert fc.evaluate(4) == pytest.approx(0.5 * take.weights[3, INDEX["jawOpen"]], abs=1e-6)
    assert action["exomni_preset"] == "half jaw" and list(action["exomni_missing"]) == ["everything else"]


def test_a_preset_naming_a_shape_key_the_rig_lacks_is_a_clear_error():
    class Wrong:
        def targets(self, key_names, weights):
            return {"Nope": weights[:, 0]}, {"missing": []}

    rig = small_mesh(keys=("JawDrop",))
    with pytest.raises(KeyingError, match="Nope.*preset"):
        key_take(rig, make_take(), preset=Wrong())


def test_objects_without_usable_shape_keys_get_errors_that_say_what_to_do():
    plain = small_mesh("Plain")
    with pytest.raises(KeyingError, match="create_head"):
        key_take(plain, make_take())
    rig = small_mesh("Other", keys=("Smile", "Frown"))
    with pytest.raises(KeyingError, match="retarget preset"):
        key_take(rig, make_take())
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    with pytest.raises(KeyingError, match="shape keys"):
        key_take(camera, make_take())
    assert not any(a.name.startswith("ExOmni") for a in bpy.data.actions)  # nothing half made
    with pytest.raises(KeyingError, match="no frames"):
        key_take(create_head(), Take(fps=30, weights=np.zeros((0, 52), np.float32)))


def test_a_linked_head_is_refused_clearly(tmp_path):
    create_head("LinkedHead")
    library = str(tmp_path / "library.blend")
    bpy.ops.wm.save_as_mainfile(filepath=library)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    with bpy.data.libraries.load(library, link=True) as (data_from, data_to):
        data_to.objects = ["LinkedHead"]
    linked = data_to.objects[0]
    bpy.context.scene.collection.objects.link(linked)
    assert linked.library is not None
    with pytest.raises(KeyingError, match="linked.*library override"):
        key_take(linked, make_take())
    # A library override the user has not made editable yet is refused too, saying so.
    override = linked.override_hierarchy_create(bpy.context.scene, bpy.context.view_layer)
    with pytest.raises(KeyingError, match="override that is not editable|linked"):
        key_take(override, make_take())
    assert not any(a.name.startswith("ExOmni") for a in bpy.data.actions)


def test_compat_keys_through_the_layered_and_the_legacy_fcurve_paths():
    paths = ([False] if compat.HAS_LAYERED_ACTIONS else []) + ([True] if compat.HAS_LEGACY_FCURVES else [])
    assert paths, "this Blender has neither way to hold F-curves"

    for legacy in paths:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        rig = small_mesh(keys=("jawOpen",))
        key = rig.data.shape_keys
        action = compat.new_action(f"compat {legacy}")
        fc = compat.new_fcurve(action, key, 'key_blocks["jawOpen"].value', group="ExOmni", legacy=legacy)
        fc.keyframe_points.add(2)
        fc.keyframe_points.foreach_set("co", [1.0, 0.0, 11.0, 1.0])
        fc.update()
        assert list(compat.action_fcurves(action, key, legacy=legacy)) == [fc]
        assert fc.group is not None and fc.group.name == "ExOmni"
        compat.assign_action(key, action)
        if compat.HAS_SLOTTED_ACTIONS:
            assert key.animation_data.action_slot is not None
            assert key.animation_data.action_slot.target_id_type == "KEY"
        bpy.context.scene.frame_set(6)
        assert key.key_blocks["jawOpen"].value == pytest.approx(0.5, abs=1e-5), f"legacy={legacy}"
        assert compat.all_fcurves(action) == [fc]


def test_benchmark_runs_from_the_command_line_and_prints_its_numbers():
    # Small sizes: this checks the command works, the benchmark itself is run by hand.
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "bench", "keying", "--frames", "300", "--insert-frames", "20",
         "--repeats", "1"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "key_take" in out and "keyframe_insert" in out and "speedup" in out
    assert "same curves from both: yes" in out


def test_sparse_keys_on_a_spoken_line_stay_within_the_tolerance():
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    take = PhoneticEngine().make_take(TakeRequest(
        text="Move the big blue box before the mob from the embassy shows up with their lawyers.", fps=30),
        Progress())
    dense = key_take(create_head("Dense"), take, start_frame=1)
    sparse = key_take(create_head("Sparse"), take, start_frame=1, tolerance=0.01)
    count = lambda action: sum(len(fc.keyframe_points) for fc in compat.all_fcurves(action))  # noqa: E731
    assert count(dense) == 52 * take.frames
    assert count(sparse) < 0.3 * count(dense)
    for name, fc in curves_by_name(sparse).items():
        want = take.channel(name)
        got = np.array([fc.evaluate(f) for f in range(1, take.frames + 1)])
        assert np.abs(got - want).max() <= 0.01 + 1e-5, name
        if want.max() == 0:
            assert len(fc.keyframe_points) == 1  # a still channel: one key, nothing to edit
