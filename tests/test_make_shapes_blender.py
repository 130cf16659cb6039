"""Shapes made in Blender on a real avatar whose artist made the 52 (kept aside), the command line,
and a take keyed onto the made head.

The avatar is a MakeHuman head (tests/data/README.md): its mouth is one closed surface with the
mouth bag (no lip slit), as on MakeHuman and MPFB characters: its lip line is found from the lips'
crease and its orientation from the eyes' openings and the nose."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.blender import make_shapes as ms  # noqa: E402
from exomni_blender.blender import make_shapes_bench as mb  # noqa: E402
from exomni_blender.core.arkit import ARKIT_52  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AVATAR = REPO / "tests" / "data" / "avatars" / "makehuman_head.glb"
HEAD = "Head"


@pytest.fixture(scope="module")
def made():
    obj, artist, made, summary, _ = mb.run_artist(AVATAR, HEAD)
    return obj.name, artist, made, summary


def test_all_52_are_made_and_marked(made):
    name, _, deltas, summary = made
    obj = bpy.data.objects[name]
    keys = obj.data.shape_keys.key_blocks
    assert all(n in keys for n in ARKIT_52) and sorted(summary["made"]) == sorted(ARKIT_52)
    assert sorted(json.loads(obj[ms.MADE_PROPERTY])) == sorted(ARKIT_52)
    # eyes from the eye meshes; the closed mouth's lip line from its crease: nothing estimated
    assert summary["estimated"] == []
    # the crease splits the lips where the artist's jawOpen does: upper lip still, lower lip moving
    pts = ms.read_mesh(obj).points
    jaw = np.linalg.norm(made[1]["jawOpen"], axis=1)
    near = lambda name: int(np.argmin(np.linalg.norm(pts - np.asarray(summary["landmarks"][name]), axis=1)))
    assert jaw[near("lipUpper")] < 0.1 * jaw.max() and jaw[near("lipLower")] > 0.5 * jaw.max()


def test_made_shapes_move_like_the_artists(made):
    _, artist, deltas, _ = made
    scores = mb.compare(deltas, artist)
    cosines = np.array([c for c, _ in scores.values()])
    assert cosines.mean() >= 0.5, scores  # the bar
    for name in ("jawOpen", "mouthSmileLeft", "mouthPucker", "eyeBlinkLeft", "browInnerUp", "browOuterUpRight"):
        assert scores[name][0] > 0.5, (name, scores[name])


def test_mouth_and_brow_shapes_are_sized_like_the_artists(made):
    _, artist, deltas, _ = made
    scores = mb.compare(deltas, artist)
    for name, (_, size) in scores.items():
        if not name.startswith("eye") and name != "mouthRollUpper":
            assert 1 / 3 <= size <= 3, (name, scores[name])


def test_upper_lip_roll_is_sized_like_the_artists(made):
    _, artist, deltas, _ = made
    _, size = mb.compare(deltas, artist, names=["mouthRollUpper"])["mouthRollUpper"]
    assert 1 / 3 <= size <= 3


def test_eyelid_shapes_are_sized_like_the_artists(made):
    _, artist, deltas, _ = made
    scores = mb.compare(deltas, artist)
    for name, (_, size) in scores.items():
        if name.startswith("eye"):
            assert 1 / 3 <= size <= 3, (name, scores[name])


def test_the_made_head_is_detected_as_arkit(made):
    from exomni_blender.core.retarget import detect

    obj = bpy.data.objects[made[0]]
    assert detect(obj).preset.id == "arkit"


def test_jaw_opens_the_lips_and_a_take_closes_them_at_p_b_m(made):
    from backend.engines.base import Progress, TakeRequest
    from backend.engines.phonetic.engine import PhoneticEngine

    obj = bpy.data.objects[made[0]]
    take = PhoneticEngine().make_take(TakeRequest(text="Bob, pass me the map.", fps=30.0, seed=0), Progress())
    gaps = mb.take_lip_gaps(obj, made[3], take)
    assert gaps["jawOpen"] > gaps["rest"] + 0.008  # the jaw parts the lips by most of a centimetre
    assert gaps["closed"] and gaps["open"]
    assert np.mean(gaps["closed"]) < gaps["rest"] + 0.001  # closed at p/b/m
    assert np.mean(gaps["open"]) > np.mean(gaps["closed"]) + 0.003


def test_existing_keys_are_kept_and_remaking_replaces_only_the_made_ones():
    obj = mb.load_avatar(AVATAR, HEAD)
    artist = mb.strip_arkit(obj)
    own = obj.shape_key_add(name="jawOpen", from_mix=False)  # the animator's own jawOpen
    n = len(obj.data.vertices)
    basis = np.empty(n * 3)
    obj.data.shape_keys.reference_key.data.foreach_get("co", basis)
    own.data.foreach_set("co", (basis.reshape(-1, 3) + artist["jawOpen"]).ravel())
    summary = ms.make_shapes(obj)
    assert summary["kept"] == ["jawOpen"] and len(summary["made"]) == 51
    assert np.allclose(mb.key_deltas(obj)["jawOpen"], artist["jawOpen"], atol=1e-6)
    again = ms.make_shapes(obj)
    assert again["kept"] == ["jawOpen"] and len(again["made"]) == 51
    assert len(obj.data.shape_keys.key_blocks) == 53
    assert sorted(ms.remove_made_shapes(obj)) == sorted(set(ARKIT_52) - {"jawOpen"})
    assert obj.data.shape_keys.key_blocks.keys() == ["Basis", "jawOpen"]


@pytest.mark.parametrize("label", [
    "as is", "Y-up (turned 90 deg about X)", "turned 37 deg, tilted 20 deg", "stylised (wide 1.3, flat 0.75)"])
def test_other_orientations_and_proportions_get_sound_shapes(label, made):
    obj = mb.load_avatar(AVATAR, HEAD)
    mb.strip_arkit(obj)
    reference_stretch, _ = mb.stretch_and_folds(mb.load_avatar(AVATAR, HEAD))  # the artist's own shapes
    obj = mb.load_avatar(AVATAR, HEAD)
    mb.strip_arkit(obj)
    matrix = mb.VARIANTS[label]
    mb.transform_meshes([o for o in bpy.data.objects if o.type == "MESH"], matrix)
    ms.make_shapes(obj)
    worst, _ = mb.stretch_and_folds(obj)
    assert worst < 2.5 * reference_stretch, (worst, reference_stretch)
    if label in mb.RIGID:
        inv = np.linalg.inv(matrix)
        back = {k: v @ inv.T for k, v in mb.key_deltas(obj).items() if k in ARKIT_52}
        # shapes that leave the head still (gaze, tongue) have no direction to agree on
        moving = [n for n in ARKIT_52 if np.abs(made[2][n]).max() > 1e-5]
        agree = mb.compare(back, made[2], names=moving)
        assert min(c for c, _ in agree.values()) > 0.98


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "backend.cli", "make-shapes", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


def test_cli_makes_shapes_from_gltf_and_never_changes_its_input(tmp_path):
    before = hashlib.sha256(AVATAR.read_bytes()).hexdigest()
    out = tmp_path / "made.blend"
    # the avatar already has the artist's 52: they are kept, unless --replace
    done = _cli(AVATAR, "--object", HEAD, "--out", out, "--replace")
    assert done.returncode == 0, done.stderr
    assert "made 52 shape keys on Head" in done.stdout and out.is_file()
    assert hashlib.sha256(AVATAR.read_bytes()).hexdigest() == before
    bpy.ops.wm.open_mainfile(filepath=str(out))
    obj = bpy.data.objects[HEAD]
    assert sorted(json.loads(obj[ms.MADE_PROPERTY])) == sorted(ARKIT_52)


def test_cli_says_what_to_do_with_bad_input(tmp_path):
    done = _cli(tmp_path / "missing.blend", "--out", tmp_path / "o.blend")
    assert done.returncode == 2 and "does not exist" in done.stderr
    done = _cli(AVATAR, "--out", AVATAR)
    assert done.returncode == 2 and ".blend" in done.stderr
    done = _cli(AVATAR, "--object", "Nope", "--out", tmp_path / "o.blend")
    assert done.returncode == 2 and "No mesh object named 'Nope'" in done.stderr and "Head" in done.stderr
    assert "Traceback" not in done.stderr


def _import_avatar_into_this_file():
    """The avatar's meshes imported into the current (registered) file, its ARKit keys removed."""
    bpy.ops.import_scene.gltf(filepath=str(AVATAR))
    obj = bpy.data.objects[HEAD]
    mb.strip_arkit(obj)
    bpy.context.view_layer.objects.active = obj
    return obj


def test_panel_step_finds_landmarks_that_the_animator_can_move(registered_scene):
    obj = _import_avatar_into_this_file()
    assert bpy.ops.exomni.shapes_find_landmarks() == {"FINISHED"}
    marks = {c[ms.LANDMARK_PROPERTY]: c for c in obj.children if c.get(ms.LANDMARK_PROPERTY)}
    assert len(marks) == 18
    assert bpy.ops.exomni.shapes_make() == {"FINISHED"}
    first = mb.key_deltas(obj)["mouthSmileLeft"]
    # the animator drags the left mouth corner 1 cm outward: the smile follows it
    marks["mouthL"].location.x += 0.01
    bpy.context.view_layer.update()
    assert bpy.ops.exomni.shapes_make() == {"FINISHED"}
    moved = mb.key_deltas(obj)["mouthSmileLeft"]
    centre = lambda d: (np.linalg.norm(d, axis=1)[:, None] * ms.read_mesh(obj).points).sum(0) / np.linalg.norm(d, axis=1).sum()
    assert centre(moved)[0] > centre(first)[0] + 0.0008  # the field follows toward the new corner
    assert bpy.ops.exomni.shapes_remove() == {"FINISHED"}
    assert obj.data.shape_keys.key_blocks.keys() == ["Basis"]


def test_panel_step_says_what_to_select(registered_scene):
    bpy.ops.object.empty_add()
    with pytest.raises(RuntimeError, match="Select the head mesh"):
        bpy.ops.exomni.shapes_make()


def test_eye_meshes_beside_the_head_get_their_gaze_shapes():
    obj = mb.load_avatar(AVATAR, HEAD)
    eye = bpy.data.objects["EyeLeft"]
    artist = mb.strip_arkit(eye)
    mb.strip_arkit(obj)
    ms.make_shapes(obj)
    made = mb.key_deltas(eye)
    assert sorted(made) == sorted(f"eyeLook{d}Left" for d in ("Up", "Down", "In", "Out"))
    # the same turns; this artist turns the eyes less far (about 10-15 deg) than the made 25-30 deg
    for name, (cos, size) in mb.compare(made, artist, names=sorted(made)).items():
        assert cos > 0.75 and 1 / 3 < size < 3, (name, cos, size)


def test_teeth_and_tongue_beside_the_head_get_their_jaw_and_tongue_shapes():
    obj = mb.load_avatar(AVATAR, HEAD)
    artist = {n: mb.strip_arkit(bpy.data.objects[n]) for n in ("Teeth", "Tongue")}
    mb.strip_arkit(obj)
    ms.make_shapes(obj)
    teeth, tongue = (mb.key_deltas(bpy.data.objects[n]) for n in ("Teeth", "Tongue"))
    assert sorted(teeth) == sorted(ms.JAW_SHAPES) and sorted(tongue) == sorted(ms.JAW_SHAPES + ("tongueOut",))
    for made, own in ((teeth, artist["Teeth"]), (tongue, artist["Tongue"])):
        for name, (cos, size) in mb.compare(made, own, names=sorted(made)).items():
            assert cos > 0.75 and 1 / 3 < size < 3, (name, cos, size)
    # the upper teeth stay with the skull when the jaw opens, the lower ones go with it
    still = np.linalg.norm(teeth["jawOpen"], axis=1) < 1e-6
    assert 0.2 < still.mean() < 0.8
