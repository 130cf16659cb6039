"""Retargeting in the real Blender (bpy): heads built from each family's names, keying through the presets,
the preset editor's operators and preview, and bone-driven jaws."""

import math

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.blender import bone_face, compat  # noqa: E402
from exomni_blender.core import retarget  # noqa: E402
from exomni_blender.ui import retarget as retarget_ui  # noqa: E402
from exomni_blender.core.arkit import INDEX  # noqa: E402
from exomni_blender.core.take import Take  # noqa: E402
from test_retarget_rig_names import ARKIT, FAMILIES, UNRELATED  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def presets():
    return retarget.load_presets(include_user=False)


@pytest.fixture
def scene():
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    made = []
    yield scene, made
    for obj in made:
        data = obj.data
        bpy.data.objects.remove(obj, do_unlink=True)
        if data is not None and data.users == 0:
            (bpy.data.meshes if isinstance(data, bpy.types.Mesh) else bpy.data.armatures).remove(data)


def make_head(scene_and_made, name, keys):
    scene, made = scene_and_made
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    made.append(obj)
    compat.add_shape_key(obj, "Basis")
    for k in keys:
        compat.add_shape_key(obj, k)  # at 0 on every Blender (5.0 starts new keys at 1)
    assert len(obj.data.shape_keys.key_blocks) == len(keys) + 1, "Blender renamed a key"
    return obj


def take_of(frames=24, seed=3):
    weights = np.random.default_rng(seed).random((frames, 52)).astype(np.float32)
    return Take(fps=30.0, weights=weights, text="retarget test")


def keyed_values(action) -> dict:
    """{shape key name: values at the keys} of an Action keyed on shape keys."""
    out = {}
    for fc in compat.all_fcurves(action):
        name = fc.data_path.split('"')[1]
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[name] = co[1::2]
    return out


# -- detection on real objects ----------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_heads_built_from_a_family_are_detected_as_it(scene, presets, family):
    names = FAMILIES[family]
    variants = {
        "complete": names,
        "partial": names[::2],
        "other separators and case": [n.replace("_", ".").upper() if i % 2 else n.lower() for i, n in enumerate(names)],
    }
    for variant, keys in variants.items():
        obj = make_head(scene, f"{family}_{variant}", keys)
        detection = retarget.detect(obj, presets)
        # Every ARKit key and the visemes: the complete ARKit set is preferred (visemes only when asked).
        expected = "arkit" if family == "ready_player_me" and variant != "partial" else family
        assert detection.preset is not None and detection.preset.id == expected, f"{variant}: {detection.reason}"


def test_plain_arkit_head_is_arkit(scene, presets):
    obj = make_head(scene, "arkit_head", ARKIT)
    assert retarget.detect_preset(obj, presets).id == "arkit"


def test_the_procedural_demo_head_is_arkit(scene, presets):
    head = pytest.importorskip("exomni_blender.blender.head")
    obj = head.create_head(name="RetargetDemoHead")
    scene[1].append(obj)
    detection = retarget.detect(obj, presets)
    assert detection.preset.id == "arkit" and not detection.warnings, detection.lines()


def test_unrelated_and_empty_meshes_get_none_with_a_reason(scene, presets):
    detection = retarget.detect(make_head(scene, "body", UNRELATED), presets)
    assert detection.preset is None and "Muscular" in detection.reason
    bare = bpy.data.objects.new("bare", bpy.data.meshes.new("bare"))
    scene[1].append(bare)
    assert "no shape keys" in retarget.detect(bare, presets).reason
    rig = make_face_rig(scene)
    assert "bone_face" in retarget.detect(rig, presets).reason  # a bone-driven face is pointed elsewhere


# -- keying through each preset ------------------------------------------------------------------------

@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keying_a_take_through_each_preset_puts_the_curves_on_the_right_keys(scene, presets, family):
    keying = pytest.importorskip("exomni_blender.blender.keying")
    preset = next(p for p in presets if p.id == family)
    obj = make_head(scene, f"keyed_{family}", FAMILIES[family])
    take = take_of()
    expected, report = preset.targets(obj, take.weights)
    action = keying.key_take(obj, take, start_frame=10, preset=preset)
    keyed = keyed_values(action)
    assert set(keyed) == set(expected) and expected
    for name, values in expected.items():
        np.testing.assert_allclose(keyed[name], values, atol=1e-6, err_msg=name)
    assert list(action["exomni_missing"]) == report.unmapped_channels


def test_keyed_gains_and_mixes_reach_the_shape_keys(scene, presets):
    keying = pytest.importorskip("exomni_blender.blender.keying")
    mh = next(p for p in presets if p.id == "metahuman")
    obj = make_head(scene, "mh_gain", FAMILIES["metahuman"])
    take = take_of()
    keyed = keyed_values(keying.key_take(obj, take, preset=mh))
    w = take.weights
    np.testing.assert_allclose(keyed["CTRL_expressions_browLateralL"], 0.5 * w[:, INDEX["browDownLeft"]], atol=1e-6)
    np.testing.assert_allclose(keyed["CTRL_expressions_eyeLookRightL"], w[:, INDEX["eyeLookInLeft"]], atol=1e-6)
    vroid = next(p for p in presets if p.id == "vroid")
    head = make_head(scene, "vroid_gain", FAMILIES["vroid"])
    keyed = keyed_values(keying.key_take(head, take, preset=vroid))
    smile = w[:, INDEX["mouthSmileLeft"]] / 2 + w[:, INDEX["mouthSmileRight"]] / 2
    np.testing.assert_allclose(keyed["Fcl_MTH_Fun"], 0.7 * smile * smile * (3 - 2 * smile), atol=1e-5)


def test_preview_sets_one_frame_on_the_shape_keys(scene, presets):
    from exomni_blender.ui import retarget as retarget_ui

    cc = next(p for p in presets if p.id == "character_creator")
    obj = make_head(scene, "cc_preview", FAMILIES["character_creator"])
    take = take_of()
    retarget_ui.apply_weights_at(obj, cc, take.weights, 7)
    blocks = obj.data.shape_keys.key_blocks
    assert blocks["Mouth_Smile_R"].value == pytest.approx(take.weights[7, INDEX["mouthSmileRight"]], abs=1e-6)
    assert blocks["Cheek_Puff_L"].value == pytest.approx(take.weights[7, INDEX["cheekPuff"]], abs=1e-6)
    assert blocks["Mouth_Contract"].value == 0.0  # not in the map: untouched


# -- the editor in the panel -----------------------------------------------------------------------------

@pytest.fixture
def editor(scene):
    from exomni_blender.ui import retarget as retarget_ui

    retarget_ui.register()
    try:
        yield retarget_ui
    finally:
        retarget_ui.unregister()


def test_editor_detects_edits_previews_and_saves_a_user_preset(scene, editor, tmp_path):
    obj = make_head(scene, "cc_editor", FAMILIES["character_creator"])
    bpy.context.view_layer.objects.active = obj
    settings = bpy.context.scene.exomni_retarget

    assert bpy.ops.exomni.retarget_detect() == {"FINISHED"}
    assert settings.preset == "character_creator" and len(settings.rows) > 50
    assert settings.report.startswith("Detected Character Creator")

    row = next(r for r in settings.rows if r.key == "Jaw_Open")
    row.gain = 0.5
    take = take_of()
    take.save(tmp_path / "take")
    settings.preview_take = str(tmp_path / "take")
    settings.preview_start = 1
    settings.preview = True
    scene[0].frame_set(5)  # frame 5 is the take's frame 4
    blocks = obj.data.shape_keys.key_blocks
    assert blocks["Jaw_Open"].value == pytest.approx(0.5 * take.weights[4, INDEX["jawOpen"]], abs=1e-4)
    settings.preview = False

    settings.name = "CC tuned"
    assert bpy.ops.exomni.retarget_save(directory=str(tmp_path / "presets")) == {"FINISHED"}
    saved = retarget.load_preset(tmp_path / "presets" / "cc_tuned.toml")
    curves, _ = saved.targets(obj, take.weights)
    np.testing.assert_allclose(curves["Jaw_Open"], 0.5 * take.weights[:, INDEX["jawOpen"]], atol=1e-6)


def test_the_editor_says_which_user_preset_it_could_not_read(scene, editor, tmp_path, monkeypatch):
    from test_ui_audio_panel import Recorder

    class Layout(Recorder):
        def _child(self, *args, **kwargs):
            return Layout(self.drawn)

        row = column = box = _child

        def template_list(self, *args, **kwargs):
            pass

    (tmp_path / "studio.toml").write_text('name = "Studio"\n[[target]]\nkey = "Jaw"\nmix = { jawOpenn = 1.0 }\n')
    monkeypatch.setenv(retarget.PRESETS_ENV, str(tmp_path))
    bpy.context.scene.exomni_retarget.rows.clear()  # earlier tests leave an edited map behind
    layout = Layout()
    bpy.types.EXOMNI_PT_retarget.draw(type("Panel", (), {"layout": layout})(), bpy.context)
    assert "Skipped a preset" in layout.labels() and "jawOpenn" in layout.labels()
    assert "studio" not in {p.id for p in retarget.load_presets()}


def test_editor_proposes_a_preset_from_a_rig_nobody_wrote_one_for(scene, editor):
    keys = ["Blink_Left", "Blink_Right", "JawDrop", "Smile_L", "Smile_R", "Pucker", "Funnel", "Hat_Scale"]
    obj = make_head(scene, "studio_rig", keys)
    bpy.context.view_layer.objects.active = obj
    settings = bpy.context.scene.exomni_retarget
    assert bpy.ops.exomni.retarget_from_rig() == {"FINISHED"}
    mapped = {r.key: r.source_label() for r in settings.rows}
    assert mapped["JawDrop"] == "jawOpen" and mapped["Blink_Left"] == "eyeBlinkLeft" and "Hat_Scale" not in mapped
    assert bpy.ops.exomni.retarget_check() == {"FINISHED"}
    assert "channels land" in settings.report and "Channels with no target" in settings.report
    assert all(r.status for r in settings.rows)  # every proposed key is on the rig


# -- bone-driven faces ------------------------------------------------------------------------------------

def make_face_rig(scene_and_made, rotation_mode="QUATERNION", jaw_name="jaw_master"):
    scene, made = scene_and_made
    arm = bpy.data.armatures.new("face_rig")
    obj = bpy.data.objects.new("face_rig", arm)
    scene.collection.objects.link(obj)
    made.append(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    head = arm.edit_bones.new("head")
    head.head, head.tail = (0, 0, 1.5), (0, 0, 1.7)
    for name in ("ORG-jaw", jaw_name):
        jaw = arm.edit_bones.new(name)
        jaw.head, jaw.tail = (0, -0.02, 1.56), (0, -0.1, 1.5)
        jaw.parent = head
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.pose.bones[jaw_name].rotation_mode = rotation_mode
    return obj


@pytest.mark.parametrize("mode", ["QUATERNION", "XYZ"])
def test_jaw_bone_opens_down_and_sideways_from_the_take(scene, mode):
    rig = make_face_rig(scene, mode)
    assert bone_face.find_jaw_bone(rig) == "jaw_master"
    own = bpy.data.actions.new("animator's keys")
    rig.animation_data_create().action = own
    weights = np.zeros((10, 52), np.float32)
    weights[:, INDEX["jawOpen"]] = np.linspace(0, 1, 10)
    weights[5:, INDEX["jawLeft"]] = 1.0
    action = bone_face.key_bone_face(rig, weights, start_frame=1)
    assert rig.animation_data.action == action
    assert [s.action for t in rig.animation_data.nla_tracks for s in t.strips] == [own]  # kept, not replaced
    paths = {fc.data_path for fc in compat.all_fcurves(action)}
    assert paths == {'pose.bones["jaw_master"].' + ("rotation_quaternion" if mode == "QUATERNION" else "rotation_euler")}

    def chin(frame):
        scene[0].frame_set(frame)
        bpy.context.view_layer.update()
        return np.array(rig.matrix_world @ rig.pose.bones["jaw_master"].tail)

    rest, half, full = chin(1), chin(5), chin(10)
    assert rest[2] > half[2] > full[2]  # the chin goes down as the jaw opens
    angle = math.degrees(math.acos(np.clip(np.dot(rest - [0, -0.02, 1.56], full - [0, -0.02, 1.56])
                                           / (np.linalg.norm(rest - [0, -0.02, 1.56]) ** 2), -1, 1)))
    assert angle == pytest.approx(math.hypot(bone_face.DEFAULT_MAX_OPEN_DEG, bone_face.DEFAULT_MAX_SIDE_DEG), abs=1.5)
    assert full[0] > 0.005 and abs(half[0]) < 1e-6  # jawLeft (frames 6+) moves it to the character's left (+X)


def test_jaw_bones_of_other_families_are_found(scene):
    for name in ("CC_Base_JawRoot", "lowerJaw", "FACIAL_C_Jaw"):
        rig = make_face_rig(scene, jaw_name=name)
        assert bone_face.find_jaw_bone(rig) == name


def test_a_rig_without_a_jaw_is_refused_with_what_to_do(scene):
    rig = make_face_rig(scene, jaw_name="chin_tweak")
    with pytest.raises(bone_face.BoneFaceError, match="jaw_bone="):
        bone_face.key_bone_face(rig, np.zeros((3, 52), np.float32))
    mesh_obj = make_head(scene, "not_a_rig", ["a"])
    with pytest.raises(bone_face.BoneFaceError, match="select an armature"):
        bone_face.key_bone_face(mesh_obj, np.zeros((3, 52), np.float32))


def test_key_take_drives_a_viseme_only_head_from_the_phonemes(scene, presets):
    from exomni_blender.blender.keying import key_take

    visemes = FAMILIES["ready_player_me"][52:67]
    obj = make_head(scene, "rpm_visemes_only", visemes)
    take = Take(fps=30.0, weights=np.zeros((30, 52), np.float32), text="map",
                phonemes=[{"symbol": "m", "start": 0.2, "end": 0.4}, {"symbol": "ˈæ", "start": 0.4, "end": 0.7},
                          {"symbol": "p", "start": 0.7, "end": 0.8}])
    values = keyed_values(key_take(obj, take))
    assert set(values) == set(visemes)
    assert values["viseme_PP"][9] > 0.8 and values["viseme_PP"][22] > 0.8  # inside m and p, though the curves are 0
    assert values["viseme_aa"][16] > 0.5 and values["viseme_sil"][0] > 0.9
