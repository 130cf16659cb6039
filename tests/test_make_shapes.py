"""Shape making's numpy core: mesh topology, the landmark warp, and the demo head made onto itself."""

import numpy as np
import pytest

from exomni_blender.core.arkit import ARKIT_52
from exomni_blender.core.shapes import Mesh, edge_stretch, fit_sphere, transfer
from exomni_blender.core.shapes.fit import Warp, similarity
from exomni_blender.core.shapes.template import LIP_LOWER, LIP_UPPER


def grid_with_hole(n=8):
    """An n x n grid of quads in the XZ plane with the middle 2 x 2 quads left out."""
    pts = [(x, 0.0, z) for z in range(n + 1) for x in range(n + 1)]
    faces = []
    for z in range(n):
        for x in range(n):
            if n // 2 - 1 <= x <= n // 2 and n // 2 - 1 <= z <= n // 2:
                continue
            a = z * (n + 1) + x
            faces.append((a, a + 1, a + n + 2, a + n + 1))
    return Mesh.from_faces(pts, faces)


def test_boundary_loops_find_the_hole_and_the_rim():
    loops = grid_with_hole().boundary_loops()
    assert [len(l) for l in loops] == [32, 8]  # the outer rim, then the hole


def test_seams_split_vertices_are_one_for_components_but_not_for_boundaries():
    # two quads sharing an edge whose vertices are stored twice (as glTF does at a UV seam)
    pts = [(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1), (1, 0, 0), (2, 0, 0), (2, 0, 1), (1, 0, 1)]
    mesh = Mesh.from_faces(pts, [(0, 1, 2, 3), (4, 5, 6, 7)])
    assert len(set(mesh.components())) == 1
    offsets, nbr, lengths = mesh.neighbours()
    assert 4 in nbr[offsets[1]:offsets[2]] and lengths[offsets[1]:offsets[2]].min() == 0.0
    assert 1 not in mesh.neighbours(keep_apart=[1, 4])[1][offsets[1]:offsets[2]]


def test_similarity_recovers_scale_rotation_and_shift():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(12, 3))
    c, s = np.cos(0.7), np.sin(0.7)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    dst = 2.5 * src @ rot.T + [1, 2, 3]
    scale, r, t = similarity(src, dst)
    assert scale == pytest.approx(2.5) and np.allclose(r, rot) and np.allclose(t, [1, 2, 3])


def test_warp_passes_through_the_landmarks_and_its_jacobian_is_the_local_stretch():
    rng = np.random.default_rng(2)
    src = rng.uniform(-1, 1, size=(18, 3))
    dst = src * [1.0, 1.0, 1.5]  # taller everywhere: the warp is that linear map
    warp = Warp(src, dst)
    assert np.abs(warp(src) - dst).max() < 1e-6
    jac = warp.jacobians(np.zeros((1, 3)), step=0.01)[0]
    assert np.allclose(jac, np.diag([1.0, 1.0, 1.5]), atol=1e-3)


def test_jacobians_are_held_within_the_limit_and_never_inverted():
    src = np.random.default_rng(3).uniform(-1, 1, size=(18, 3))
    dst = src * [1.0, 1.0, 20.0]
    jac = Warp(src, dst).jacobians(np.zeros((1, 3)), step=0.01, limit=3.0)[0]
    s = np.linalg.svd(jac, compute_uv=False)
    scale = Warp(src, dst).scale
    assert s.max() <= 3.0 * scale + 1e-9 and s.min() >= scale / 3.0 - 1e-9 and np.linalg.det(jac) > 0


def test_fit_sphere_on_a_front_cap():
    a = np.radians(np.arange(0, 70, 10))
    b = np.radians(np.arange(0, 360, 30))
    A, B = np.meshgrid(a, b)
    cap = np.stack([np.sin(A) * np.cos(B), -np.cos(A), np.sin(A) * np.sin(B)], -1).reshape(-1, 3) * 0.012 + [0.03, -0.06, 0]
    ball = fit_sphere(cap)
    assert ball.radius == pytest.approx(0.012, rel=1e-6) and np.allclose(ball.centre, [0.03, -0.06, 0], atol=1e-9)


def test_edge_stretch_ignores_slivers():
    pts = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [2.001, 0, 0]], float)
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    moved = pts.copy()
    moved[3, 0] = 2.1  # the sliver edge grows 100x; the real edges are unchanged
    assert edge_stretch(pts, moved, edges) == pytest.approx(1.0)
    moved[2, 0] = 2.5
    assert edge_stretch(pts, moved, edges) == pytest.approx(1.5)


@pytest.fixture(scope="module")
def demo_template():
    from exomni_blender.blender.make_shapes import template

    return template()


def test_demo_head_made_onto_itself_gives_back_its_own_shapes(demo_template):
    """The template's landmarks, the warp and the transfer are consistent: on the demo head itself
    the made fields are the demo head's (up to the smoothing)."""
    t = demo_template
    made = transfer(t, t.mesh, t.skin, t.landmarks)
    assert made.scale == pytest.approx(1.0, abs=1e-6)
    cos = []
    for i, name in enumerate(ARKIT_52):
        if name.startswith(("eyeLook", "tongue")):  # eyeballs and tongue are not skin
            continue
        a, b = t.deltas[i][t.skin].ravel(), made.deltas[i][t.skin].ravel()
        cos.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    # 0.75: the template's lips are cut but its landmarks carry no slit, so its lip sides are found
    # as a closed mouth's (along the surface from the lips' front faces); its upper-lip roll and
    # raise lose the most (0.76)
    assert min(cos) > 0.75 and np.mean(cos) > 0.95


def test_the_template_keeps_its_lips_apart(demo_template):
    t = demo_template
    jaw = np.linalg.norm(t.deltas[ARKIT_52.index("jawOpen")], axis=1)
    assert jaw[t.labels == LIP_LOWER].mean() > 5 * jaw[t.labels == LIP_UPPER].mean()


def closed_lips_profile():
    """A closed mouth's middle, extruded sideways: the upper lip's front, the crease, a groove
    that rises behind it to its deepest point, then the lower lip's top and front (Y is back)."""
    yz = [(0, 6), (0, 4), (0, 2), (0, 1), (1, 0.8), (2, 0.9), (3, 1.2), (2, 0.4), (1, 0.1), (0, -0.5),
          (0, -2), (0, -4), (0, -6)]
    xs = np.linspace(-4, 4, 5)
    points = np.array([(x, y, z) for x in xs for y, z in yz], float)
    m = len(yz)
    faces = [(i * m + j, i * m + j + 1, (i + 1) * m + j + 1, (i + 1) * m + j)
             for i in range(len(xs) - 1) for j in range(m - 1)]
    return Mesh.from_faces(points, faces), yz


def test_a_closed_mouths_lip_sides_follow_the_surface_not_the_creases_height():
    from exomni_blender.core.shapes.transfer import _closed_lip_sides

    mesh, yz = closed_lips_profile()
    assert (mesh.vertex_normals()[:, 1] < -0.9).sum() > 0  # the front faces look toward -Y
    line = np.full(len(mesh.points), 0.3)
    zone = np.ones(len(mesh.points), bool)
    sides = _closed_lip_sides(mesh, zone, mesh.points, line, np.zeros(len(line)), np.eye(3), 30.0)[: len(yz)]
    # the groove's lower wall lies above the crease's height yet belongs to the lower lip
    assert list(sides) == [LIP_UPPER] * 7 + [LIP_LOWER] * 6
    assert mesh.points[7, 2] > 0.3
