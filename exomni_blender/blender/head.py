"""A procedural talking head with all 52 ARKit shape keys, so anyone can try a take without a rig.

`create_head()` builds one mesh object with numpy alone (no operators, so it works headless):
skin with a jaw, lips, nose, brows, cheeks and ears, eyelids over two eyeballs, a mouth cavity
with teeth and a tongue. The eyeballs, teeth and tongue are islands of the same mesh, so shape
keys move them too (gaze is visible with shape keys alone).

Conventions: real-world scale in metres, the face looks toward -Y, Z is up, the eyes are at
z = 0 and the origin is inside the head. ARKit "Left" is the subject's left, which is +X.

How it is made: the skin is a grid of rays cast from a vertical axis inside the head onto a
smooth signed-distance sculpture (skull, jaw, cheekbones, nose, lips, ears, neck, eye sockets);
the mouth and the eyes are slits cut along grid rows. The eyelids are opened by rotating them
about the eyeball centres, and every shape key is a displacement of the rest shape over weight
fields (jaw, lips, mouth corners, lids, brows, cheeks).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..core.arkit import ARKIT_52

# -- landmarks (metres) -------------------------------------------------------------------------
AXIS_Y = 0.01                    # the vertical axis the skin rays start from
EYE_X, EYE_Y, EYE_Z = 0.032, -0.0615, 0.002
EYE_RADIUS = 0.0125
LID_RADIUS = EYE_RADIUS + 0.0012
EYE_HALF_WIDTH = 0.0135          # half the lid slit, at the slit row
IRIS_RADIUS, PUPIL_RADIUS = 0.0058, 0.0025
MOUTH_Z = -0.064                 # the lip line
MOUTH_HALF_WIDTH = 0.024
HINGE_Y, HINGE_Z = -0.004, -0.014  # jaw hinge axis (parallel to X)
JAW_GLIDE = 0.011                # the jaw slides forward as it opens wide, as the condyles do
NECK_BOTTOM = -0.18

JAW_OPEN_DEGREES = 21.0
LID_UP_DEGREES, LID_DOWN_DEGREES = 34.0, 14.0   # how far the lids are opened at rest
GAZE_DEGREES = (25.0, 30.0)                      # up/down, in/out

# Grid resolution: columns around the head, rows over the crown, the mid-face band and the
# lower face; denser where the face is.
N_COLUMNS, ROWS_UPPER, ROWS_MIDDLE, ROWS_LOWER = 144, 44, 34, 40
LIP_ROWS_UPPER, LIP_ROWS_LOWER = 5, 6  # rows of lip between the lip line and each border

SKIN, BAG, EYE_LEFT, EYE_RIGHT, TEETH_UPPER, TEETH_LOWER, TONGUE, BROW, HAIR = range(9)

MATERIALS = (  # name, RGBA (also the Workbench viewport colour), roughness
    ("ExOmni Skin", (0.86, 0.55, 0.42, 1.0), 0.55),
    ("ExOmni Lips", (0.66, 0.25, 0.23, 1.0), 0.45),
    ("ExOmni Brows", (0.16, 0.09, 0.05, 1.0), 0.8),
    ("ExOmni Lashes", (0.06, 0.04, 0.03, 1.0), 0.8),
    ("ExOmni Mouth", (0.13, 0.03, 0.03, 1.0), 0.6),
    ("ExOmni Teeth", (0.93, 0.91, 0.84, 1.0), 0.3),
    ("ExOmni Tongue", (0.72, 0.30, 0.32, 1.0), 0.4),
    ("ExOmni Eye White", (0.95, 0.94, 0.92, 1.0), 0.15),
    ("ExOmni Iris", (0.16, 0.36, 0.52, 1.0), 0.15),
    ("ExOmni Pupil", (0.01, 0.01, 0.01, 1.0), 0.1),
    ("ExOmni Hair", (0.10, 0.06, 0.04, 1.0), 0.5),
)
M_SKIN, M_LIPS, M_BROWS, M_LASHES, M_MOUTH, M_TEETH, M_TONGUE, M_SCLERA, M_IRIS, M_PUPIL, M_HAIR = range(11)


# -- signed distance sculpture ------------------------------------------------------------------

def _norm(v):
    return np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1] + v[..., 2] * v[..., 2])


def _ellipsoid(p, c, r):
    r = np.asarray(r, float)
    q = (p - np.asarray(c, float)) / r
    k0 = _norm(q)
    k1 = _norm(q / r)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _sphere(p, c, r):
    return _norm(p - np.asarray(c, float)) - r


def _round_cone(p, a, b, ra, rb):
    a, b = np.asarray(a, float), np.asarray(b, float)
    pa, ba = p - a, b - a
    h = np.clip((pa @ ba) / (ba @ ba), 0.0, 1.0)
    return _norm(pa - h[..., None] * ba) - (ra + (rb - ra) * h)


def _smin(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1.0 - h) + a * h - k * h * (1.0 - h)


def _smax(a, b, k):
    return -_smin(-a, -b, k)


def _head_sdf(p):
    pm = p.copy()
    pm[..., 0] = np.abs(pm[..., 0])  # paired features are modelled on the +X side
    d = _ellipsoid(p, (0, 0.015, 0.028), (0.073, 0.097, 0.098))                 # cranium
    d = _smin(d, _ellipsoid(p, (0, -0.02, -0.045), (0.062, 0.066, 0.08)), 0.025)  # face and jaw
    d = _smin(d, _ellipsoid(p, (0, -0.07, -0.104), (0.018, 0.015, 0.014)), 0.016)  # chin
    d = _smin(d, _ellipsoid(pm, (0.043, -0.056, -0.017), (0.017, 0.015, 0.013)), 0.026)  # cheekbones
    d = _smin(d, _ellipsoid(p, (0, -0.071, 0.021), (0.052, 0.014, 0.011)), 0.01)  # brow ridge
    d = _smax(d, -_ellipsoid(pm, (EYE_X, -0.079, 0.002), (0.018, 0.014, 0.013)), 0.006)  # sockets
    d = _smin(d, _sphere(pm, (EYE_X, EYE_Y, EYE_Z), LID_RADIUS), 0.004)         # lids on the eyeballs
    nose = _round_cone(p, (0, -0.079, 0.008), (0, -0.1, -0.029), 0.0055, 0.0095)
    nose = _smin(nose, _ellipsoid(pm, (0.0115, -0.09, -0.033), (0.0075, 0.0075, 0.0065)), 0.005)
    d = _smin(d, nose, 0.006)
    d = _smin(d, _ellipsoid(p, (0, -0.085, -0.057), (0.023, 0.008, 0.0075)), 0.006)  # upper lip
    d = _smin(d, _ellipsoid(p, (0, -0.0825, -0.0702), (0.019, 0.0075, 0.0064)), 0.006)  # lower lip
    d = _smin(d, _ellipsoid(pm, (0.074, 0.012, -0.008), (0.012, 0.017, 0.029)), 0.006)  # ears
    neck = _smax(np.hypot(p[..., 0] / 1.05, p[..., 1] - 0.014) - 0.053, p[..., 2] + 0.035, 0.03)
    d = _smin(d, neck, 0.02)
    return _smax(d, NECK_BOTTOM - p[..., 2], 0.01)


def _sdf_normals(p, eps=2e-4):
    g = np.empty_like(p)
    for axis in range(3):
        off = np.zeros(3)
        off[axis] = eps
        g[..., axis] = _head_sdf(p + off) - _head_sdf(p - off)
    return g / np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-12)


def _cast(origins, dirs, t_max=0.17, tolerance=1e-5, iterations=120):
    """Distance along each ray to where it last leaves the sculpture (sphere tracing inward)."""
    t = np.full(origins.shape[:-1], t_max)
    active = np.ones(origins.shape[:-1], bool)
    for _ in range(iterations):
        idx = np.nonzero(active)
        if not idx[0].size:
            break
        d = _head_sdf(origins[idx] + t[idx][:, None] * dirs[idx])
        t[idx] = np.maximum(t[idx] - 0.85 * d, 0.0)
        active[idx] = np.abs(d) > tolerance
    return t


# -- small geometry helpers ----------------------------------------------------------------------

def _smoothstep(e0, e1, x):
    t = np.clip((np.asarray(x, float) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rotate_x(p, centre_yz, angle):
    """Rotate points about the X-parallel axis through (y, z) by `angle` (radians, per point ok)."""
    y, z = p[..., 1] - centre_yz[0], p[..., 2] - centre_yz[1]
    c, s = np.cos(angle), np.sin(angle)
    out = p.copy()
    out[..., 1] = centre_yz[0] + y * c - z * s
    out[..., 2] = centre_yz[1] + y * s + z * c
    return out


def _rotate_z(p, centre_xy, angle):
    x, y = p[..., 0] - centre_xy[0], p[..., 1] - centre_xy[1]
    c, s = np.cos(angle), np.sin(angle)
    out = p.copy()
    out[..., 0] = centre_xy[0] + x * c - y * s
    out[..., 1] = centre_xy[1] + x * s + y * c
    return out


def _gauss(p, centre, sigma):
    q = (p - np.asarray(centre, float)) / np.asarray(sigma, float)
    return np.exp(-0.5 * np.sum(q * q, axis=-1))


def _lip_borders(x, front):
    """Heights of the upper and lower lip borders above/below the lip line, per column."""
    ax = np.abs(x)
    inside = np.clip(1 - (ax / MOUTH_HALF_WIDTH) ** 2, 0, 1)
    upper = 0.0068 * inside ** 0.55 - 0.0011 * np.exp(-(x / 0.0035) ** 2)  # with a cupid's bow
    lower = 0.0076 * inside ** 0.5
    upper = np.maximum(upper, 0.0009)
    lower = np.maximum(lower, 0.0009)
    # Past the corners (and at the back) the rows ease back to their even spacing.
    ease = np.clip(_smoothstep(MOUTH_HALF_WIDTH - 0.001, MOUTH_HALF_WIDTH + 0.012, ax) + (~front), 0, 1)
    return upper, lower, ease


def _warp_rows(offsets, border_row, border, ease, limit=0.02):
    """Move row offsets (distance from the lip line, [rows, columns] or [rows]) so that row
    `border_row` lands on `border` (per column; `ease` 1 leaves a column as it is), keeping the
    rows in order."""
    offsets = np.asarray(offsets, float)
    if offsets.ndim == 1:
        offsets = np.repeat(offsets[:, None], len(ease), axis=1)
    at = offsets[border_row]
    target = border + (at - border) * ease
    scale_in = target / at
    scale_out = (limit - target) / np.maximum(limit - at, 1e-9)
    warped = np.where(offsets <= at, offsets * scale_in,
                      np.where(offsets < limit, target + (offsets - at) * scale_out, offsets))
    return warped


class _Mesh:
    """Vertices, faces and per-vertex tags, gathered island by island."""

    def __init__(self):
        self.points, self.parts, self.faces, self.face_materials = [], [], [], []
        self.count = 0

    def add_points(self, pts, part):
        pts = np.asarray(pts, float).reshape(-1, 3)
        ids = np.arange(self.count, self.count + len(pts))
        self.points.append(pts)
        self.parts.append(np.full(len(pts), part))
        self.count += len(pts)
        return ids

    def add_face(self, ids, material):
        self.faces.append(tuple(int(i) for i in ids))
        self.face_materials.append(material)

    def closed_island(self, first_face, centre):
        """Flip an island's faces if they point inward (a negative signed volume)."""
        pts = np.concatenate(self.points)
        quads = _as_quads(self.faces[first_face:])
        a, b, c, d = (pts[quads[:, i]] - centre for i in range(4))
        # a quad's two triangles (a, b, c) and (a, c, d); a repeated corner adds nothing
        vol = np.sum(a * np.cross(b, c)) + np.sum(a * np.cross(c, d))
        if vol < 0:
            self.faces[first_face:] = [tuple(reversed(f)) for f in self.faces[first_face:]]


def _as_quads(faces):
    """Faces as an [n, 4] array, triangles padded by repeating their last corner."""
    return np.array([f if len(f) == 4 else (f + (f[-1],) * (4 - len(f)))[:4] for f in faces])


def _sphere_island(mesh, centre, radii, rings, segments, material_of_ring, part):
    """A UV sphere whose poles lie on the Y axis (front pole at -Y); returns the vertex ids."""
    centre = np.asarray(centre, float)
    alphas = np.asarray(rings, float)  # polar angles from the front pole, exclusive of the poles
    betas = 2 * np.pi * np.arange(segments) / segments
    a, b = np.meshgrid(alphas, betas, indexing="ij")
    unit = np.stack([np.sin(a) * np.cos(b), -np.cos(a), np.sin(a) * np.sin(b)], axis=-1)
    ring_ids = mesh.add_points(centre + unit * radii, part).reshape(len(alphas), segments)
    front = mesh.add_points(centre + np.array([0, -radii[1], 0]), part)[0]
    back = mesh.add_points(centre + np.array([0, radii[1], 0]), part)[0]
    first = len(mesh.faces)
    for s in range(segments):
        s1 = (s + 1) % segments
        mesh.add_face((front, ring_ids[0, s1], ring_ids[0, s]), material_of_ring(0.0))
        for r in range(len(alphas) - 1):
            mid = 0.5 * (alphas[r] + alphas[r + 1])
            mesh.add_face((ring_ids[r, s], ring_ids[r, s1], ring_ids[r + 1, s1], ring_ids[r + 1, s]),
                          material_of_ring(mid))
        mesh.add_face((back, ring_ids[-1, s], ring_ids[-1, s1]), material_of_ring(np.pi))
    mesh.closed_island(first, centre)
    return np.concatenate([ring_ids.ravel(), [front, back]])


# -- the head ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _build():
    """Rest positions, faces, materials and the 52 shape key positions (cached; pure numpy)."""
    mesh = _Mesh()

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

    # Per-vertex tags of the skin: which side of the lip line, which lid.
    n_skin = mesh.count
    pts = np.concatenate(mesh.points)
    row_of = np.full(n_skin, -1)
    row_of[grid_ids.ravel()] = np.repeat(np.arange(rows), N_COLUMNS)
    row_of[top], row_of[bottom] = -1, rows
    for (row, _), copy in lower_copy_of.items():
        row_of[copy] = row
    is_lower_copy = np.zeros(n_skin, bool)
    is_lower_copy[list(lower_copy_of.values())] = True
    mouth_cols = slits["mouth"][1]
    mouth_corner_ids = (int(grid_ids[mouth_row, mouth_cols[0]]), int(grid_ids[mouth_row, mouth_cols[-1]]))

    # Open the eyes: rotate the lids about the eyeball centres, most at the slit, fading away.
    closed = pts.copy()
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

    # Lid flanges: the lid edges turn inward, under the eyeball surface, so no gap shows.
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
    n_lidded = mesh.count
    # Flange verts follow their edge vertex's lid rotation.
    lid_up = np.concatenate([lid_up, lid_up[extra_src]])
    lid_down = np.concatenate([lid_down, lid_down[extra_src]])
    eye_of = np.concatenate([eye_of, eye_of[extra_src]])
    lid_angle = np.concatenate([lid_angle, lid_angle[extra_src]])
    closed = np.concatenate([closed, np.array(extra_closed)])
    rest_skin = _lid_rotate(closed, eye_of, lid_angle)

    # The mouth: a cavity continuing the lips inward, closed at the corners.
    m_row, m_cols = slits["mouth"]
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
    bag_ids = np.arange(n_lidded, n_bag_end)
    bag_s = np.array(bag_s)
    bag_edge_dist = np.array(bag_edge_dist)

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
    lip_front_y = grid[m_row, m_cols[len(m_cols) // 2], 1]
    _teeth_island(mesh, lip_front_y + 0.0075, MOUTH_Z - 0.0022, MOUTH_Z + 0.009, 0.019, TEETH_UPPER)
    _teeth_island(mesh, lip_front_y + 0.0088, MOUTH_Z - 0.0105, MOUTH_Z - 0.0012, 0.0175, TEETH_LOWER)

    # Tongue: a flattened ellipsoid resting on the floor of the mouth.
    tongue_centre = (0.0, lip_front_y + 0.027, MOUTH_Z - 0.011)
    _sphere_island(mesh, tongue_centre, np.array([0.015, 0.0145, 0.005]),
                   np.linspace(0, np.pi, 12)[1:-1], 20, lambda a: M_TONGUE, TONGUE)

    for sign in (1.0, -1.0):
        _brow_island(mesh, sign)
    _hair_island(mesh, sin_t, cos_t, theta)

    points = np.concatenate(mesh.points)
    parts = np.concatenate(mesh.parts)
    rest = points.copy()
    rest[: len(rest_skin)] = rest_skin

    fields = _Fields(rest, parts, n_skin=n_lidded, row_of=row_of, is_lower_copy=is_lower_copy,
                     mouth_row=mouth_row, mouth_corner_ids=mouth_corner_ids,
                     corner_x=corner_x, lid_up=lid_up, lid_down=lid_down, eye_of=eye_of,
                     bag_ids=bag_ids, bag_s=bag_s, bag_edge_dist=bag_edge_dist)
    materials = _face_materials(mesh, skin_face_end, slits, mouth_row)
    keys = _shape_keys(fields)
    return rest, mesh.faces, materials, keys


def _lid_rotate(points, eye_of, angle):
    """Turn lid vertices about their eyeball's horizontal axis (eye_of: +1 left, -1 right, 0 none)."""
    out = points.copy()
    for side in (1.0, -1.0):
        sel = eye_of == side
        if np.any(sel):
            out[sel] = _rotate_x(points[sel], (EYE_Y, EYE_Z), angle[sel])
    return out


def _teeth_island(mesh, front_y, z_low, z_high, half_width, part):
    """An arch of teeth: a closed band following a parabola, 5 mm thick."""
    xs = np.linspace(-half_width, half_width, 19)
    arch = front_y + 30.0 * xs ** 2
    section = [(0.0, 0.0), (0.0, 1.0), (0.005, 1.0), (0.005, 0.0)]  # (depth, height fraction)
    first = len(mesh.faces)
    ring_ids = []
    for x, y in zip(xs, arch):
        pts = []
        for depth, h in section:
            z = z_low + (z_high - z_low) * h
            pts.append((x * (1 + 12.0 * depth), y + depth, z))
        ring_ids.append(mesh.add_points(pts, part))
    for i in range(len(xs) - 1):
        a, b = ring_ids[i], ring_ids[i + 1]
        for k in range(4):
            k1 = (k + 1) % 4
            mesh.add_face((a[k], b[k], b[k1], a[k1]), M_TEETH)
    mesh.add_face(tuple(ring_ids[0]), M_TEETH)
    mesh.add_face(tuple(ring_ids[-1][::-1]), M_TEETH)
    mesh.closed_island(first, np.array([0.0, front_y + 0.01, 0.5 * (z_low + z_high)]))


class _Fields:
    """Weight fields over the rest shape that the shape keys are made from."""

    def __init__(self, rest, parts, **kw):
        self.__dict__.update(kw)
        self.rest = rest
        self.parts = parts
        n = len(rest)
        p = rest
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        skin = np.zeros(n, bool)
        skin[: self.n_skin] = True
        skin |= parts == BROW  # the brows lie on the skin and move with it
        self.skin = skin
        bag = np.zeros(n, bool)
        bag[self.bag_ids] = True
        self.bag = bag
        self.soft = skin | bag  # skin and the mouth cavity deform; eyes, teeth, tongue are rigid

        # Which side of the lip line: 1 below (jaw side), 0 above, a soft ramp past the corners.
        d = z - MOUTH_Z
        row = np.full(n, -10)
        row[: len(self.row_of)] = self.row_of
        lower_copy = np.zeros(n, bool)
        lower_copy[: len(self.is_lower_copy)] = self.is_lower_copy
        on_mouth_row = (row == self.mouth_row)
        beyond = np.maximum(0.0, np.abs(x) - self.corner_x)
        width = 0.0015 + 1.2 * beyond
        lower = np.clip(0.5 - d / width, 0.0, 1.0)
        lower = lower * lower * (3 - 2 * lower)
        lower[on_mouth_row & lower_copy] = 1.0  # the two edges of the lip slit
        lower[on_mouth_row & ~lower_copy & (beyond <= 0)] = 0.0
        lower[list(self.mouth_corner_ids)] = 0.5
        # the cavity: roof with the upper side, floor with the jaw
        lower[self.bag_ids] = _smoothstep(0.3, 0.7, self.bag_s)
        self.lower = lower
        self.d = d

        # Jaw: everything below the lip line in front of the hinge, above the jaw line.
        front = _smoothstep(HINGE_Y + 0.014, HINGE_Y - 0.022, y)
        jaw_line = np.interp(y, [-0.075, -0.005], [-0.122, -0.095])
        above_neck = _smoothstep(jaw_line - 0.024, jaw_line - 0.004, z)
        jaw = lower * front * above_neck
        # The opening narrows to the corners: near the lip line the lower lip follows the jaw
        # less toward the corners and the upper lip a little more, both meeting half way there.
        in_mouth = (np.abs(x) < self.corner_x) & self.skin & (y < -0.05)
        taper = np.sqrt(np.sqrt(np.clip(1 - (x / self.corner_x) ** 2, 0, 1)))
        near_line = np.exp(-(d / 0.005) ** 2)
        jaw = np.where(in_mouth & (lower > 0.5), jaw * (1 - (0.5 - 0.5 * taper) * near_line), jaw)
        jaw = np.where(in_mouth & (lower <= 0.5), jaw + (0.5 - 0.5 * taper) * near_line * front, jaw)
        jaw = np.where(self.soft, jaw, 0.0)
        jaw[parts == TEETH_LOWER] = 1.0
        jaw[parts == TONGUE] = 1.0
        self.jaw = jaw

        # Lips: bands above and below the lip line, within the mouth's width.
        lateral = _smoothstep(self.corner_x + 0.01, self.corner_x - 0.002, np.abs(x))
        front_face = _smoothstep(-0.045, -0.06, y)
        up = (1 - lower) * lateral * np.exp(-(np.maximum(d, 0) / 0.0075) ** 2) * front_face
        lo = lower * lateral * np.exp(-(np.maximum(-d, 0) / 0.009) ** 2) * front_face
        bag_fade = np.exp(-(self.bag_edge_dist / 0.012) ** 2)
        up[self.bag_ids] = (1 - lower[self.bag_ids]) * bag_fade * lateral[self.bag_ids]
        lo[self.bag_ids] = lower[self.bag_ids] * bag_fade * lateral[self.bag_ids]
        up = np.where(self.soft, up, 0.0)
        lo = np.where(self.soft, lo, 0.0)
        self.upper_lip, self.lower_lip = up, lo
        # how near the lip edge (the slit): 1 at the edge, for rolls, presses and the "O" opening
        edge_up = up * np.exp(-(np.maximum(d, 0) / 0.003) ** 2)
        edge_lo = lo * np.exp(-(np.maximum(-d, 0) / 0.003) ** 2)
        edge_up[self.bag_ids] = up[self.bag_ids] * np.exp(-(self.bag_edge_dist[:] / 0.005) ** 2)
        edge_lo[self.bag_ids] = lo[self.bag_ids] * np.exp(-(self.bag_edge_dist[:] / 0.005) ** 2)
        self.edge_upper, self.edge_lower = edge_up, edge_lo
        # the mouth's opening profile across its width: 1 in the middle, 0 at the corners
        self.opening = np.sqrt(np.clip(1 - (x / self.corner_x) ** 2, 0, 1))
        # the mouth region as a whole (lips, and skin around them)
        around = (np.exp(-0.5 * (np.maximum(0, np.abs(x) - 0.6 * self.corner_x) / 0.011) ** 2)
                  * np.where(d > 0, np.exp(-(d / 0.011) ** 2), np.exp(-(d / 0.015) ** 2)) * front_face)
        around[self.bag_ids] = np.exp(-(self.bag_edge_dist / 0.02) ** 2)
        self.mouth = np.where(self.soft, around, 0.0)

    def side(self, sign, soft=0.006):
        """1 on the subject's left (+X) for sign=+1 or right for -1, a soft seam at the middle."""
        return _smoothstep(-soft, soft, sign * self.rest[:, 0])

    def corner(self, sign, sigma=(0.011, 0.012, 0.010)):
        rest = self.rest
        c = next(rest[i] for i in self.mouth_corner_ids if np.sign(rest[i, 0]) == sign)
        w = _gauss(rest, c, sigma) * self.side(sign)
        return np.where(self.soft, w, 0.0)

    def region(self, centre, sigma, sign=0):
        w = _gauss(self.rest, centre, sigma)
        if sign:
            w = w * self.side(sign)
        return np.where(self.skin, w, 0.0)


def _shape_keys(f: _Fields):
    """Positions of all 52 ARKit shape keys, in ARKIT_52 order."""
    rest = f.rest
    x = rest[:, 0]
    keys = {}

    def add(name, delta):
        keys[name] = rest + delta

    def vec(w, v):
        return w[:, None] * np.asarray(v, float)[None, :]

    jaw_open_delta = _jaw_open(rest, f.jaw, 1.0) - rest

    # Brows: a band over each eye; inner and outer parts rise separately.
    brow_zone = _smoothstep(0.004, 0.014, rest[:, 2]) * (rest[:, 1] < -0.03)
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        w = f.region((sign * 0.031, -0.08, 0.021), (0.017, 0.03, 0.011), sign) * brow_zone
        inward = -sign * 0.0018
        add(f"browDown{suffix}", vec(w, (inward, -0.0008, -0.0048)))
        w = f.region((sign * 0.046, -0.07, 0.021), (0.011, 0.03, 0.011), sign) * brow_zone
        add(f"browOuterUp{suffix}", vec(w, (sign * 0.0005, 0.0, 0.0058)))
    w = (f.region((0.014, -0.08, 0.022), (0.011, 0.03, 0.012))
         + f.region((-0.014, -0.08, 0.022), (0.011, 0.03, 0.012))) * brow_zone
    add("browInnerUp", vec(np.clip(w, 0, 1), (0.0, -0.0005, 0.0062)))

    # Cheeks.
    puff = (f.region((0.045, -0.06, -0.05), (0.013, 0.03, 0.014))
            + f.region((-0.045, -0.06, -0.05), (0.013, 0.03, 0.014)))
    puff = np.clip(puff, 0, 1)
    delta = np.zeros_like(rest)
    sel = puff > 1e-5
    delta[sel] = _sdf_normals(rest[sel]) * (0.0075 * puff[sel])[:, None]
    add("cheekPuff", delta)
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        w = f.region((sign * 0.036, -0.07, -0.02), (0.012, 0.03, 0.009), sign)
        delta = vec(w, (sign * 0.0005, -0.001, 0.0035))
        delta += _lid_delta(f, sign, 0.0, 0.35)  # the lower lid rides up with the cheek
        add(f"cheekSquint{suffix}", delta)

    # Eyes: lids close and open about the eyeball centre; gaze turns the eyeball.
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        add(f"eyeBlink{suffix}", _lid_delta(f, sign, 1.0, 1.0))
        add(f"eyeSquint{suffix}", _lid_delta(f, sign, 0.12, 0.6)
            + vec(f.region((sign * 0.036, -0.07, -0.014), (0.012, 0.03, 0.006), sign), (0, -0.0005, 0.0015)))
        add(f"eyeWide{suffix}", _lid_delta(f, sign, -0.35, -0.2))
        part = EYE_LEFT if sign > 0 else EYE_RIGHT
        up_deg, side_deg = GAZE_DEGREES
        turn_in = -sign  # looking in turns the gaze toward the nose
        for direction, (about_x, about_z, lid_up, lid_lo) in {
            "Down": (up_deg, 0.0, 0.35, -0.25), "Up": (-up_deg, 0.0, -0.25, 0.1),
            "In": (0.0, turn_in * side_deg, 0.0, 0.0), "Out": (0.0, -turn_in * side_deg, 0.0, 0.0),
        }.items():
            delta = np.zeros_like(rest)
            sel = f.parts == part
            turned = rest[sel]
            centre = (sign * EYE_X, EYE_Y, EYE_Z)
            if about_x:
                turned = _rotate_x(turned, centre[1:], np.radians(about_x))
            if about_z:
                turned = _rotate_z(turned, centre[:2], np.radians(about_z))
            delta[sel] = turned - rest[sel]
            if lid_up or lid_lo:
                delta += _lid_delta(f, sign, lid_up, lid_lo)
            add(f"eyeLook{direction}{suffix}", delta)

    # Jaw.
    add("jawForward", vec(f.jaw, (0.0, -0.006, 0.0)))
    add("jawLeft", vec(f.jaw, (0.0065, 0.0, 0.0)))
    add("jawOpen", jaw_open_delta)
    add("jawRight", vec(f.jaw, (-0.0065, 0.0, 0.0)))

    # Mouth.
    add("mouthClose", -jaw_open_delta * _lip_close_weight(f)[:, None])
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        c = f.corner(sign)
        add(f"mouthDimple{suffix}", vec(c, (sign * 0.0022, 0.0032, -0.0004)))
        add(f"mouthFrown{suffix}", vec(f.corner(sign, (0.011, 0.012, 0.013)), (sign * 0.0008, 0.0005, -0.0055)))
    mouth = f.mouth
    funnel = vec(mouth, (0.0, -0.0065, 0.0))
    funnel += vec(mouth, (1.0, 0.0, 0.0)) * (-0.22 * x)[:, None]
    funnel += vec(f.edge_upper * f.opening, (0.0, -0.002, 0.0045))
    funnel += vec(f.edge_lower * f.opening, (0.0, -0.002, -0.0055))
    add("mouthFunnel", funnel)
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        add(f"mouth{suffix}", vec(mouth, (sign * 0.0075, 0.001, 0.0)))
        lo = f.lower_lip * f.side(sign) * (0.35 + 0.65 * f.opening)
        add(f"mouthLowerDown{suffix}", vec(lo, (0.0, -0.0012, -0.0058)))
        press = vec(f.edge_upper * f.side(sign), (0.0, 0.0015, -0.0012))
        press += vec(f.edge_lower * f.side(sign), (0.0, 0.0015, 0.0012))
        press += vec(f.corner(sign, (0.008, 0.01, 0.008)), (sign * 0.0015, 0.0, 0.0))
        add(f"mouthPress{suffix}", press)
    pucker = vec(mouth, (0.0, -0.0085, 0.0))
    pucker += vec(mouth, (1.0, 0.0, 0.0)) * (-0.36 * x)[:, None]
    pucker += vec(f.edge_upper * f.opening, (0.0, -0.0015, -0.0008))
    pucker += vec(f.edge_lower * f.opening, (0.0, -0.0015, 0.0008))
    add("mouthPucker", pucker)
    add("mouthRollLower", vec(f.lower_lip, (0.0, 0.0025, 0.0012)) + vec(f.edge_lower, (0.0, 0.003, 0.0015)))
    add("mouthRollUpper", vec(f.upper_lip, (0.0, 0.0025, -0.0012)) + vec(f.edge_upper, (0.0, 0.003, -0.0015)))
    chin = f.region((0.0, -0.08, -0.1), (0.02, 0.03, 0.014))
    add("mouthShrugLower", vec(np.clip(f.lower_lip + chin, 0, 1), (0.0, -0.0022, 0.0042)))
    add("mouthShrugUpper", vec(f.upper_lip, (0.0, -0.0018, 0.0032)))
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        c = f.corner(sign, (0.012, 0.013, 0.011))
        cheek = f.region((sign * 0.036, -0.07, -0.035), (0.012, 0.03, 0.012), sign)
        add(f"mouthSmile{suffix}", vec(c, (sign * 0.0065, 0.0045, 0.0085)) + vec(cheek, (sign * 0.001, -0.002, 0.0035)))
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        add(f"mouthStretch{suffix}", vec(f.corner(sign, (0.013, 0.013, 0.012)), (sign * 0.0075, 0.002, -0.0032)))
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        w = f.upper_lip * f.side(sign) * np.exp(-0.5 * ((x - sign * 0.011) / 0.011) ** 2)
        add(f"mouthUpperUp{suffix}", vec(w, (0.0, -0.0008, 0.0052)))

    # Nose.
    for sign, suffix in ((1, "Left"), (-1, "Right")):
        w = f.region((sign * 0.013, -0.09, -0.028), (0.008, 0.03, 0.009), sign)
        add(f"noseSneer{suffix}", vec(w, (sign * 0.0008, 0.0002, 0.0035)))

    # Tongue: out past the lips, with the jaw a little open so it can pass.
    tongue = f.parts == TONGUE
    delta = jaw_open_delta * 0.35
    ty = rest[tongue, 1]
    tip = (ty.max() - ty) / (ty.max() - ty.min())
    delta[tongue] = _jaw_open(rest[tongue], np.ones(tongue.sum()), 0.35) - rest[tongue]
    delta[tongue] += (0.4 + 0.6 * tip)[:, None] * np.array([0.0, -0.03, -0.0035])
    add("tongueOut", delta)

    missing = set(ARKIT_52) - set(keys)
    assert not missing, f"shape keys not built: {sorted(missing)}"
    return [keys[name].astype(np.float32) for name in ARKIT_52]


def _jaw_open(points, weight, amount):
    """Points moved by the jaw opening `amount` (0..1): a turn about the hinge plus the glide."""
    moved = _rotate_x(points, (HINGE_Y, HINGE_Z), np.radians(JAW_OPEN_DEGREES) * amount * weight)
    moved[:, 1] -= JAW_GLIDE * amount * weight
    return moved


def _lid_delta(f: _Fields, sign, close_upper, close_lower):
    """Move one eye's lids: 1 closes a lid fully (back to the slit), negative values open it more."""
    sel = f.eye_of == sign
    delta = np.zeros_like(f.rest)
    if not np.any(sel):
        return delta
    n = len(f.eye_of)
    angle = np.radians(LID_UP_DEGREES * f.lid_up * close_upper - LID_DOWN_DEGREES * f.lid_down * close_lower)
    moved = _rotate_x(f.rest[:n][sel], (EYE_Y, EYE_Z), angle[sel])
    delta[:n][sel] = moved - f.rest[:n][sel]
    return delta


def _lip_close_weight(f: _Fields):
    # The lower lip comes all the way back to the upper one, the chin stays with the open jaw.
    d = f.d
    w = np.where(f.lower > 0.5, np.exp(-(np.maximum(-d, 0) / 0.012) ** 2), np.exp(-(d / 0.005) ** 2))
    w[f.bag_ids] = np.where(f.lower[f.bag_ids] > 0.5, np.exp(-(f.bag_edge_dist / 0.02) ** 2), 0.0)
    lateral = _smoothstep(f.corner_x + 0.01, f.corner_x - 0.002, np.abs(f.rest[:, 0]))
    return w * lateral * f.soft


def _face_materials(mesh, skin_face_end, slits, mouth_row):
    """Lips and lash lines on the skin faces (skin faces are row-major: row * N_COLUMNS + column)."""
    mats = np.array(mesh.face_materials)
    cols = slits["mouth"][1][:-1]
    for r in range(mouth_row - LIP_ROWS_UPPER, mouth_row + LIP_ROWS_LOWER):
        mats[r * N_COLUMNS + cols] = M_LIPS
    for name in ("eye_left", "eye_right"):
        row, cols = slits[name]
        mats[(row - 1) * N_COLUMNS + cols[:-1]] = M_LASHES
    return mats


def _front_surface(x, z, lift=0.0):
    """Points on the front of the skin at (x, z), lifted `lift` along the surface normal."""
    o = np.stack([x, np.zeros_like(x), z], -1)
    d = np.tile([0.0, -1.0, 0.0], (len(x), 1))
    p = o + _cast(o, d)[:, None] * d
    return p + _sdf_normals(p) * np.asarray(lift, float).reshape(-1, 1) if np.any(lift) else p


def _orient_outward(mesh, first_face):
    """Turn an open island's faces to agree with the skin's outward normal."""
    pts = np.concatenate(mesh.points)
    quads = _as_quads(mesh.faces[first_face:])
    a, b, c = pts[quads[:, 0]], pts[quads[:, 1]], pts[quads[:, 2]]
    normals = np.cross(b - a, c - b)
    outward = _sdf_normals((a + b + c) / 3.0)
    if np.sum(normals * outward) < 0:
        mesh.faces[first_face:] = [tuple(reversed(f)) for f in mesh.faces[first_face:]]


def _brow_island(mesh, sign):
    """An eyebrow: a tapered band lying on the skin over one eye (sign +1 left, -1 right)."""
    bx = np.linspace(-0.019, 0.0185, 20)            # from the inner end outward, about the eye
    x = sign * (EYE_X + bx)
    centre = 0.0185 + 0.0045 * (1 - ((bx - 0.004) / 0.021) ** 2)
    thick = np.interp(bx, [-0.019, -0.013, 0.004, 0.0185], [0.0042, 0.0056, 0.0044, 0.0014])
    rows = []
    for frac, lift in ((-0.5, 0.0005), (0.0, 0.0011), (0.5, 0.0005)):
        rows.append(mesh.add_points(_front_surface(x, centre + frac * thick, lift), BROW))
    first = len(mesh.faces)
    for r in range(len(rows) - 1):
        for k in range(len(bx) - 1):
            mesh.add_face((rows[r][k], rows[r][k + 1], rows[r + 1][k + 1], rows[r + 1][k]), M_BROWS)
    _orient_outward(mesh, first)


def _hairline(theta):
    """Elevation (from the eye-level axis point) where the hair starts, around the head."""
    deg = np.degrees(np.abs(theta))
    return np.radians(np.interp(deg, [0, 12, 26, 40, 55, 75, 90, 104, 122, 150, 180],
                                [36, 37.5, 42, 38, 29, 22, 20, 12, -8, -26, -30]))


def _hair_island(mesh, sin_t, cos_t, theta, rows=30):
    """A cap of hair: a shell over the scalp, thin at the hairline, about 5 mm thick on top."""
    start = _hairline(theta)
    v = np.arange(rows) / rows
    el = start[None, :] + (0.5 * np.pi - start[None, :]) * (v ** 1.25)[:, None]
    o = np.tile([0.0, AXIS_Y, 0.0], el.shape + (1,))
    d = np.stack([np.cos(el) * sin_t, -np.cos(el) * cos_t, np.sin(el)], -1)
    p = o + _cast(o, d)[..., None] * d
    thickness = 0.0004 + 0.0048 * _smoothstep(0.0, 0.22, v)[:, None]
    p = p + _sdf_normals(p) * thickness[..., None]
    top_o = np.array([[0.0, AXIS_Y, 0.0]])
    top = top_o + _cast(top_o, np.array([[0.0, 0.0, 1.0]]))[:, None] * np.array([0.0, 0.0, 1.0])
    ids = mesh.add_points(p, HAIR).reshape(rows, -1)
    pole = mesh.add_points(top + [0.0, 0.0, 0.0052], HAIR)[0]
    first = len(mesh.faces)
    n = ids.shape[1]
    for r in range(rows - 1):
        for j in range(n):
            j1 = (j + 1) % n
            mesh.add_face((ids[r, j], ids[r + 1, j], ids[r + 1, j1], ids[r, j1]), M_HAIR)
    for j in range(n):
        mesh.add_face((ids[-1, j], pole, ids[-1, (j + 1) % n]), M_HAIR)
    _orient_outward(mesh, first)


# -- Blender -------------------------------------------------------------------------------------

def create_head(name="ExOmniHead"):
    """Add the procedural head to the current scene and return the object.

    One mesh object (real-world size, face toward -Y, eyes at z = 0) with smooth shading,
    simple materials (skin, lips, brows, lashes, mouth, teeth, tongue, eye white, iris, pupil;
    each also sets its viewport colour, so Workbench renders it) and a shape key per ARKit-52
    channel, named exactly as `arkit.ARKIT_52`, after the "Basis" key.
    """
    import bpy

    from . import compat

    rest, faces, materials, keys = _build()
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(rest.tolist(), [], faces)
    for mat in _materials():
        mesh.materials.append(mat)
    mesh.polygons.foreach_set("material_index", np.asarray(materials, np.int32))
    compat.shade_smooth(mesh)
    mesh.update()

    obj = bpy.data.objects.new(name, mesh)
    collection = bpy.context.collection or bpy.context.scene.collection
    collection.objects.link(obj)
    compat.add_shape_key(obj, "Basis")
    for key_name, positions in zip(ARKIT_52, keys):
        block = compat.add_shape_key(obj, key_name)
        block.data.foreach_set("co", positions.ravel())
        block.slider_min, block.slider_max = 0.0, 1.0
    mesh.shape_keys.name = f"{name} ARKit"
    obj["exomni_head"] = 1
    return obj


def _materials():
    import bpy

    from . import compat

    out = []
    for name, rgba, roughness in MATERIALS:
        mat = bpy.data.materials.get(name)
        if mat is None:
            mat = bpy.data.materials.new(name)
            mat.diffuse_color = rgba
            mat.roughness = roughness
            tree = compat.material_node_tree(mat)
            if tree is not None:
                bsdf = next((n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
                if bsdf is None:
                    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
                    output = next((n for n in tree.nodes if n.type == "OUTPUT_MATERIAL"), None) \
                        or tree.nodes.new("ShaderNodeOutputMaterial")
                    tree.links.new(bsdf.outputs[0], output.inputs[0])
                bsdf.inputs["Base Color"].default_value = rgba
                bsdf.inputs["Roughness"].default_value = roughness
        out.append(mat)
    return out
