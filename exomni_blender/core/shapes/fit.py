"""Fitting one face onto another through landmarks: a similarity, then a thin-plate spline.

The warp maps the template's canonical space onto the character's; its local Jacobian carries
each shape's displacements over, so a character with wider eyes or a longer jaw gets lid and jaw
motions that close and open its own features.
"""

from __future__ import annotations

import numpy as np


def similarity(src, dst):
    """Scale s, rotation R, translation t minimising |s R src + t - dst| (Umeyama)."""
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var = np.mean(np.sum(a * a, axis=1))
    scale = float(np.sum(d * sign) / var)
    return scale, rot, md - scale * rot @ ms


class Warp:
    """Template space -> character space: similarity plus a regularised 3D thin-plate spline."""

    def __init__(self, src, dst, smoothing: float = 0.0):
        src, dst = np.asarray(src, float), np.asarray(dst, float)
        self.scale, self.rot, self.shift = similarity(src, dst)
        moved = self.linear(src)
        self.centres = moved
        n = len(src)
        k = self._kernel(moved, moved) + smoothing * self.scale * np.eye(n)
        p = np.c_[np.ones(n), moved]
        a = np.zeros((n + 4, n + 4))
        a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
        rhs = np.zeros((n + 4, 3))
        rhs[:n] = dst - moved
        sol = np.linalg.lstsq(a, rhs, rcond=None)[0]  # coincident landmarks (closed lips) are fine
        self.w, self.affine = sol[:n], sol[n:]

    @staticmethod
    def _kernel(a, b):
        return np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)  # r: the 3D biharmonic spline

    def linear(self, p):
        return self.scale * np.asarray(p, float) @ self.rot.T + self.shift

    def __call__(self, p):
        q = self.linear(p)
        out = q.copy()
        for s in range(0, len(q), 4096):
            part = q[s:s + 4096]
            out[s:s + 4096] += self._kernel(part, self.centres) @ self.w + np.c_[np.ones(len(part)), part] @ self.affine
        return out

    def jacobians(self, p, step: float, limit: float = 3.0):
        """Local linear maps [n, 3, 3] of the warp at points p (central differences), their
        stretch held within `limit` of the overall scale so that no shape explodes or folds."""
        p = np.asarray(p, float)
        jac = np.empty((len(p), 3, 3))
        for axis in range(3):
            off = np.zeros(3)
            off[axis] = step
            jac[:, :, axis] = (self(p + off) - self(p - off)) / (2 * step)
        u, s, vt = np.linalg.svd(jac)
        s = np.clip(s, self.scale / limit, self.scale * limit)
        fixed = u @ (s[:, :, None] * vt)
        flip = np.linalg.det(fixed) < 0  # an inverted map would turn a shape inside out
        fixed[flip] = self.scale * self.rot
        return fixed
