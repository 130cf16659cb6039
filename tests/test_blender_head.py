"""The procedural head, in the real bpy: 52 ARKit shape keys, each moving the right region."""

import math

import bpy
import numpy as np
import pytest
from mathutils import kdtree

from exomni_blender.blender import head as head_module
from exomni_blender.core.arkit import ARKIT_52
from exomni_blender.blender.head import create_head

pytestmark = pytest.mark.blender

MOVED = 1e-5  # metres; anything less is numerical noise


@pytest.fixture
def head():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return create_head()


def positions(obj, key_name=None):
    data = obj.data.shape_keys.key_blocks[key_name].data if key_name else obj.data.vertices
    out = np.empty(len(data) * 3, np.float64)
    data.foreach_get("co", out)
    return out.reshape(-1, 3)


def deltas(obj):
    basis = positions(obj, "Basis")
    return basis, {name: positions(obj, name) - basis for name in ARKIT_52}


def test_head_has_exactly_the_52_arkit_shape_keys_after_the_basis(head):
    names = [kb.name for kb in head.data.shape_keys.key_blocks]
    assert names == ["Basis"] + list(ARKIT_52)
    assert head.data.shape_keys.reference_key.name == "Basis"
    assert all(kb.slider_min == 0.0 and kb.slider_max == 1.0 for kb in head.data.shape_keys.key_blocks[1:])
    assert all(kb.value == 0.0 for kb in head.data.shape_keys.key_blocks[1:])  # the head starts at rest


def test_every_shape_key_visibly_moves_vertices(head):
    _, moves = deltas(head)
    for name, d in moves.items():
        assert np.linalg.norm(d, axis=1).max() > 0.002, f"{name} barely moves anything"


def test_head_faces_minus_y_at_real_scale(head):
    basis = positions(head, "Basis")
    size = basis.max(axis=0) - basis.min(axis=0)
    assert 0.12 < size[0] < 0.2 and 0.2 < size[2] < 0.35  # a human head and neck, in metres
    nose_tip = basis[np.argmin(basis[:, 1])]
    assert abs(nose_tip[0]) < 1e-3 and nose_tip[1] < -0.09  # the nose is the frontmost point
    assert abs(basis[:, 0].min() + basis[:, 0].max()) < 1e-4  # symmetric about x = 0


def test_left_keys_move_the_subjects_left_which_is_plus_x(head):
    basis, moves = deltas(head)
    for name, d in moves.items():
        if not name.endswith(("Left", "Right")):
            continue
        sign = 1.0 if name.endswith("Left") else -1.0
        amount = np.linalg.norm(d, axis=1)
        moved = amount > MOVED
        if name in ("jawLeft", "jawRight", "mouthLeft", "mouthRight"):
            # these move the whole jaw or mouth toward that side
            assert np.all(sign * d[moved, 0] > 0), name
            continue
        # a soft seam across the middle of the mouth and brows is allowed, nothing further over
        assert np.all(sign * basis[moved, 0] > -0.0065), name
        assert amount[sign * basis[:, 0] > 0].sum() > 0.9 * amount.sum(), name
        if name.startswith(("eye", "browOuter")):
            assert np.all(sign * basis[moved, 0] > 0.0), f"{name} moves the other side"


def test_left_and_right_keys_mirror_each_other(head):
    basis, moves = deltas(head)
    # Lip and lid slits have two vertices at one place; how the symmetric keys move them tells
    # them apart, so match mirror partners on position plus that motion.
    tag = basis + 3.0 * (moves["jawOpen"] + moves["eyeBlinkLeft"] + moves["eyeBlinkRight"])
    tree = kdtree.KDTree(len(tag))
    for i, p in enumerate(tag):
        tree.insert(p, i)
    tree.balance()
    mirror = np.array([tree.find((-p[0], p[1], p[2]))[1] for p in tag])
    flip = np.array([-1.0, 1.0, 1.0])
    assert np.allclose(basis[mirror] * flip, basis, atol=1e-6)
    for name in ARKIT_52:
        if name.endswith("Left"):
            right = name[: -len("Left")] + "Right"
            assert np.allclose(moves[name], moves[right][mirror] * flip, atol=2e-6), name


def test_jaw_open_drops_the_chin_and_leaves_the_upper_face(head):
    basis, moves = deltas(head)
    d = moves["jawOpen"]
    chin = (np.abs(basis[:, 0]) < 0.01) & (basis[:, 1] < -0.06) & (basis[:, 2] < head_module.MOUTH_Z - 0.02)
    assert chin.sum() > 10
    assert np.all(d[chin, 2] < -0.01)
    assert np.abs(d[basis[:, 2] > head_module.EYE_Z - 0.01]).max() < MOVED  # eyes and above
    assert np.abs(d[basis[:, 2] > head_module.MOUTH_Z + 0.02]).max() < 5e-4   # the cheeks barely
    # the neck below the jaw line stays put
    neck = basis[:, 2] < -0.16
    assert np.abs(d[neck]).max() < MOVED


def test_blink_brings_the_upper_lid_down_over_the_eye(head):
    basis, moves = deltas(head)
    d = moves["eyeBlinkLeft"]
    lid = ((np.abs(basis[:, 0] - head_module.EYE_X) < 0.006) & (basis[:, 2] > head_module.EYE_Z + 0.002)
           & (basis[:, 1] < head_module.EYE_Y - head_module.EYE_RADIUS + 0.002))
    lid &= np.linalg.norm(d, axis=1) > 0.002
    assert lid.sum() > 3
    assert np.all(d[lid, 2] < 0)
    # closed, the upper and lower lid edges meet: no gap over the eye's middle
    closed = basis + d
    middle = np.abs(basis[:, 0] - head_module.EYE_X) < 0.003
    front_of_eye = middle & (np.linalg.norm(d, axis=1) > 0.001)
    assert np.ptp(closed[front_of_eye, 2]) < 0.012


def test_gaze_turns_the_eyeballs(head):
    basis, moves = deltas(head)
    for side, suffix in ((1.0, "Left"), (-1.0, "Right")):
        eye = (np.abs(basis[:, 0] - side * head_module.EYE_X) < head_module.EYE_RADIUS + 1e-4)
        eye &= np.abs(np.linalg.norm(basis - [side * head_module.EYE_X, head_module.EYE_Y, head_module.EYE_Z],
                                     axis=1) - head_module.EYE_RADIUS) < 1e-5
        pupil = np.nonzero(eye)[0][np.argmin(basis[eye, 1])]  # the front pole of the eyeball
        assert moves[f"eyeLookOut{suffix}"][pupil, 0] * side > 0.003
        assert moves[f"eyeLookIn{suffix}"][pupil, 0] * side < -0.003
        assert moves[f"eyeLookUp{suffix}"][pupil, 2] > 0.003
        assert moves[f"eyeLookDown{suffix}"][pupil, 2] < -0.003


def test_smile_pulls_each_corner_up_and_out(head):
    basis, moves = deltas(head)
    on_line = np.abs(basis[:, 2] - head_module.MOUTH_Z) < 1e-6
    for side, suffix in ((1.0, "Left"), (-1.0, "Right")):
        corner = np.nonzero(on_line & (side * basis[:, 0] > 0.015) & (basis[:, 1] < -0.06))[0]
        corner = corner[np.argmax(side * basis[corner, 0] - 10 * np.abs(basis[corner, 1] + 0.08))]
        assert moves[f"mouthSmile{suffix}"][corner, 2] > 0.004
        assert moves[f"mouthSmile{suffix}"][corner, 0] * side > 0.003
        assert moves[f"mouthFrown{suffix}"][corner, 2] < -0.003


def test_mouth_close_with_the_jaw_open_brings_the_lips_back_together(head):
    basis, moves = deltas(head)
    lip_line = (np.abs(basis[:, 2] - head_module.MOUTH_Z) < 1e-6) & (np.abs(basis[:, 0]) < 0.012) & (basis[:, 1] < -0.08)
    open_only = basis + moves["jawOpen"]
    both = open_only + moves["mouthClose"]
    assert np.linalg.norm(open_only[lip_line] - basis[lip_line], axis=1).max() > 0.015  # the lips parted
    assert np.linalg.norm(both[lip_line] - basis[lip_line], axis=1).max() < 5e-4     # and closed again
    chin = (np.abs(basis[:, 0]) < 0.01) & (basis[:, 1] < -0.06) & (basis[:, 2] < -0.105)
    assert np.all((both - basis)[chin, 2] < -0.01)  # with the jaw still open


def test_lips_push_forward_for_pucker_and_funnel_and_the_tongue_comes_out(head):
    basis, moves = deltas(head)
    lips = (np.abs(basis[:, 0]) < 0.008) & (np.abs(basis[:, 2] - head_module.MOUTH_Z) < 0.004) & (basis[:, 1] < -0.085)
    assert np.all(moves["mouthPucker"][lips, 1] < -0.004)
    assert np.all(moves["mouthFunnel"][lips, 1] < -0.004)
    front_of_lips = basis[lips, 1].min()
    tongue_out = basis + moves["tongueOut"]
    reach = np.nonzero(moves["tongueOut"][:, 1] < -0.015)[0]
    assert reach.size and tongue_out[reach, 1].min() < front_of_lips  # past the lips


def test_brows_cheeks_and_nose_move_their_own_regions(head):
    basis, moves = deltas(head)
    for name, low, high in (("browInnerUp", 0.008, 0.04), ("browDownLeft", 0.008, 0.04),
                            ("cheekPuff", -0.09, -0.02), ("noseSneerLeft", -0.05, -0.005)):
        amount = np.linalg.norm(moves[name], axis=1)
        top = amount > 0.5 * amount.max()
        assert np.all((basis[top, 2] > low) & (basis[top, 2] < high)), name
    assert moves["browInnerUp"][:, 2].max() > 0.004 and moves["browDownLeft"][:, 2].min() < -0.004


def test_mesh_is_consistently_oriented_and_smooth(head):
    mesh = head.data
    loops = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", loops)
    starts = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    totals = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", totals)
    directed = set()
    for s, t in zip(starts, totals):
        face = loops[s:s + t]
        for a, b in zip(face, np.roll(face, -1)):
            assert (a, b) not in directed, "two faces run along one edge the same way: flipped normals"
            directed.add((a, b))
    normals = np.empty(len(mesh.polygons) * 3)
    mesh.polygons.foreach_get("normal", normals)
    centres = np.empty(len(mesh.polygons) * 3)
    mesh.polygons.foreach_get("center", centres)
    normals, centres = normals.reshape(-1, 3), centres.reshape(-1, 3)
    forehead = (np.abs(centres[:, 0]) < 0.02) & (np.abs(centres[:, 2] - 0.045) < 0.01) & (centres[:, 1] < -0.05)
    assert forehead.sum() > 5 and np.all(normals[forehead, 1] < -0.5)
    smooth = np.empty(len(mesh.polygons), bool)
    mesh.polygons.foreach_get("use_smooth", smooth)
    assert smooth.all()


def test_materials_render_in_workbench_and_eevee(head):
    mats = {m.name: m for m in head.data.materials}
    assert {"ExOmni Skin", "ExOmni Lips", "ExOmni Teeth", "ExOmni Eye White", "ExOmni Iris", "ExOmni Pupil"} <= set(mats)
    skin, lips = mats["ExOmni Skin"].diffuse_color, mats["ExOmni Lips"].diffuse_color
    assert sum(lips[:3]) < sum(skin[:3]) and lips[0] > lips[1]  # darker and redder
    for mat in mats.values():
        bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        assert tuple(bsdf.inputs["Base Color"].default_value) == pytest.approx(tuple(mat.diffuse_color))
    used = np.empty(len(head.data.polygons), np.int32)
    head.data.polygons.foreach_get("material_index", used)
    assert set(used) == set(range(len(mats)))


def test_open_jaw_shows_a_dark_mouth_in_a_workbench_render(head, tmp_path):
    scene = bpy.context.scene
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.data.lens = 200
    cam.location = (0.0, -0.75, head_module.MOUTH_Z - 0.005)
    cam.rotation_euler = (math.radians(90), 0.0, 0.0)
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.color_type = "MATERIAL"
    scene.render.resolution_x = scene.render.resolution_y = 64

    def mouth_brightness(jaw):
        head.data.shape_keys.key_blocks["jawOpen"].value = jaw
        scene.render.filepath = str(tmp_path / f"jaw{jaw}.png")
        bpy.ops.render.render(write_still=True)
        image = bpy.data.images.load(scene.render.filepath)
        px = np.array(image.pixels[:]).reshape(64, 64, 4)
        centre = px[26:34, 24:40, :3]  # image rows count from the bottom; the mouth is near the middle
        return centre.mean()

    closed, opened = mouth_brightness(0.0), mouth_brightness(0.8)
    assert closed > 0.25          # skin and lips
    assert opened < 0.7 * closed  # the dark mouth cavity shows


def test_two_heads_are_independent_objects(head):
    second = create_head()
    assert second.name != head.name and second.data != head.data
    assert len(second.data.shape_keys.key_blocks) == 53
    second.data.shape_keys.key_blocks["jawOpen"].value = 1.0
    assert head.data.shape_keys.key_blocks["jawOpen"].value == 0.0
