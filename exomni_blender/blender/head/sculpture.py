"""The head's form: a smooth signed-distance sculpture the skin rays are cast onto, and small
geometry helpers (pure numpy)."""

from __future__ import annotations

import numpy as np

from .landmarks import EYE_X, EYE_Y, EYE_Z, LID_RADIUS, MOUTH_HALF_WIDTH, NECK_BOTTOM


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
