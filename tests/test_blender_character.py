"""Whole characters in the real bpy: one take keyed on every mesh and bone of a real avatar, in step.

The avatar is the MakeHuman head of tests/data (meshes Head, Teeth, Tongue, EyeLeft, EyeRight, each with
its own ARKit keys). The eye-bone rig is built here around it, its bones named as Ready Player Me names
them (Hips, Spine, Neck, Head, LeftEye, RightEye)."""

from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.blender import character as ch  # noqa: E402
from exomni_blender.core.arkit import INDEX  # noqa: E402

pytestmark = pytest.mark.blender

REPO = Path(__file__).resolve().parents[1]
AVATAR = REPO / "tests" / "data" / "avatars" / "makehuman_head.glb"
LINE = "Look over there, then back at me, and say hello to the nice people."


@pytest.fixture(scope="module")
def spoken():
    """A take of a spoken line from the phonetic engine (jaw, lips, blinks, gaze and head motion)."""
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    return PhoneticEngine().make_take(TakeRequest(text=LINE, fps=30), Progress())


def load_avatar(collection="Avatar"):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    bpy.ops.import_scene.gltf(filepath=str(AVATAR))
    return {o.name: o for o in bpy.data.objects}


def rpm_rig(meshes):
    """An armature around the avatar named as a Ready Player Me rig: the meshes are its children; the left
    eye bone points up (as in RPM files) and the right one forward, in Euler, so no axis is assumed."""
    arm = bpy.data.armatures.new("Armature")
    rig = bpy.data.objects.new("Armature", arm)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    bones = {}
    for name, head, tail, parent in (("Hips", (0, -0.06, 0.3), (0, -0.06, 0.4), None),
                                     ("Spine", (0, -0.06, 0.4), (0, -0.06, 0.55), "Hips"),
                                     ("Neck", (0, -0.06, 0.55), (0, -0.06, 0.62), "Spine"),
                                     ("Head", (0, -0.06, 0.62), (0, -0.06, 0.8), "Neck")):
        b = arm.edit_bones.new(name)
        b.head, b.tail = head, tail
        b.parent = bones.get(parent)
        bones[name] = b
    for name, mesh, along in (("LeftEye", "EyeLeft", (0, 0, 0.02)), ("RightEye", "EyeRight", (0, -0.02, 0))):
        centre = np.mean([list(c) for c in meshes[mesh].bound_box], axis=0)
        b = arm.edit_bones.new(name)
        b.head, b.tail = tuple(centre), tuple(centre + np.array(along))
        b.parent = bones["Head"]
    bpy.ops.object.mode_set(mode="OBJECT")
    rig.pose.bones["RightEye"].rotation_mode = "XYZ"
    for mesh in meshes.values():
        mesh.parent = rig
    return rig


def values_over(scene, frames, read):
    out = []
    for f in frames:
        scene.frame_set(int(f))
        out.append(read())
    return np.array(out)


def shape_value(obj, name):
    return lambda: obj.data.shape_keys.key_blocks[name].value


def test_one_take_moves_every_mesh_of_the_avatar_in_step(spoken):
    objs = load_avatar()
    scene = bpy.context.scene
    made = ch.key_character(objs["Head"], spoken, start_frame=1)
    assert list(made.keyed) == ["Head", "Teeth", "Tongue", "EyeLeft", "EyeRight"]
    assert made.summary() == "Head, Teeth, Tongue, EyeLeft, EyeRight" and made.main == "Head"
    # the take's Actions visibly belong together: one take id, one name with the part after it
    ids = {a[ch.TAKE_ID] for a in made.actions.values()}
    assert len(ids) == 1 and ids == {made.take_id}
    for label, action in made.actions.items():
        assert action.name == f"ExOmni: Look over there, then back at me, and... [{label}]"
        assert objs[label].data.shape_keys.animation_data.action == action

    frames = np.arange(1, spoken.frames + 1)
    head_jaw = values_over(scene, frames, shape_value(objs["Head"], "jawOpen"))
    teeth_jaw = values_over(scene, frames, shape_value(objs["Teeth"], "jawOpen"))
    tongue_jaw = values_over(scene, frames, shape_value(objs["Tongue"], "jawOpen"))
    assert head_jaw.max() > 0.3  # the line opens the jaw
    corr = float(np.corrcoef(head_jaw, teeth_jaw)[0, 1])
    print(f"teeth/head jawOpen correlation {corr:.4f}, peaks at frames "
          f"{int(np.argmax(head_jaw)) + 1} / {int(np.argmax(teeth_jaw)) + 1}")
    assert corr > 0.9 and np.argmax(teeth_jaw) == np.argmax(head_jaw)
    assert np.allclose(teeth_jaw, head_jaw, atol=1e-5) and np.allclose(tongue_jaw, head_jaw, atol=1e-5)

    # the eye meshes follow the gaze channels
    for mesh, side in (("EyeLeft", "Left"), ("EyeRight", "Right")):
        for look in ("In", "Out", "Up", "Down"):
            name = f"eyeLook{look}{side}"
            got = values_over(scene, frames[::3], shape_value(objs[mesh], name))
            assert np.allclose(got, spoken.channel(name)[::3], atol=1e-5), name
        assert spoken.channel(f"eyeLookIn{side}").max() > 0.04  # the take does look around


def test_choosing_the_teeth_or_a_body_without_keys_finds_the_same_character():
    objs = load_avatar()
    mesh = bpy.data.meshes.new("Body")
    mesh.from_pydata([(x, y, z) for x in (-0.25, 0.25) for y in (-0.2, 0.15) for z in (0.0, 0.85)], [],
                     [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])
    body = bpy.data.objects.new("Body", mesh)
    bpy.context.scene.collection.objects.link(body)
    far = bpy.data.objects.new("OtherHead", objs["Head"].data.copy())  # another character beside it
    far.location = (3, 0, 0)
    bpy.context.scene.collection.objects.link(far)
    bpy.context.view_layer.update()
    want = {"Head", "Teeth", "Tongue", "EyeLeft", "EyeRight"}
    for chosen in ("Teeth", "Body", "EyeRight"):
        obj = bpy.data.objects[chosen]
        assert {p.label for p in ch.check_character(obj)} == want, chosen
    assert {p.label for p in ch.check_character(far)} == {"OtherHead"}
    made = ch.key_character(body, _take(), exclude=("Tongue",))
    assert set(made.keyed) == want - {"Tongue"} and made.main == "Head"
    assert objs["Tongue"].data.shape_keys.animation_data is None


def _take(frames=60):
    from exomni_blender.core.take import Take

    w = np.zeros((frames, 52), np.float32)
    t = np.arange(frames) / 30
    w[:, INDEX["jawOpen"]] = np.clip(np.sin(t * 6), 0, None) * 0.6
    w[:, INDEX["eyeLookOutLeft"]] = w[:, INDEX["eyeLookInRight"]] = np.clip(np.sin(t * 3), 0, None)
    w[:, INDEX["eyeLookInLeft"]] = w[:, INDEX["eyeLookOutRight"]] = np.clip(-np.sin(t * 3), 0, None)
    w[:, INDEX["eyeLookUpLeft"]] = w[:, INDEX["eyeLookUpRight"]] = np.clip(np.cos(t * 2), 0, None)
    w[:, INDEX["eyeLookDownLeft"]] = w[:, INDEX["eyeLookDownRight"]] = np.clip(-np.cos(t * 2), 0, None)
    return Take(fps=30, weights=w, text="Looking around")


def gaze_of(rig, bone):
    """The eye bone's gaze in the world (the rest gaze is -Y: the character looks forward)."""
    def read():
        pb = rig.pose.bones[bone]
        rest = np.array([list(r) for r in pb.bone.matrix_local], np.float64)[:3, :3]
        posed = np.array([list(r) for r in pb.matrix], np.float64)[:3, :3]
        return (posed @ rest.T) @ np.array([0.0, -1.0, 0.0])
    return read


def pupil_shift(mesh):
    """How far the front of the eye mesh moves sideways and up (x, z) with its shape keys, evaluated."""
    base = np.array([list(v.co) for v in mesh.data.vertices])
    front = int(np.argmin(base[:, 1]))

    def read():
        evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
        moved = np.array(evaluated.data.vertices[front].co) - base[front]
        return moved[[0, 2]]
    return read


def test_eye_bones_of_a_ready_player_me_rig_follow_the_gaze_channels():
    objs = load_avatar()
    scene = bpy.context.scene
    rig = rpm_rig({n: o for n, o in objs.items() if o.type == "MESH"})
    take = _take()
    parts = {p.label: p.kind for p in ch.check_character(objs["Head"])}
    assert parts["LeftEye"] == parts["RightEye"] == ch.EYE_BONE and parts["Head"] == ch.MESH
    assert parts["Head (bone)"] == ch.HEAD_BONE  # the bone named as the mesh is told apart
    made = ch.key_character(objs["Head"], take)
    assert set(made.keyed) >= {"Head", "Teeth", "EyeLeft", "EyeRight", "LeftEye", "RightEye"}
    bone_action = rig.animation_data.action
    assert made.actions["LeftEye"] == bone_action and bone_action[ch.TAKE_ID] == made.take_id
    assert made.keyed["RightEye"] == ["rotation_euler"] and made.keyed["LeftEye"] == ["rotation_quaternion"]

    frames = np.arange(1, take.frames + 1)
    for bone, mesh, side in (("LeftEye", "EyeLeft", "left"), ("RightEye", "EyeRight", "right")):
        gaze = values_over(scene, frames, gaze_of(rig, bone))
        pupil = values_over(scene, frames, pupil_shift(objs[mesh]))
        turn = np.degrees(np.arctan2(gaze[:, 0], -gaze[:, 1]))
        lift = np.degrees(np.arcsin(np.clip(gaze[:, 2], -1, 1)))
        want_turn, want_lift = (np.degrees(a) for a in ch.gaze_angles(take.weights, side))
        assert np.abs(turn - want_turn).max() < 0.5 and np.abs(lift - want_lift).max() < 0.5
        assert abs(turn).max() == pytest.approx(ch.GAZE_SIDE_DEG, abs=0.5)
        assert lift.max() == pytest.approx(ch.GAZE_UP_DEG, abs=0.5)
        assert lift.min() == pytest.approx(-ch.GAZE_DOWN_DEG, abs=0.5)
        # the bone turns the way the artist's own gaze shapes move the eye mesh
        side_corr = float(np.corrcoef(turn, pupil[:, 0])[0, 1])
        lift_corr = float(np.corrcoef(lift, pupil[:, 1])[0, 1])
        print(f"{bone}: turn/pupil x correlation {side_corr:.3f}, lift/pupil z {lift_corr:.3f}")
        assert side_corr > 0.9 and lift_corr > 0.9


def test_an_eye_bone_that_moves_an_eye_mesh_with_gaze_shapes_is_left_to_the_shapes():
    objs = load_avatar()
    rig = rpm_rig({n: o for n, o in objs.items() if o.type == "MESH"})
    eye = objs["EyeLeft"]
    eye.vertex_groups.new(name="LeftEye").add(list(range(len(eye.data.vertices))), 1.0, "REPLACE")
    eye.modifiers.new("Armature", "ARMATURE").object = rig
    character = ch.find_character(objs["Teeth"])
    left = next(p for p in character.parts if p.label == "LeftEye")
    assert "EyeLeft turns with its own gaze shapes" in left.note
    made = ch.key_character(objs["Teeth"], _take())
    assert "LeftEye" not in made.keyed and "RightEye" in made.keyed and "LeftEye" in made.skipped


def test_rigify_eye_targets_are_moved_so_the_tracking_eyes_turn():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    arm = bpy.data.armatures.new("rig")
    rig = bpy.data.objects.new("rig", arm)
    bpy.context.scene.collection.objects.link(rig)
    bpy.context.view_layer.objects.active = rig
    bpy.ops.object.mode_set(mode="EDIT")
    head = arm.edit_bones.new("head")
    head.head, head.tail = (0, 0, 1.5), (0, 0, 1.7)
    for side, x in (("L", 0.03), ("R", -0.03)):
        mch = arm.edit_bones.new(f"MCH-eye.{side}")
        mch.head, mch.tail, mch.parent = (x, -0.08, 1.62), (x, -0.1, 1.62), head
        target = arm.edit_bones.new(f"eye.{side}")
        target.head, target.tail, target.parent = (x, -0.4, 1.62), (x, -0.42, 1.62), head
    bpy.ops.object.mode_set(mode="OBJECT")
    for side in "LR":
        c = rig.pose.bones[f"MCH-eye.{side}"].constraints.new("DAMPED_TRACK")
        c.target, c.subtarget = rig, f"eye.{side}"
    assert ch.find_eye_bones(rig) == {"left": "eye.L", "right": "eye.R"}
    mesh = bpy.data.meshes.new("Face")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    face = bpy.data.objects.new("Face", mesh)  # a face without shape keys: only the bones move
    bpy.context.scene.collection.objects.link(face)
    face.parent = rig
    take = _take()
    made = ch.key_character(face, take)
    assert made.keyed["eye.L"] == ["location"] and made.main_object == "rig"
    scene = bpy.context.scene
    frames = np.arange(1, take.frames + 1, 4)
    gaze = values_over(scene, frames, lambda: np.array(rig.pose.bones["MCH-eye.L"].matrix.col[1][:3]))
    turn = np.degrees(np.arctan2(gaze[:, 0], -gaze[:, 1]))
    want = np.degrees(ch.gaze_angles(take.weights, "left")[0])[frames - 1]
    assert np.abs(turn - want).max() < 1.0


def test_a_body_without_keys_is_refused_before_a_take_is_made(registered_scene):
    from exomni_blender.ui import jobs

    scene = registered_scene
    mesh = bpy.data.meshes.new("Body")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    body = bpy.data.objects.new("Body", mesh)
    scene.collection.objects.link(body)
    bpy.context.view_layer.objects.active = body
    scene.exomni.text = "Hello."
    with pytest.raises(RuntimeError) as err:
        bpy.ops.exomni.generate()
    message = str(err.value)
    assert "'Body' has nothing a take can move" in message and "Select the head" in message
    assert "Add Demo Head" in message and "Make Shapes" in message and "Traceback" not in message
    assert "nothing a take can move" in jobs.latest("generate").error  # the panel keeps saying it
    assert not jobs.busy() and len(scene.exomni.takes) == 0
    with pytest.raises(ch.CharacterError, match="Select the head"):
        ch.check_character(body)


def test_layered_takes_turn_the_whole_head_once(spoken):
    objs = load_avatar()
    made = ch.key_character(objs["Teeth"], spoken, layered=True)
    assert made.summary() == "Head, Teeth, Tongue, EyeLeft, EyeRight"
    assert set(made.layered.actions) >= {"mouth", "eyes", "head"}
    scene = bpy.context.scene
    scene.frame_set(spoken.frames // 2)
    # a split avatar exported flat (one origin): every mesh turns with the head, none is left behind
    turns = {n: tuple(round(v, 6) for v in objs[n].delta_rotation_euler) for n in made.keyed}
    assert len(set(turns.values())) == 1 and any(abs(v) > 1e-4 for v in turns["Head"])
    teeth = objs["Teeth"].data.shape_keys.key_blocks["jawOpen"].value
    assert teeth == pytest.approx(objs["Head"].data.shape_keys.key_blocks["jawOpen"].value, abs=1e-3)

    objs = load_avatar()
    rig = rpm_rig({n: o for n, o in objs.items() if o.type == "MESH"})
    made = ch.key_character(objs["Head"], spoken, layered=True)
    heads = [a for a in bpy.data.actions if a.name.endswith("[head]")]
    assert len(heads) == 1 and rig.animation_data.nla_tracks  # the head bone, turned once
    assert "Head (bone)" not in made.keyed and {"LeftEye", "RightEye"} <= set(made.keyed)
    assert all(o.animation_data is None for o in objs.values() if o.type == "MESH")  # no object turns


def test_a_dialogue_line_moves_every_mesh_of_the_character(spoken, tmp_path):
    """A dialogue scene keys each line on the whole character as layers: the teeth open with the head."""
    from exomni_blender.blender.dialogue_scene import DIALOGUE_TRACK, build_into_scene

    meshes = load_avatar()
    folder = spoken.save(tmp_path / "line")
    frames = spoken.frames
    plan = {"fps": 30.0, "frame_start": 1, "frame_end": frames + 10, "seed": 1,
            "characters": [{"character": "ANNA", "object": "Head", "channel": 1, "seed": 3}],
            "lines": [{"index": 0, "character": "ANNA", "take": str(folder), "start_frame": 5,
                       "strip": "ANNA 1", "marker": "1 ANNA: Look over", "gain": 1.0}]}
    build_into_scene(bpy.context.scene, plan)
    teeth_tracks = [t.name for t in meshes["Teeth"].data.shape_keys.animation_data.nla_tracks]
    assert any(n.startswith(DIALOGUE_TRACK) for n in teeth_tracks), teeth_tracks
    scene = bpy.context.scene
    head_jaw, teeth_jaw = [], []
    for f in range(5, 5 + frames, 2):
        scene.frame_set(f)
        head_jaw.append(meshes["Head"].data.shape_keys.key_blocks["jawOpen"].value)
        teeth_jaw.append(meshes["Teeth"].data.shape_keys.key_blocks["jawOpen"].value)
    head_jaw, teeth_jaw = np.array(head_jaw), np.array(teeth_jaw)
    assert head_jaw.max() > 0.2
    assert np.corrcoef(head_jaw, teeth_jaw)[0, 1] > 0.9 and abs(teeth_jaw.max() - head_jaw.max()) < 0.05


def test_change_mood_acts_on_every_mesh_of_a_layered_take(spoken):
    """Change Mood re-keys the expression layer on each mesh the take keyed, the mouth layers untouched."""
    from exomni_blender.blender.layers import LAYER_KEY

    meshes = load_avatar()
    result = ch.key_character(meshes["Head"], spoken, start_frame=1, layered=True)
    assert len(result.layers) >= 3
    mouth_before = {label: lt.actions["mouth"] for label, lt in result.layers.items()}
    changed = ch.change_mood(meshes["Head"], result.layered.actions["mouth"], "happy", 1.0)
    assert {"Head", "EyeLeft", "EyeRight"} <= set(changed)
    scene = bpy.context.scene
    scene.frame_set(spoken.frames // 2)
    smile = meshes["Head"].data.shape_keys.key_blocks["mouthSmileLeft"].value
    squint = meshes["EyeLeft"].data.shape_keys.key_blocks.get("eyeSquintLeft")
    assert smile > 0.3, smile  # the happy mood's smile (0.45 at full intensity), over the line's middle
    for label, action in mouth_before.items():
        assert action.get(LAYER_KEY) == "mouth" and action.name in bpy.data.actions  # untouched
    if squint is not None:
        assert squint.value > 0.1


def test_a_ready_player_me_head_keys_its_teeth_and_eyes_too(spoken):
    """A second family: the Ready Player Me head extract (tests/data/avatars/rpm_head.glb: Head, Teeth,
    EyeLeft, EyeRight, each with the artist's ARKit keys, no armature): picking the head keys them all."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    bpy.ops.import_scene.gltf(filepath=str(REPO / "tests" / "data" / "avatars" / "rpm_head.glb"))
    meshes = {o.name: o for o in bpy.data.objects if o.type == "MESH"}
    assert {"Head", "Teeth", "EyeLeft", "EyeRight"} <= set(meshes)
    result = ch.key_character(meshes["Head"], spoken, start_frame=1)
    assert {"Head", "Teeth", "EyeLeft", "EyeRight"} <= set(result.keyed), (result.keyed, result.skipped)
    scene = bpy.context.scene
    head, teeth = [], []
    for f in range(1, spoken.frames, 2):
        scene.frame_set(f)
        head.append(meshes["Head"].data.shape_keys.key_blocks["jawOpen"].value)
        teeth.append(meshes["Teeth"].data.shape_keys.key_blocks["jawOpen"].value)
    assert max(head) > 0.2 and np.corrcoef(head, teeth)[0, 1] > 0.9


def test_an_ict_facekit_head_keys_gums_teeth_and_eyes_in_step(spoken):
    """A third family: the ICT-FaceKit face (tests/data/avatars/ict_head.glb: Head, GumsTongue, Teeth,
    EyeLeft, EyeRight, each with the scan's 53 expression shapes named eyeBlink_L ..., no armature).
    Picking the head keys all five; gums and teeth open with the head's jaw, the eye meshes take the
    gaze and the lids, and browInnerUp, split in two on this rig, moves both halves."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    bpy.ops.import_scene.gltf(filepath=str(REPO / "tests" / "data" / "avatars" / "ict_head.glb"))
    meshes = {o.name: o for o in bpy.data.objects if o.type == "MESH"}
    parts = {"Head", "GumsTongue", "Teeth", "EyeLeft", "EyeRight"}
    result = ch.key_character(meshes["EyeLeft"], spoken, start_frame=1)  # any mesh of the character will do
    assert parts <= set(result.keyed), (result.keyed, result.skipped)
    scene = bpy.context.scene
    track = {(m, k): [] for m in parts for k in ("jawOpen", "eyeLookUp_L", "eyeLookOut_L", "eyeBlink_L",
                                                 "browInnerUp_L", "browInnerUp_R")}
    for f in range(1, spoken.frames, 2):
        scene.frame_set(f)
        for (m, k), values in track.items():
            values.append(meshes[m].data.shape_keys.key_blocks[k].value)
    head = np.array(track[("Head", "jawOpen")])
    assert head.max() > 0.2
    for part in ("GumsTongue", "Teeth"):
        part_jaw = np.array(track[(part, "jawOpen")])
        assert np.corrcoef(head, part_jaw)[0, 1] > 0.9 and part_jaw.max() == pytest.approx(head.max(), abs=1e-3)
    gaze = np.array(track[("EyeLeft", "eyeLookOut_L")]) + np.array(track[("EyeLeft", "eyeLookUp_L")])
    assert gaze.max() > 0.05 and np.array(track[("EyeLeft", "eyeBlink_L")]).max() > 0.5
    assert track[("Head", "browInnerUp_L")] == track[("Head", "browInnerUp_R")]


def test_characters_moved_apart_by_a_script_stay_apart():
    """Two demo heads made at one spot and moved apart in the same script (no redraw in between) are two
    characters, not one: world positions are brought up to date before meshes are grouped."""
    from exomni_blender.blender.head import create_head

    bpy.ops.wm.read_factory_settings(use_empty=True)
    a, b = create_head("AnnaHead"), create_head("BobHead")
    b.location.x += 2.0  # no view-layer update yet: matrix_world still puts both at the origin
    found = ch.find_character(a)
    assert [p.object_name for p in found.meshes()] == ["AnnaHead"], found.parts
