"""Applying a finished take in the add-on: what did not land is kept for the panel; face rigs get the jaw."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.core.arkit import ARKIT_52, INDEX  # noqa: E402
from exomni_blender.core.take import Take  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def scene(registered_scene):
    return registered_scene


def take(frames=30):
    w = np.zeros((frames, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 0.8, frames)
    return Take(fps=30, weights=w, text="Ah.")


def test_channels_without_a_key_are_listed_on_the_take_item(scene):
    from exomni_blender.blender import compat
    from exomni_blender.ui.takes.operators import apply_take

    mesh = bpy.data.meshes.new("partial")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("partial", mesh)
    scene.collection.objects.link(obj)
    compat.add_shape_key(obj, "Basis")
    for name in ARKIT_52[:40]:
        compat.add_shape_key(obj, name)
    item = apply_take(scene, obj, take(), 10)
    missing = item.missing.split(", ")
    assert sorted(missing) == sorted(ARKIT_52[40:])
    assert item.preset  # the detected family is recorded


def face_rig(scene):
    arm = bpy.data.armatures.new("rig")
    rig = bpy.data.objects.new("rig", arm)
    scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    head = arm.edit_bones.new("head")
    head.head, head.tail = (0, 0, 1.5), (0, 0, 1.7)
    jaw = arm.edit_bones.new("jaw")
    jaw.head, jaw.tail = (0, -0.02, 1.56), (0, -0.1, 1.5)
    jaw.parent = head
    bpy.ops.object.mode_set(mode="OBJECT")
    return rig


def test_a_bone_driven_face_gets_its_jaw_keyed(scene):
    from exomni_blender.ui import common
    from exomni_blender.ui.takes.operators import apply_take

    rig = face_rig(scene)
    assert common.is_head(rig)
    item = apply_take(scene, rig, take(), 1)
    action = rig.animation_data.action
    assert action is not None and item.action_name == action.name
    scene.frame_set(1)
    start = rig.pose.bones["jaw"].matrix.copy()
    scene.frame_set(30)
    assert any(abs(a - b) > 1e-3 for a, b in zip(rig.pose.bones["jaw"].matrix.col[1], start.col[1]))


def test_a_face_rig_that_cannot_take_the_jaw_is_reported_not_a_traceback(scene, tmp_path):
    from exomni_blender.ui import jobs

    rig = face_rig(scene)
    rig.pose.bones["jaw"].rotation_mode = "AXIS_ANGLE"
    scene.exomni.target = rig
    take().save(tmp_path / "take")
    with pytest.raises(RuntimeError, match="axis-angle") as err:
        bpy.ops.exomni.key_take_from_disk(filepath=str(tmp_path / "take"))
    assert "Traceback" not in str(err.value) and "axis-angle" in jobs.latest("generate").error


def test_a_face_rig_in_nla_tweak_mode_is_refused_and_keeps_its_keys(scene):
    from exomni_blender.blender.bone_face import BoneFaceError, key_bone_face

    rig = face_rig(scene)
    first = key_bone_face(rig, take())
    key_bone_face(rig, take(), start_frame=50)  # the first take goes into the NLA
    ad = rig.animation_data
    track = next(t for t in ad.nla_tracks if any(s.action == first for s in t.strips))
    ad.nla_tracks.active = track
    track.strips[0].select = True
    ad.use_tweak_mode = True
    assert ad.use_tweak_mode
    before = set(bpy.data.actions)
    with pytest.raises(BoneFaceError, match="tweak mode"):
        key_bone_face(rig, take(), start_frame=100)
    assert set(bpy.data.actions) == before and ad.action == first
