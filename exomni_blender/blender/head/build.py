"""The head assembled: skin, slits, lids, mouth cavity and islands, then its shape keys (pure numpy)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .landmarks import (
    AXIS_Y, BAG, EYE_HALF_WIDTH, EYE_LEFT, EYE_RADIUS, EYE_RIGHT, EYE_X, EYE_Y, EYE_Z, IRIS_RADIUS,
    LID_DOWN_DEGREES, LID_UP_DEGREES, LIP_ROWS_LOWER, LIP_ROWS_UPPER, MOUTH_HALF_WIDTH, MOUTH_Z,
    M_IRIS, M_LASHES, M_LIPS, M_MOUTH, M_PUPIL, M_SCLERA, M_SKIN, M_TONGUE, N_COLUMNS, PUPIL_RADIUS,
    ROWS_LOWER, ROWS_MIDDLE, ROWS_UPPER, SKIN, TEETH_LOWER, TEETH_UPPER, TONGUE)
from .mesh import _Mesh, _brow_island, _face_materials, _hair_island, _sphere_island, _teeth_island
from .sculpture import _cast, _lip_borders, _rotate_x, _warp_rows
from .shape_keys import _Fields, _shape_keys


# -- the head ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _build():
    """Rest positions, faces, materials and the 52 shape key positions (cached; pure numpy)."""
    mesh = _Mesh()
    skin = _skin(mesh)
    n_skin = mesh.count
    closed = np.concatenate(mesh.points)
    row_of, is_lower_copy, mouth_corner_ids = _skin_tags(skin, n_skin)
    lid_up, lid_down, eye_of, lid_angle = _lid_opening(closed, skin, row_of, is_lower_copy)
    extra_closed, extra_src = _lid_flanges(mesh, skin, closed, n_skin)
    n_lidded = mesh.count
    # Flange verts follow their edge vertex's lid rotation.
    lid_up = np.concatenate([lid_up, lid_up[extra_src]])
    lid_down = np.concatenate([lid_down, lid_down[extra_src]])
    eye_of = np.concatenate([eye_of, eye_of[extra_src]])
    lid_angle = np.concatenate([lid_angle, lid_angle[extra_src]])
    closed = np.concatenate([closed, extra_closed])
    rest_skin = _lid_rotate(closed, eye_of, lid_angle)
    corner_x, bag_ids, bag_s, bag_edge_dist = _mouth_cavity(mesh, skin, n_lidded)
    _islands(mesh, skin)

    points = np.concatenate(mesh.points)
    parts = np.concatenate(mesh.parts)
    rest = points.copy()
    rest[: len(rest_skin)] = rest_skin

    fields = _Fields(rest, parts, n_skin=n_lidded, row_of=row_of, is_lower_copy=is_lower_copy,
                     mouth_row=skin.mouth_row, mouth_corner_ids=mouth_corner_ids,
                     corner_x=corner_x, lid_up=lid_up, lid_down=lid_down, eye_of=eye_of,
                     bag_ids=bag_ids, bag_s=bag_s, bag_edge_dist=bag_edge_dist)
    materials = _face_materials(mesh, skin.face_end, skin.slits, skin.mouth_row)
    keys = _shape_keys(fields)
    return rest, mesh.faces, materials, keys


@dataclass
class _Skin:
    """The skin grid as built: ray hits per row and column, their vertex ids, and the slits."""
    grid: np.ndarray  # [rows, N_COLUMNS, 3]
    grid_ids: np.ndarray  # [rows, N_COLUMNS]
    top: int
    bottom: int
    slits: dict  # name -> (row, columns from corner to corner)
    lower_edge: dict  # name -> {column: lower-edge vertex id}
    lower_copy_of: dict  # (row, column) -> the lower-edge copy of that grid vertex
    face_end: int  # faces before this index are skin
    eye_row: int
    mouth_row: int
    sin_t: np.ndarray
    cos_t: np.ndarray
    theta: np.ndarray


def _skin_rays():
    """(grid [rows, N_COLUMNS, 3], poles [2, 3], theta): where rays from the axis meet the sculpture."""
    # Columns: symmetric about the front (theta = 0 looks toward -Y), denser on the face.
    u = -1.0 + 2.0 * np.arange(N_COLUMNS) / N_COLUMNS
    theta = np.pi * (0.42 * u + 0.58 * u ** 3)
    sin_t, cos_t = np.sin(theta), np.cos(theta)

    def elev_rows(count):
        v = np.arange(1, count + 1) / (count + 1.0)
        return 0.5 * np.pi * (0.35 * v + 0.65 * v * v)

    upper_el = elev_rows(ROWS_UPPER)[::-1]          # crown down to just above the eye row
    t = np.arange(ROWS_MIDDLE + 1) / ROWS_MIDDLE
    middle_z = MOUTH_Z * (t - 0.5 * np.sin(2 * np.pi * t) / (2 * np.pi))  # eye row .. lip row
    lower_el = -elev_rows(ROWS_LOWER)                # just below the lip row down to the neck

    # The lip line first: where each column meets the mouth row sets the lip warps below.
    mouth_o = np.tile([0.0, AXIS_Y, MOUTH_Z], (N_COLUMNS, 1))
    mouth_d = np.stack([sin_t, -cos_t, np.zeros(N_COLUMNS)], -1)
    mouth_hits = mouth_o + _cast(mouth_o, mouth_d)[:, None] * mouth_d
    col_x = mouth_hits[:, 0]
    col_reach = np.hypot(mouth_hits[:, 0], mouth_hits[:, 1] - AXIS_Y)
    front = mouth_hits[:, 1] < 0
    upper_border, lower_border, ease = _lip_borders(col_x, front)

    origins, dirs = [], []
    for el in upper_el:
        origins.append(np.tile([0.0, AXIS_Y, 0.0], (N_COLUMNS, 1)))
        dirs.append(np.stack([np.cos(el) * sin_t, -np.cos(el) * cos_t, np.full(N_COLUMNS, np.sin(el))], -1))
    # Rows near the lips bend so that one row runs along each lip's border (a clean lip line).
    upper_rise = _warp_rows(middle_z[::-1] - MOUTH_Z, LIP_ROWS_UPPER, upper_border, ease)[::-1]
    for r in range(len(middle_z)):
        o = np.zeros((N_COLUMNS, 3))
        o[:, 1] = AXIS_Y
        o[:, 2] = MOUTH_Z + upper_rise[r]
        origins.append(o)
        dirs.append(np.stack([sin_t, -cos_t, np.zeros(N_COLUMNS)], -1))
    drop = col_reach[None, :] * np.tan(-lower_el)[:, None]
    lower_drop = _warp_rows(drop, LIP_ROWS_LOWER - 1, lower_border, ease)
    for r in range(len(lower_el)):
        el = -np.arctan2(lower_drop[r], col_reach)
        origins.append(np.tile([0.0, AXIS_Y, MOUTH_Z], (N_COLUMNS, 1)))
        dirs.append(np.stack([np.cos(el) * sin_t, -np.cos(el) * cos_t, np.sin(el)], -1))
    origins, dirs = np.stack(origins), np.stack(dirs)
    pole_o = np.array([[0.0, AXIS_Y, 0.0], [0.0, AXIS_Y, MOUTH_Z]])
    pole_d = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])

    grid = origins + _cast(origins, dirs)[..., None] * dirs
    poles = pole_o + _cast(pole_o, pole_d)[..., None] * pole_d
    return grid, poles, theta


def _skin(mesh) -> _Skin:
    """The skin: the grid of ray hits as quads, the eye and mouth slits cut along their rows."""
    grid, poles, theta = _skin_rays()
    rows = grid.shape[0]
    eye_row = ROWS_UPPER
    mouth_row = ROWS_UPPER + ROWS_MIDDLE

    grid_ids = mesh.add_points(grid, SKIN).reshape(rows, N_COLUMNS)
    top, bottom = mesh.add_points(poles, SKIN)

    # Slits: the interior columns of each slit get a second vertex for the lower edge.
    def slit_columns(row, centre_x, half_width):
        pts = grid[row]
        cols = np.nonzero((np.abs(pts[:, 0] - centre_x) <= half_width) & (pts[:, 1] < 0))[0]
        return np.arange(cols.min(), cols.max() + 1)

    slits = {  # name -> (row, columns from corner to corner)
        "eye_left": (eye_row, slit_columns(eye_row, EYE_X, EYE_HALF_WIDTH)),
        "eye_right": (eye_row, slit_columns(eye_row, -EYE_X, EYE_HALF_WIDTH)),
        "mouth": (mouth_row, slit_columns(mouth_row, 0.0, MOUTH_HALF_WIDTH)),
    }
    lower_edge = {}  # column -> lower-edge vertex id, per slit
    for name, (row, cols) in slits.items():
        inner = cols[1:-1]
        copies = mesh.add_points(grid[row, inner], SKIN)
        ids = {int(c): int(grid_ids[row, c]) for c in cols}
        ids.update({int(c): int(v) for c, v in zip(inner, copies)})
        lower_edge[name] = ids
    lower_copy_of = {}
    for name, (row, cols) in slits.items():
        for c in cols[1:-1]:
            lower_copy_of[(row, int(c))] = lower_edge[name][int(c)]

    # Skin faces; below a slit row the faces use the lower-edge copies.
    for r in range(rows - 1):
        for j in range(N_COLUMNS):
            j1 = (j + 1) % N_COLUMNS
            a, d = grid_ids[r, j], grid_ids[r, j1]
            a = lower_copy_of.get((r, j), a)
            d = lower_copy_of.get((r, j1), d)
            mesh.add_face((a, grid_ids[r + 1, j], grid_ids[r + 1, j1], d), M_SKIN)
    for j in range(N_COLUMNS):
        j1 = (j + 1) % N_COLUMNS
        mesh.add_face((top, grid_ids[0, j], grid_ids[0, j1]), M_SKIN)
        mesh.add_face((grid_ids[-1, j], bottom, grid_ids[-1, j1]), M_SKIN)
    skin_face_end = len(mesh.faces)
    return _Skin(grid, grid_ids, int(top), int(bottom), slits, lower_edge, lower_copy_of, skin_face_end,
                 eye_row, mouth_row, np.sin(theta), np.cos(theta), theta)


def _skin_tags(skin: _Skin, n_skin: int):
    """Per skin vertex: its grid row and whether it is a slit's lower-edge copy; the mouth corners."""
    grid_ids, lower_copy_of, mouth_row = skin.grid_ids, skin.lower_copy_of, skin.mouth_row
    rows = grid_ids.shape[0]
    row_of = np.full(n_skin, -1)
    row_of[grid_ids.ravel()] = np.repeat(np.arange(rows), N_COLUMNS)
    row_of[skin.top], row_of[skin.bottom] = -1, rows
    for (row, _), copy in lower_copy_of.items():
        row_of[copy] = row
    is_lower_copy = np.zeros(n_skin, bool)
    is_lower_copy[list(lower_copy_of.values())] = True
    mouth_cols = skin.slits["mouth"][1]
    mouth_corner_ids = (int(grid_ids[mouth_row, mouth_cols[0]]), int(grid_ids[mouth_row, mouth_cols[-1]]))
    return row_of, is_lower_copy, mouth_corner_ids


def _lid_opening(pts, skin: _Skin, row_of, is_lower_copy):
    """How much each skin vertex belongs to an upper or lower lid, which eye, and its opening angle."""
    n_skin, grid, slits, eye_row = len(pts), skin.grid, skin.slits, skin.eye_row
    # Open the eyes: rotate the lids about the eyeball centres, most at the slit, fading away.
    lid_up = np.zeros(n_skin)
    lid_down = np.zeros(n_skin)
    eye_of = np.zeros(n_skin)
    above_eye_row = (row_of < eye_row) & ~is_lower_copy
    below_eye_row = (row_of > eye_row) | (is_lower_copy & (row_of == eye_row))
    on_eye_row_upper = (row_of == eye_row) & ~is_lower_copy
    for side, name in ((1.0, "eye_left"), (-1.0, "eye_right")):
        row, cols = slits[name]
        xs = grid[row, cols, 0]
        x_in, x_out = xs.min(), xs.max()
        s = np.clip((pts[:, 0] - x_in) / (x_out - x_in), 0.0, 1.0)
        almond = np.sin(np.pi * s) ** 0.75
        near = (np.abs(pts[:, 0] - side * EYE_X) < 0.03) & (pts[:, 1] < -0.03)
        z_slit = grid[row, cols, 2].mean()
        dz = pts[:, 2] - z_slit
        up = near * (above_eye_row | on_eye_row_upper) * almond * np.exp(-(np.maximum(dz, 0) / 0.0055) ** 2)
        down = near * below_eye_row * almond * np.exp(-(np.maximum(-dz, 0) / 0.004) ** 2)
        lid_up = np.where(near, up, lid_up)
        lid_down = np.where(near, down, lid_down)
        eye_of = np.where(near & ((up > 1e-4) | (down > 1e-4)), side, eye_of)
    lid_angle = np.radians(-LID_UP_DEGREES * lid_up + LID_DOWN_DEGREES * lid_down)
    return lid_up, lid_down, eye_of, lid_angle


def _lid_flanges(mesh, skin: _Skin, closed, n_skin: int):
    """Lid edges turned inward under the eyeball, so no gap shows; returns (their closed-lid
    positions, the lid vertex each follows)."""
    grid_ids, lower_edge, slits = skin.grid_ids, skin.lower_edge, skin.slits
    extra_closed, extra_src, flanges = [], [], []

    def flange_vertex(i, centre):
        v = closed[i] - centre
        extra_closed.append(centre + v * ((EYE_RADIUS - 0.001) / np.linalg.norm(v)))
        extra_src.append(i)
        return n_skin + len(extra_closed) - 1

    for side, name in ((1.0, "eye_left"), (-1.0, "eye_right")):
        row, cols = slits[name]
        centre = np.array([side * EYE_X, EYE_Y, EYE_Z])
        up_ids = [int(grid_ids[row, c]) for c in cols]
        lo_ids = [lower_edge[name][int(c)] for c in cols]
        up_f, lo_f = [], []
        for iu, il in zip(up_ids, lo_ids):
            fu = flange_vertex(iu, centre)
            up_f.append(fu)
            lo_f.append(fu if iu == il else flange_vertex(il, centre))  # corners are shared
        flanges.append((up_ids, lo_ids, up_f, lo_f))
    flange_ids = mesh.add_points(np.array(extra_closed), SKIN)
    assert flange_ids[0] == n_skin
    extra_src = np.array(extra_src)
    for up_ids, lo_ids, up_f, lo_f in flanges:
        for k in range(len(up_ids) - 1):
            mesh.add_face((up_ids[k], up_f[k], up_f[k + 1], up_ids[k + 1]), M_LASHES)
            mesh.add_face((lo_f[k], lo_ids[k], lo_ids[k + 1], lo_f[k + 1]), M_SKIN)
    return np.array(extra_closed), extra_src


def _mouth_cavity(mesh, skin: _Skin, first_id: int):
    """A cavity continuing the lips inward, closed at the corners; returns (corner_x, its vertex ids,
    how far round from the upper lip to the lower each is (0..1), how deep from the lips)."""
    grid, grid_ids, lower_edge = skin.grid, skin.grid_ids, skin.lower_edge
    m_row, m_cols = skin.slits["mouth"]
    edge_up = [int(grid_ids[m_row, c]) for c in m_cols]
    edge_lo = [lower_edge["mouth"][int(c)] for c in m_cols]
    corner_x = np.abs(grid[m_row, m_cols, 0]).max()
    profile = [(0.0022, 0.0012), (0.0050, 0.0038), (0.0100, 0.0085), (0.0180, 0.0135),
               (0.0270, 0.0140), (0.0350, 0.0100), (0.0410, 0.0045)]
    back_dy = 0.0435
    loop_len = 2 * len(profile) + 1
    bag_rows = np.empty((len(m_cols), loop_len), int)  # upper path, back, lower path (front to front)
    bag_s, bag_edge_dist = [], []
    for k, c in enumerate(m_cols):
        p = grid[m_row, c]
        f = math.sqrt(max(0.0, 1.0 - (p[0] / corner_x) ** 2))
        height = f ** 0.5
        corner = k in (0, len(m_cols) - 1)
        ids_up, ids_lo = [], []
        for i, (dy, dz) in enumerate(profile):
            widen = 1.0 + 0.3 * dy / back_dy
            q_up = np.array([p[0] * widen, p[1] + dy, p[2] + dz * height])
            q_lo = np.array([p[0] * widen, p[1] + dy, p[2] - dz * height * 1.1])
            if corner:
                q_up[2] = q_lo[2] = p[2]
                vid = mesh.add_points(q_up, BAG)[0]
                ids_up.append(vid)
                ids_lo.append(vid)
                bag_s.append(0.5)
                bag_edge_dist.append(dy)
            else:
                ids_up.append(mesh.add_points(q_up, BAG)[0])
                ids_lo.append(mesh.add_points(q_lo, BAG)[0])
                bag_s.extend([0.5 * (i + 1) / (len(profile) + 1), 1.0 - 0.5 * (i + 1) / (len(profile) + 1)])
                bag_edge_dist.extend([dy, dy])
        back = mesh.add_points([p[0] * 1.3, p[1] + back_dy, p[2] - 0.001], BAG)[0]
        bag_s.append(0.5)
        bag_edge_dist.append(back_dy)
        bag_rows[k] = ids_up + [back] + ids_lo[::-1]
    for k in range(len(m_cols) - 1):
        chain0 = [edge_up[k]] + list(bag_rows[k]) + [edge_lo[k]]
        chain1 = [edge_up[k + 1]] + list(bag_rows[k + 1]) + [edge_lo[k + 1]]
        for i in range(len(chain0) - 1):
            material = M_LIPS if i in (0, len(chain0) - 2) else M_MOUTH
            mesh.add_face((chain0[i], chain0[i + 1], chain1[i + 1], chain1[i]), material)
    n_bag_end = mesh.count
    # bag vertex attributes, in id order (ids were handed out in the order appended above)
    bag_ids = np.arange(first_id, n_bag_end)
    bag_s = np.array(bag_s)
    bag_edge_dist = np.array(bag_edge_dist)
    return corner_x, bag_ids, bag_s, bag_edge_dist


def _islands(mesh, skin: _Skin) -> None:
    """Eyeballs, teeth, tongue, brows and hair, each its own island of the mesh."""
    m_row, m_cols = skin.slits["mouth"]
    # Eyeballs, each with a sclera, an iris and a pupil facing -Y.
    iris_a = math.asin(IRIS_RADIUS / EYE_RADIUS)
    pupil_a = math.asin(PUPIL_RADIUS / EYE_RADIUS)
    eye_rings = np.concatenate([np.linspace(0, pupil_a, 3)[1:], np.linspace(pupil_a, iris_a, 4)[1:],
                                np.linspace(iris_a, np.pi, 15)[1:-1]])

    def eye_material(alpha):
        return M_PUPIL if alpha < pupil_a else (M_IRIS if alpha < iris_a else M_SCLERA)

    for side, part in ((1.0, EYE_LEFT), (-1.0, EYE_RIGHT)):
        _sphere_island(mesh, (side * EYE_X, EYE_Y, EYE_Z), np.array([EYE_RADIUS] * 3),
                       eye_rings, 28, eye_material, part)

    # Teeth: two arches behind the lips; the lower one rides on the jaw.
    lip_front_y = skin.grid[m_row, m_cols[len(m_cols) // 2], 1]
    _teeth_island(mesh, lip_front_y + 0.0075, MOUTH_Z - 0.0022, MOUTH_Z + 0.009, 0.019, TEETH_UPPER)
    _teeth_island(mesh, lip_front_y + 0.0088, MOUTH_Z - 0.0105, MOUTH_Z - 0.0012, 0.0175, TEETH_LOWER)

    # Tongue: a flattened ellipsoid resting on the floor of the mouth.
    tongue_centre = (0.0, lip_front_y + 0.027, MOUTH_Z - 0.011)
    _sphere_island(mesh, tongue_centre, np.array([0.015, 0.0145, 0.005]),
                   np.linspace(0, np.pi, 12)[1:-1], 20, lambda a: M_TONGUE, TONGUE)

    for sign in (1.0, -1.0):
        _brow_island(mesh, sign)
    _hair_island(mesh, skin.sin_t, skin.cos_t, skin.theta)


def _lid_rotate(points, eye_of, angle):
    """Turn lid vertices about their eyeball's horizontal axis (eye_of: +1 left, -1 right, 0 none)."""
    out = points.copy()
    for side in (1.0, -1.0):
        sel = eye_of == side
        if np.any(sel):
            out[sel] = _rotate_x(points[sel], (EYE_Y, EYE_Z), angle[sel])
    return out
