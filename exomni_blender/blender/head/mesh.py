"""The mesh being built, and its islands: eyeballs, teeth, tongue, brows, hair (pure numpy)."""

from __future__ import annotations

import numpy as np

from .landmarks import (
    AXIS_Y, BROW, EYE_X, HAIR, LIP_ROWS_LOWER, LIP_ROWS_UPPER, M_BROWS, M_HAIR, M_LASHES, M_LIPS,
    M_TEETH, N_COLUMNS)
from .sculpture import _cast, _sdf_normals, _smoothstep


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
