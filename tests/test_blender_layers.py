"""A take as directable layers in the real bpy: mouth, eyes, expression, head; mute, scale, replace; sparse keys."""

import math

import bpy
import numpy as np
import pytest
from mathutils import Euler, Matrix

from exomni_blender.blender import compat, layers
from exomni_blender.blender.fcurves import read_fcurve
from exomni_blender.blender.head import create_head
from exomni_blender.core import face
from exomni_blender.core.arkit import ARKIT_52, INDEX
from exomni_blender.core.take import Phoneme, Take

pytestmark = pytest.mark.blender

FPS = 30
FRAMES = 120


@pytest.fixture(autouse=True)
def empty_file():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = FPS, 1.0


def neutral_weights(seed=0):
    """A made-up neutral performance: a talking jaw and lips, brows on emphasis, blinks and gaze."""
    rng = np.random.default_rng(seed)
    t = np.arange(FRAMES) / FPS
    w = np.zeros((FRAMES, 52), np.float32)
    w[:, INDEX["jawOpen"]] = 0.3 * (1 + np.sin(2 * np.pi * 3.1 * t)) / 2
    w[:, INDEX["mouthFunnel"]] = 0.2 * (1 + np.sin(2 * np.pi * 1.7 * t + 1)) / 2
    w[:, INDEX["browInnerUp"]] = 0.3 * np.exp(-((t - 1.5) / 0.2) ** 2)
    blink = face.blink_curve(t, [1.0, 3.0], FPS, rng)
    w[:, INDEX["eyeBlinkLeft"]] = w[:, INDEX["eyeBlinkRight"]] = blink
    w[:, INDEX["eyeLookOutLeft"]] = w[:, INDEX["eyeLookInRight"]] = np.where(t > 2.0, 0.12, 0.0)
    return w


def make_take(mood="happy", intensity=1.0, head=True, seed=0):
    neutral = neutral_weights(seed)
    weights = face.with_mood(neutral, FPS, mood, intensity)
    meta = face.performance_meta(mood, intensity, 1.0)
    if head:
        rng = np.random.default_rng(seed)
        meta[face.HEAD_ROTATION] = face.head_rotation_json(
            face.head_motion(FRAMES / FPS, FPS, [(0.8, 1.0), (2.2, 0.7)], [1.9], rng))
    return Take(fps=FPS, weights=weights, text="The ferry leaves at nine.", engine="phonetic", meta=meta,
                phonemes=[Phoneme("f", 0.2, 0.3)])


def values_at(obj, frame):
    bpy.context.scene.frame_set(frame)
    return np.array([obj.data.shape_keys.key_blocks[n].value for n in ARKIT_52])


def track(obj, layer):
    ad = obj.data.shape_keys.animation_data
    return next(t for t in ad.nla_tracks if t.name.startswith(layers.TRACKS[layer]))


def test_a_take_lands_as_four_layers_and_plays_back_as_the_take():
    head = create_head()
    take = make_take()
    made = layers.key_layers(head, take, start_frame=11)

    assert set(made.actions) == {"mouth", "eyes", "expression", "head"}
    key_ad = head.data.shape_keys.animation_data
    assert key_ad.action is None  # every layer is a strip the animator can direct
    blends = {layer: made.strips[layer].blend_type for layer in made.strips}
    assert blends == {"mouth": "REPLACE", "eyes": "REPLACE", "expression": "ADD", "head": "REPLACE"}
    assert head.animation_data.nla_tracks[0].strips[0].action == made.actions["head"]
    for frame in (11, 40, 75, 129):
        # two layers can each be off by the sparse tolerance on a channel
        assert np.abs(values_at(head, frame) - take.weights[frame - 11]).max() <= 2 * layers.DEFAULT_TOLERANCE + 1e-4
    # the head turns as the take says: delta rotation of the object, pitch about X, yaw about Z
    bpy.context.scene.frame_set(11 + 25)
    pitch, yaw, roll = np.radians(face.head_rotation(take.meta)[25])
    expected = (Euler((0, 0, yaw)).to_matrix() @ Euler((pitch, 0, 0)).to_matrix() @ Euler((0, roll, 0)).to_matrix())
    got = head.delta_rotation_euler.to_matrix()
    assert np.abs(np.array(got) - np.array(expected)).max() < math.radians(0.1)


def test_muting_a_layer_leaves_the_others_untouched():
    head = create_head()
    take = make_take()
    layers.key_layers(head, take, start_frame=1)
    frame = 33  # eyes shut in a blink, mid-speech, mood on
    both = values_at(head, frame)
    eye = np.array([n.startswith(("eyeBlink", "eyeLook")) for n in ARKIT_52])
    mood = face.mood_curves(FRAMES, FPS, "happy", 1.0)[frame - 1] > 0

    track(head, "eyes").mute = True
    no_eyes = values_at(head, frame)
    assert np.allclose(no_eyes[~eye], both[~eye], atol=1e-6) and both[INDEX["eyeBlinkLeft"]] > 0.5
    assert np.all(no_eyes[eye] == 0.0)
    track(head, "eyes").mute = False

    track(head, "expression").mute = True
    neutral = values_at(head, frame)
    assert np.allclose(neutral[~mood], both[~mood], atol=1e-6)
    assert np.all(neutral[mood] < both[mood] - 0.1)  # the mood is gone, the rest is as it was
    assert abs(neutral[INDEX["jawOpen"]] - both[INDEX["jawOpen"]]) < 1e-6
    track(head, "expression").mute = False

    values_at(head, frame)
    moving = head.delta_rotation_euler.copy()
    values_at(head, frame + 40)
    assert head.delta_rotation_euler != moving
    head.animation_data.nla_tracks[0].mute = True  # the head stops moving; the face plays on
    assert np.allclose(values_at(head, frame), both, atol=1e-6)
    held = head.delta_rotation_euler.copy()
    values_at(head, frame + 40)
    assert head.delta_rotation_euler == held


def test_influence_scales_the_mood_and_another_mood_replaces_only_the_expression():
    head = create_head()
    made = layers.key_layers(head, make_take("happy"), start_frame=1)
    frame = 60
    full = values_at(head, frame)
    layers.set_influence(made.strips["expression"], 0.5)
    half = values_at(head, frame)
    smile = INDEX["mouthSmileLeft"]
    assert half[smile] == pytest.approx(full[smile] - 0.5 * face.MOODS["happy"]["mouthSmileLeft"], abs=0.02)

    others = {k: (a.name, len(compat.all_fcurves(a))) for k, a in made.actions.items() if k != "expression"}
    angry = layers.key_mood(head, "angry", 1.0)
    assert angry is not None and angry["mood"] == "angry"
    assert made.actions["mouth"].name in bpy.data.actions and "expression" not in [
        a.get(layers.LAYER_KEY) for a in bpy.data.actions if a.get("mood") == "happy"]
    assert {k: (a.name, len(compat.all_fcurves(a))) for k, a in made.actions.items() if k != "expression"} == others
    now = values_at(head, frame)
    assert now[INDEX["browDownLeft"]] > 0.4 and now[smile] < 0.05  # angry brows, no smile left
    assert abs(now[INDEX["jawOpen"]] - full[INDEX["jawOpen"]]) < 1e-6
    strips = [s for t in head.data.shape_keys.animation_data.nla_tracks for s in t.strips
              if s.action.get(layers.LAYER_KEY) == "expression"]
    assert len(strips) == 1 and strips[0].blend_type == "ADD"

    assert layers.key_mood(head, "neutral") is None  # neutral: the layer is only removed
    assert np.allclose(values_at(head, frame)[INDEX["browDownLeft"]], 0.0, atol=1e-6)


def test_sparse_keys_stay_within_the_tolerance_and_still_channels_hold_one_key():
    head = create_head()
    take = make_take(head=False)
    made = layers.key_layers(head, take, start_frame=1)
    dense = layers.key_layers(create_head("Dense"), take, start_frame=1, sparse=False)
    assert made.keys < 0.25 * dense.keys, (made.keys, dense.keys)
    parts = layers.split(take)
    keyed = set()
    for layer, action in made.actions.items():
        for fc in compat.all_fcurves(action):
            name = fc.data_path[len('key_blocks["'):-len('"].value')]
            keyed.add(name)
            want = parts["expression"] if layer == "expression" else parts["neutral"].copy()
            if layer == "mouth":
                want[:, layers.EYE_CHANNELS] = 0.0  # the base holds the eyes at rest
            frames, _ = read_fcurve(fc)
            assert fc.keyframe_points[0].interpolation == "LINEAR"
            got = np.array([fc.evaluate(f) for f in range(1, FRAMES + 1)])
            assert np.abs(got - want[:, INDEX[name]]).max() <= layers.DEFAULT_TOLERANCE + 1e-5, (layer, name)
            if np.abs(want[:, INDEX[name]]).max() == 0 or (layer == "mouth" and name.startswith("eye")):
                assert layer != "expression" and len(frames) == 1  # owns the channel, one key
    still = {n for i, n in enumerate(ARKIT_52) if np.abs(take.weights[:, i]).max() == 0}
    assert still and still <= keyed


def test_an_armature_head_turns_its_head_bone():
    arm_data = bpy.data.armatures.new("Rig")
    rig = bpy.data.objects.new("Rig", arm_data)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    neck = arm_data.edit_bones.new("neck")
    neck.head, neck.tail = (0, 0, 1.4), (0, 0, 1.5)
    bone = arm_data.edit_bones.new("head")
    bone.head, bone.tail, bone.parent = (0, 0, 1.5), (0, 0.02, 1.7), neck
    bone.roll = 0.4  # the bone's own axes are not the armature's: the conversion must handle it
    bpy.ops.object.mode_set(mode="OBJECT")
    mesh = create_head()
    mesh.parent = rig

    take = make_take()
    made = layers.key_layers(mesh, take, start_frame=1)
    assert made.strips["head"].id_data == rig and made.strips["head"].blend_type == "COMBINE"
    assert rig.pose.bones["head"].rotation_mode == "QUATERNION"
    frame = 25
    bpy.context.scene.frame_set(frame)
    pose = rig.pose.bones["head"]
    rest = rig.data.bones["head"].matrix_local.to_3x3()
    turned = pose.matrix.to_3x3() @ rest.inverted()  # the head's turn in the armature's axes
    pitch, yaw, roll = np.radians(face.head_rotation(take.meta)[frame - 1])
    expected = Euler((0, 0, yaw)).to_matrix() @ Euler((pitch, 0, 0)).to_matrix() @ Euler((0, roll, 0)).to_matrix()
    assert np.abs(np.array(turned) - np.array(expected)).max() < math.radians(0.2)
    assert mesh.delta_rotation_euler.to_matrix() == Matrix.Identity(3)  # the bone turns, not the mesh


def test_layers_of_two_takes_share_tracks_and_keep_earlier_takes():
    head = create_head()
    layers.key_layers(head, make_take("happy"), start_frame=1)
    layers.key_layers(head, make_take("sad", seed=1), start_frame=FRAMES + 20)
    ad = head.data.shape_keys.animation_data
    names = [t.name for t in ad.nla_tracks]
    assert names.count(layers.TRACKS["mouth"]) == 1 and len(names) == 3
    assert all(len(t.strips) == 2 for t in ad.nla_tracks)
    # the first take's mood is still there and the second's is sad
    assert values_at(head, 60)[INDEX["mouthSmileLeft"]] > 0.3
    assert values_at(head, FRAMES + 80)[INDEX["mouthFrownLeft"]] > 0.3
    # key_mood on the second take only
    second = [a for a in bpy.data.actions if a.get("mood") == "sad" and a.get(layers.LAYER_KEY) == "mouth"][0]
    layers.key_mood(head, "surprised", 1.0, take_action=second)
    assert values_at(head, 60)[INDEX["mouthSmileLeft"]] > 0.3
    assert values_at(head, FRAMES + 80)[INDEX["eyeWideLeft"]] > 0.3


def test_key_mood_needs_a_layered_take():
    head = create_head()
    with pytest.raises(layers.KeyingError, match="key_layers"):
        layers.key_mood(head, "happy")
    layers.key_layers(head, make_take(), start_frame=1)
    with pytest.raises(ValueError, match="moods are"):
        layers.key_mood(head, "glad")


def test_a_live_link_face_csv_with_head_rotation_keys_the_head_layer(tmp_path):
    from exomni_blender.core.exchange.livelink import read_livelink_csv, write_livelink_csv

    take = make_take("neutral")
    back = read_livelink_csv(write_livelink_csv(take, tmp_path / "line.csv"), fps=FPS, audio=False)
    head = create_head()
    made = layers.key_layers(head, back, start_frame=1)
    assert "head" in made.strips and "expression" not in made.actions  # neutral: no mood layer
    bpy.context.scene.frame_set(40)
    pitch, yaw, roll = np.radians(face.head_rotation(take.meta)[39])
    assert head.delta_rotation_euler.x == pytest.approx(pitch, abs=math.radians(0.2))
