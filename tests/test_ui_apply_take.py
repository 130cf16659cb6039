"""Applying a finished take in the add-on: what did not land is kept for the panel; face rigs get the jaw."""

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.arkit import ARKIT_52, INDEX  # noqa: E402
from exomni_blender.take import Take  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def scene():
    import exomni_blender

    bpy.ops.wm.read_homefile(use_empty=True)
    exomni_blender.register()
    yield bpy.context.scene
    exomni_blender.unregister()


def take(frames=30):
    w = np.zeros((frames, 52), np.float32)
    w[:, INDEX["jawOpen"]] = np.linspace(0, 0.8, frames)
    return Take(fps=30, weights=w, text="Ah.")


def test_channels_without_a_key_are_listed_on_the_take_item(scene):
    from exomni_blender import compat
    from exomni_blender.operators import apply_take

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


def test_a_bone_driven_face_gets_its_jaw_keyed(scene):
    from exomni_blender import props
    from exomni_blender.operators import apply_take

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
    assert props.is_head(rig)
    item = apply_take(scene, rig, take(), 1)
    action = rig.animation_data.action
    assert action is not None and item.action_name == action.name
    scene.frame_set(1)
    start = rig.pose.bones["jaw"].matrix.copy()
    scene.frame_set(30)
    assert any(abs(a - b) > 1e-3 for a, b in zip(rig.pose.bones["jaw"].matrix.col[1], start.col[1]))
