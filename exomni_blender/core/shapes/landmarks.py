"""Face landmarks found on a head's geometry, in a canonical frame (X the subject's left, -Y the
way the face looks, Z up), and the frame itself.

Eyes come from eyeballs (separate eye meshes or sphere-like islands: their centre and radius),
the eye opening from rays cast out of the eyeball against the lids; the mouth from the lip slit
(a boundary loop of the skin) when the lips are cut; nose tip, chin and brows from the surface
once eyes and mouth are known. What the geometry cannot give is estimated from proportions and
listed in `Landmarks.estimated`, so the animator knows which ones to check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ExOmniError
from .mesh import Mesh

NAMES = ("eyeL", "eyeR", "eyeUpperL", "eyeLowerL", "eyeInnerL", "eyeOuterL",
         "eyeUpperR", "eyeLowerR", "eyeInnerR", "eyeOuterR",
         "mouthL", "mouthR", "lipUpper", "lipLower", "noseTip", "chin", "browL", "browR")


class LandmarkError(ExOmniError, ValueError):
    """The face cannot be found on this mesh; the message says which landmark to place by hand."""


@dataclass
class Eyeball:
    centre: np.ndarray
    radius: float


@dataclass
class Landmarks:
    """Landmark positions in the head's own (mesh) coordinates, and the canonical frame."""

    points: dict                                   # name -> [3] in mesh coordinates
    rotation: np.ndarray                           # [3, 3]: canonical = rotation @ mesh point
    estimated: list = field(default_factory=list)  # names guessed from proportions, not found
    mouth_loop: tuple = ()                         # (upper chain ids, lower chain ids) of the lip slit

    def array(self, names=NAMES) -> np.ndarray:
        return np.array([self.points[n] for n in names], float)

    def canonical(self, p):
        return np.asarray(p, float) @ self.rotation.T

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.points["eyeL"] - self.points["eyeR"]))


def fit_sphere(points) -> Eyeball:
    """Least-squares sphere through points (an eyeball, or the front cap of one)."""
    p = np.asarray(points, float)
    a = np.c_[2 * p, np.ones(len(p))]
    b = np.einsum("ij,ij->i", p, p)
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    c = sol[:3]
    r = float(np.sqrt(max(sol[3] + c @ c, 1e-12)))
    return Eyeball(c, r)


def rotation_from(front, up) -> np.ndarray:
    """Rows: the subject's left, back (-front), up; an orthonormal frame."""
    f = np.asarray(front, float) / np.linalg.norm(front)
    u = np.asarray(up, float) - f * (f @ up)
    u /= np.linalg.norm(u)
    left = np.cross(u, f)
    return np.stack([left, -f, u])


def _triangles(mesh: Mesh, keep=None) -> np.ndarray:
    tris = []
    for k in range(3, int(mesh.sizes.max(initial=3)) + 1):
        sel = np.nonzero(mesh.sizes == k)[0]
        if not len(sel):
            continue
        v = mesh.loops[mesh.starts[sel][:, None] + np.arange(k)[None, :]]
        for i in range(1, k - 1):
            tris.append(v[:, [0, i, i + 1]])
    tris = np.concatenate(tris) if tris else np.zeros((0, 3), int)
    if keep is not None:
        tris = tris[np.all(keep[tris], axis=1)]
    return tris


def _ray_hits(origin, dirs, a, b, c, t_max, t_min=1e-9):
    """Distance along each ray to its nearest triangle (inf when none within t_max)."""
    e1, e2 = b - a, c - a
    best = np.full(len(dirs), np.inf)
    for s in range(0, len(a), 512):
        E1, E2, A = e1[s:s + 512], e2[s:s + 512], a[s:s + 512]
        pvec = np.cross(dirs[:, None, :], E2[None])
        det = np.einsum("tj,rtj->rt", E1, pvec)
        ok = np.abs(det) > 1e-14
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tvec = origin - A
        u = np.einsum("tj,rtj->rt", tvec, pvec) * inv
        qvec = np.cross(tvec, E1)
        v = np.einsum("rj,tj->rt", dirs, qvec) * inv
        t = np.einsum("tj,tj->t", E2, qvec)[None, :] * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > t_min) & (t < t_max)
        best = np.minimum(best, np.where(hit, t, np.inf).min(axis=1))
    return best


def eye_opening(mesh: Mesh, skin, eye: Eyeball, rot: np.ndarray, step_deg: float = 2.0) -> dict:
    """Upper and lower lid middles and the two corners of one eye (mesh coordinates), from rays cast
    out of the eyeball centre: the opening is where no lid is hit close to the eyeball."""
    left, back, up = rot
    front = -back
    near = skin & (np.linalg.norm(mesh.points - eye.centre, axis=1) < 3.0 * eye.radius)
    tris = _triangles(mesh, near)
    if not len(tris):
        raise LandmarkError("No skin around an eyeball: place the eye landmarks by hand.")
    a, b, c = (mesh.points[tris[:, i]] for i in range(3))
    az = np.radians(np.arange(-80, 80.1, step_deg))
    el = np.radians(np.arange(-70, 70.1, step_deg))
    A, E = np.meshgrid(az, el, indexing="ij")
    dirs = (np.cos(E)[..., None] * (np.sin(A)[..., None] * left + np.cos(A)[..., None] * front)
            + np.sin(E)[..., None] * up).reshape(-1, 3)
    # hits inside the eyeball (a socket behind it) are not lids
    t = _ray_hits(eye.centre, dirs, a, b, c, 2.5 * eye.radius, 0.85 * eye.radius).reshape(A.shape)
    open_ = ~np.isfinite(t)
    i0, j0 = len(az) // 2, len(el) // 2
    if not open_[i0, j0]:
        # the opening may not be straight ahead: take the open direction nearest to it
        cand = np.argwhere(open_ & (np.abs(A) < np.radians(40)) & (np.abs(E) < np.radians(30)))
        if not len(cand):
            raise LandmarkError("The eyelids cover the whole eyeball (a closed eye?): place the eye "
                                "landmarks by hand.")
        i0, j0 = cand[np.argmin(np.abs(cand[:, 0] - i0) + np.abs(cand[:, 1] - j0))]
    # the opening as the open cells connected to (i0, j0)
    region = np.zeros_like(open_)
    stack = [(i0, j0)]
    while stack:
        i, j = stack.pop()
        if region[i, j] or not open_[i, j]:
            continue
        region[i, j] = True
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ii, jj = i + di, j + dj
            if 0 <= ii < len(az) and 0 <= jj < len(el):
                stack.append((ii, jj))
    cols = np.nonzero(region.any(axis=1))[0]
    mid = int(round(np.mean(np.nonzero(region)[0])))

    def hit_point(i, j):
        if not np.isfinite(t[i, j]):
            return eye.centre + dirs.reshape(A.shape + (3,))[i, j] * eye.radius * 1.05
        return eye.centre + dirs.reshape(A.shape + (3,))[i, j] * t[i, j]

    rows = np.nonzero(region[mid])[0]
    top, bottom = rows.max(), rows.min()
    upper = hit_point(mid, min(top + 1, len(el) - 1))
    lower = hit_point(mid, max(bottom - 1, 0))
    row_mid = int(round(0.5 * (top + bottom)))
    band = np.nonzero(region[:, max(bottom, row_mid - 1):row_mid + 2].any(axis=1))[0]
    lo_i, hi_i = (band.min(), band.max()) if len(band) else (cols.min(), cols.max())
    toward_left = hit_point(min(hi_i + 1, len(az) - 1), row_mid)
    toward_right = hit_point(max(lo_i - 1, 0), row_mid)
    return {"upper": upper, "lower": lower, "toward_left": toward_left, "toward_right": toward_right}


def mouth_slit(mesh: Mesh, rot, eye_mid, eye_distance):
    """The lip slit among the skin's boundary loops: below the eyes, wide, flat and frontmost.
    Returns (loop ids, left corner id, right corner id) or None."""
    best = None
    for loop in mesh.boundary_loops():
        q = mesh.points[loop] @ rot.T
        centre = q.mean(0)
        e = eye_mid @ rot.T
        width = np.ptp(q[:, 0])
        height = np.ptp(q[:, 2])
        below = e[2] - centre[2]
        if not (0.5 * eye_distance < below < 2.5 * eye_distance):
            continue
        if not (0.35 * eye_distance < width < 2.0 * eye_distance) or height > 0.6 * width:
            continue
        if abs(centre[0] - e[0]) > 0.3 * eye_distance:
            continue
        if best is None or centre[1] < best[0]:
            best = (centre[1], loop, q)
    if best is None:
        return None
    _, loop, q = best
    return loop, int(loop[np.argmax(q[:, 0])]), int(loop[np.argmin(q[:, 0])])


def _chains(loop, a, b):
    """Split a closed loop at vertices a and b into its two chains (each including a and b)."""
    loop = list(loop)
    ia, ib = loop.index(a), loop.index(b)
    if ia > ib:
        ia, ib = ib, ia
    one = loop[ia:ib + 1]
    two = loop[ib:] + loop[:ia + 1]
    return np.array(one), np.array(two)


def _upper_chain_first(mesh: Mesh, skin, pc, loop, one, two, eye_c, ied):
    """The slit's two chains as (upper lip's edge, lower lip's edge). Not by height: where the lips
    meet, the lower lip's inner edge may lie above the upper lip's (Ready Player Me heads); the
    upper lip's edge is the chain nearer, along the surface with the slit cut, to the skin above
    the lips, the lower lip's the one nearer the skin under them."""
    from .mesh import graph_distance

    centre = pc[loop].mean(0)
    front = pc[loop, 1].min()
    band = np.asarray(skin, bool) & (np.abs(pc[:, 0] - centre[0]) < 0.12 * ied) & (pc[:, 1] < front + 0.12 * ied)
    above = np.nonzero(band & (pc[:, 2] > centre[2] + 0.18 * ied) & (pc[:, 2] < centre[2] + 0.35 * ied))[0]
    below = np.nonzero(band & (pc[:, 2] < centre[2] - 0.25 * ied) & (pc[:, 2] > centre[2] - 0.45 * ied))[0]
    by_height = (one, two) if pc[one, 2].mean() >= pc[two, 2].mean() else (two, one)
    if not len(above) or not len(below):
        return by_height
    apart = np.nonzero(np.isin(mesh.weld, mesh.weld[np.asarray(loop)]))[0]
    nbrs = mesh.neighbours(keep_apart=apart)
    d_up, _ = graph_distance(nbrs, {0: above}, np.inf)
    d_lo, _ = graph_distance(nbrs, {0: below}, np.inf)
    inner = lambda c: c[1:-1] if len(c) > 2 else c  # the corners belong to both
    lean = lambda c: float(np.mean(d_up[inner(c)] - d_lo[inner(c)]))
    if not np.isfinite(lean(one)) or not np.isfinite(lean(two)):
        return by_height
    return (one, two) if lean(one) < lean(two) else (two, one)


def _frontmost(points_c, mask):
    idx = np.nonzero(mask)[0]
    if not len(idx):
        return None
    return idx[np.argmin(points_c[idx, 1])]


def gaze_front(mesh: Mesh, skin, eyeballs, step_deg: float = 12.0):
    """The way the face looks, from where rays out of the eyeballs escape past the skin (the eye
    openings), or None when both eyes are closed. Needs no lip slit and no upright head."""
    tris = _triangles(mesh, np.asarray(skin, bool))
    if not len(tris):
        return None
    a, b, c = (mesh.points[tris[:, i]] for i in range(3))
    lon = np.radians(np.arange(0, 360, step_deg))
    lat = np.radians(np.arange(-90 + step_deg / 2, 90, step_deg))
    L, B = np.meshgrid(lon, lat, indexing="ij")
    dirs = np.stack([np.cos(B) * np.cos(L), np.cos(B) * np.sin(L), np.sin(B)], -1).reshape(-1, 3)
    weight = np.cos(B).ravel()  # equal-angle cells near the poles are small
    total = np.zeros(3)
    size = float(np.ptp(mesh.points, axis=0).max())
    for eye in eyeballs:
        t = _ray_hits(eye.centre, dirs, a, b, c, 4.0 * size, 0.85 * eye.radius).reshape(L.shape)
        opening = _opening_cell(t)
        if opening is not None:
            w = weight.reshape(L.shape)[opening]
            total += (dirs.reshape(L.shape + (3,))[opening] * w[:, None]).sum(0) / w.sum()
    n = np.linalg.norm(total)
    return total / n if n > 1e-9 else None


def _opening_cell(t):
    """Of the groups of escaping directions on a (longitude, latitude) grid, the one rimmed by the
    nearest skin: the eye's opening, not a hole far away (a neck cut, an open skull)."""
    free = ~np.isfinite(t)
    group = np.full(t.shape, -1)
    best, best_rim = None, np.inf
    n_lon, n_lat = t.shape
    for start in zip(*np.nonzero(free)):
        if group[start] >= 0:
            continue
        cells, rim, stack = [], np.inf, [start]
        group[start] = len(cells)
        while stack:
            i, j = stack.pop()
            cells.append((i, j))
            for ii, jj in (((i + 1) % n_lon, j), ((i - 1) % n_lon, j), (i, j + 1), (i, j - 1)):
                if not 0 <= jj < n_lat:
                    continue
                if free[ii, jj]:
                    if group[ii, jj] < 0:
                        group[ii, jj] = 0
                        stack.append((ii, jj))
                else:
                    rim = min(rim, t[ii, jj])
        if rim < best_rim:
            best, best_rim = cells, rim
    if best is None:
        return None
    mask = np.zeros(t.shape, bool)
    mask[tuple(np.array(best).T)] = True
    return mask


def _profile_extrema(front, min_prominence):
    """Alternating peaks (+1) and valleys (-1) of a profile, small wiggles merged away:
    [(index, kind)], top to bottom."""
    d = np.sign(np.diff(front))
    ext = [(0, -1 if d[0] > 0 else 1)]
    for i in range(1, len(front) - 1):
        if d[i - 1] > 0 >= d[i]:
            ext.append((i, 1))
        elif d[i - 1] < 0 <= d[i]:
            ext.append((i, -1))
    ext.append((len(front) - 1, 1 if d[-1] > 0 else -1))
    ext = [e for k, e in enumerate(ext) if k == 0 or e[1] != ext[k - 1][1]]
    while len(ext) > 2:
        gaps = [abs(front[ext[k + 1][0]] - front[ext[k][0]]) for k in range(len(ext) - 1)]
        k = int(np.argmin(gaps))
        if gaps[k] >= min_prominence:
            break
        if k == 0:
            del ext[1]
        elif k == len(ext) - 2:
            del ext[k]
        else:
            del ext[k:k + 2]
    return ext


def _column_profile(pc, tris, x, z_top, z_bottom, step):
    """The face's depth profile down the vertical line at x (canonical): how far forward (-Y) the
    surface is where a ray from the front first meets it, every `step` from z_top down. Rays, not
    vertices: a sparse midline or the mouth's inside behind the lips would fool a vertex count."""
    zs = np.arange(z_top, z_bottom, -step)
    a, b, c = pc[tris[:, 0]], pc[tris[:, 1]], pc[tris[:, 2]]
    near = (np.minimum(np.minimum(a[:, 0], b[:, 0]), c[:, 0]) <= x) & (np.maximum(np.maximum(a[:, 0], b[:, 0]), c[:, 0]) >= x)
    a, b, c = a[near], b[near], c[near]
    if not len(a):
        return zs, None
    # barycentric coordinates of (x, z) in each triangle's XZ shadow
    d = (b[:, 0] - a[:, 0]) * (c[:, 2] - a[:, 2]) - (c[:, 0] - a[:, 0]) * (b[:, 2] - a[:, 2])
    d = np.where(np.abs(d) > 1e-18, d, np.nan)
    px, pz = x - a[:, 0], zs[:, None] - a[:, 2]
    u = (px * (c[:, 2] - a[:, 2]) - pz * (c[:, 0] - a[:, 0])) / d
    v = (pz * (b[:, 0] - a[:, 0]) - px * (b[:, 2] - a[:, 2])) / d
    inside = (u >= 0) & (v >= 0) & (u + v <= 1)
    y = a[:, 1] + u * (b[:, 1] - a[:, 1]) + v * (c[:, 1] - a[:, 1])
    front = np.where(inside, -y, -np.inf).max(axis=1)
    ok = np.isfinite(front)
    if ok.sum() < 4:
        return zs, None
    return zs, np.interp(np.arange(len(zs)), np.nonzero(ok)[0], front[ok])


def mouth_crease(mesh: Mesh, skin, rot, eye_mid, eye_distance):
    """The lip line of a closed mouth (the lips' crease, no slit): down the face's midline profile
    the nose tip, the groove under it, the upper lip, then the crease; followed sideways while it
    stays a crease, its ends are the mouth's corners. Returns mouthL, mouthR, lipUpper, lipLower
    (mesh coordinates) or None."""
    pc = mesh.points @ rot.T
    e = eye_mid @ rot.T
    ied = eye_distance
    step, prominence = 0.02 * ied, 0.008 * ied
    tris = _triangles(mesh, np.asarray(skin, bool))
    zs, front = _column_profile(pc, tris, e[0], e[2] - 0.25 * ied, e[2] - 1.9 * ied, step)
    if front is None:
        return None
    ext = _profile_extrema(front, prominence)
    peaks = [k for k, (i, kind) in enumerate(ext) if kind == 1 and zs[i] > e[2] - 1.0 * ied]
    if not peaks:
        return None
    nose = max(peaks, key=lambda k: front[ext[k][0]])
    after = ext[nose + 1:]
    # groove, upper lip, crease, lower lip
    if len(after) < 4 or [kind for _, kind in after[:4]] != [-1, 1, -1, 1]:
        return None
    crease_z = zs[after[2][0]]
    if not (e[2] - 1.6 * ied < crease_z < e[2] - 0.7 * ied):
        return None

    def crease_near(x, z0, window):
        zc, f = _column_profile(pc, tris, x, z0 + window, z0 - window, step)
        if f is None:
            return None
        valleys = [i for i, kind in _profile_extrema(f, prominence) if kind == -1 and 0 < i < len(f) - 1]
        if not valleys:
            return None
        i = min(valleys, key=lambda i: abs(zc[i] - z0))
        return zc[i] if abs(zc[i] - z0) < 0.5 * window else None

    corners = []
    for sign in (1.0, -1.0):
        z, x_end = crease_z, None
        for k in range(1, 30):
            x = e[0] + sign * k * 0.03 * ied
            found = crease_near(x, z, 0.15 * ied)
            if found is None:
                break
            z, x_end = found, x
        if x_end is None or abs(x_end - e[0]) < 0.15 * ied:
            return None
        corners.append((x_end, z))

    def surface(x, z, below):
        band = skin & (np.abs(pc[:, 0] - x) < 0.03 * ied) & (np.abs(pc[:, 2] - z) < 0.04 * ied)
        if below is not None:
            band &= (pc[:, 2] <= z) if below else (pc[:, 2] >= z)
        i = _frontmost(pc, band)
        return None if i is None else mesh.points[i]

    out = {"mouthL": surface(*corners[0], None), "mouthR": surface(*corners[1], None),
           "lipUpper": surface(e[0], crease_z, False), "lipLower": surface(e[0], crease_z, True)}
    return None if any(v is None for v in out.values()) else out


def detect(mesh: Mesh, skin, eyeballs, rotation=None, mouth=None, overrides=None) -> Landmarks:
    """Landmarks of a head. `eyeballs`: two Eyeball (either order); `rotation`: the canonical
    frame when known (otherwise found from the eyes and the mouth); `mouth`: optional dict with
    mouthL, mouthR, lipUpper, lipLower (mesh coordinates) when the caller knows them;
    `overrides`: landmark name -> position, placed by the animator, which win over detection."""
    overrides = {k: np.asarray(v, float) for k, v in (overrides or {}).items()}
    skin = np.asarray(skin, bool)
    pts = mesh.points
    if len(eyeballs) != 2:
        raise LandmarkError(f"Found {len(eyeballs)} eyeballs, need 2: give the head its eye meshes or "
                            "place the eyeL and eyeR landmarks by hand.")
    e0, e1 = (Eyeball(overrides.get(n, e.centre), e.radius) for n, e in zip(("eyeL", "eyeR"), eyeballs))
    eye_mid = 0.5 * (e0.centre + e1.centre)
    ied = float(np.linalg.norm(e0.centre - e1.centre))
    estimated = []
    mouth_names = ("mouthL", "mouthR", "lipUpper", "lipLower")
    if rotation is None:
        lateral = e0.centre - e1.centre
        lateral /= np.linalg.norm(lateral)
        # front: where the eyes look out of the skin; failing that, from the head's middle to the eyes
        front = gaze_front(mesh, skin, (e0, e1))
        if front is None:
            front = eye_mid - pts[skin].mean(0)
        front = front - lateral * (front @ lateral)
        front /= np.linalg.norm(front)
        up = np.cross(front, lateral)  # the sign is settled below
        if "mouthL" in overrides and "mouthR" in overrides:
            # the animator's mouth corners say where down is
            if (eye_mid - 0.5 * (overrides["mouthL"] + overrides["mouthR"])) @ up < 0:
                up = -up
        elif mouth_slit(mesh, rotation_from(front, up), eye_mid, ied) is None:
            if mouth_slit(mesh, rotation_from(front, -up), eye_mid, ied) is not None:
                up = -up
            else:
                # no lip slit: the nose, the frontmost point of the face's middle near the eyes,
                # is below them
                rel = pts - eye_mid
                band = skin & (np.abs(rel @ lateral) < 0.15 * ied) & (np.linalg.norm(rel, axis=1) < 1.3 * ied)
                if not band.any():
                    raise LandmarkError("Cannot tell which way is up on this head: place the mouthL and "
                                        "mouthR landmarks by hand.")
                tip = np.nonzero(band)[0][np.argmax(rel[band] @ front)]
                if rel[tip] @ up > 0:
                    up = -up
        rotation = rotation_from(front, up)
    rot = rotation
    if (e0.centre - e1.centre) @ rot[0] < 0:
        e0, e1 = e1, e0
    pc = pts @ rot.T
    found = {"eyeL": e0.centre, "eyeR": e1.centre}
    eye_c = eye_mid @ rot.T
    loops = ()
    slit = None if mouth or all(k in overrides for k in mouth_names) else mouth_slit(mesh, rot, eye_mid, ied)
    if mouth:
        found.update({k: np.asarray(v, float) for k, v in mouth.items()})
    elif slit is not None:
        loop, cl, cr = slit
        one, two = _upper_chain_first(mesh, skin, pc, loop, *_chains(loop, cl, cr), eye_c, ied)
        loops = (one, two)
        found["mouthL"], found["mouthR"] = pts[cl], pts[cr]
        for name, chain in (("lipUpper", one), ("lipLower", two)):
            found[name] = pts[chain[np.argmin(np.abs(pc[chain, 0] - eye_c[0]))]]
    elif not all(k in overrides for k in mouth_names):
        crease = mouth_crease(mesh, skin, rot, eye_mid, ied)
        if crease is not None:
            found.update(crease)
        else:
            # neither a slit nor a crease: the mouth from the face's usual proportions, to be checked
            for name, (dx, dz) in {"mouthL": (0.38, -1.15), "mouthR": (-0.38, -1.15),
                                   "lipUpper": (0.0, -1.12), "lipLower": (0.0, -1.18)}.items():
                if name in overrides:
                    continue
                band = skin & (np.abs(pc[:, 0] - (eye_c[0] + dx * ied)) < 0.06 * ied) \
                    & (np.abs(pc[:, 2] - (eye_c[2] + dz * ied)) < 0.08 * ied)
                i = _frontmost(pc, band)
                if i is None:
                    raise LandmarkError(f"Cannot find the mouth on this head: place the {name} landmark by hand.")
                found[name] = pts[i]
                estimated.append(name)
    for k in ("mouthL", "mouthR", "lipUpper", "lipLower"):
        if k in overrides:
            found[k] = overrides[k]
    # The frame from the features themselves (the same rule on every head): across the eyes,
    # up from the mouth's corners to the eyes.
    lateral = found["eyeL"] - found["eyeR"]
    lateral /= np.linalg.norm(lateral)
    up = eye_mid - 0.5 * (found["mouthL"] + found["mouthR"])
    up -= lateral * (up @ lateral)
    up /= np.linalg.norm(up)
    rot = rotation_from(np.cross(lateral, up), up)
    pc = pts @ rot.T
    eye_c = eye_mid @ rot.T
    for eye, side in ((e0, "L"), (e1, "R")):
        o = eye_opening(mesh, skin, eye, rot)
        inner, outer = (o["toward_right"], o["toward_left"]) if side == "L" else (o["toward_left"], o["toward_right"])
        found.update({f"eyeUpper{side}": o["upper"], f"eyeLower{side}": o["lower"],
                      f"eyeInner{side}": inner, f"eyeOuter{side}": outer})
    for k, v in overrides.items():
        found[k] = v
    mouth_c = 0.5 * (found["mouthL"] + found["mouthR"]) @ rot.T
    drop = eye_c[2] - mouth_c[2]
    if drop <= 0:
        raise LandmarkError("The mouth landmarks are not below the eyes: check the mouth and eye landmarks.")
    mid_band = skin & (np.abs(pc[:, 0] - eye_c[0]) < 0.2 * ied)
    nose = _frontmost(pc, mid_band & (pc[:, 2] < eye_c[2] - 0.15 * drop) & (pc[:, 2] > mouth_c[2] + 0.2 * drop))
    chin = _frontmost(pc, mid_band & (pc[:, 2] < mouth_c[2] - 0.35 * drop) & (pc[:, 2] > mouth_c[2] - 1.0 * drop))
    for name, i in (("noseTip", nose), ("chin", chin)):
        if name not in found:
            if i is None:
                raise LandmarkError(f"Cannot find the {name} on this head: place it by hand.")
            found[name] = pts[i]
    for side, eye in (("L", found["eyeL"]), ("R", found["eyeR"])):
        if f"brow{side}" in found:
            continue
        ec = eye @ rot.T
        top = found[f"eyeUpper{side}"] @ rot.T
        band = skin & (np.abs(pc[:, 0] - ec[0]) < 0.25 * ied) & (pc[:, 2] > top[2] + 0.08 * drop) \
            & (pc[:, 2] < ec[2] + 0.55 * drop)
        i = _frontmost(pc, band)
        if i is None:
            raise LandmarkError(f"Cannot find the brow{side} on this head: place it by hand.")
        found[f"brow{side}"] = pts[i]
    missing = [n for n in NAMES if n not in found]
    if missing:
        raise LandmarkError(f"Landmarks not found: {', '.join(missing)}; place them by hand.")
    return Landmarks({n: np.asarray(found[n], float) for n in NAMES}, rot, estimated, loops)
