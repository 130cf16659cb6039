"""Carry the template's 52 displacement fields over to a character's own vertices.

1. Landmarks of both faces put them in one canonical frame; a similarity plus a thin-plate spline
   through the landmarks (`fit.Warp`) lays the template over the character.
2. Each character vertex takes the displacements of its nearest laid-over template vertices,
   never from the other side of the lips or of an eye's lids (a vertex of the upper lip must
   not open with the jaw), mapped through the warp's local Jacobian (so the lids close and the
   jaw opens by the character's own proportions), fading out away from the template's surface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arkit import ARKIT_52
from .fit import Warp
from .landmarks import NAMES, Landmarks
from .mesh import Mesh, nearest
from .template import (LID_LOWER_L, LID_LOWER_R, LID_UPPER_L, LID_UPPER_R, LIP_LOWER, LIP_UPPER, NONE,
                       OPPOSITE, Template)

NEIGHBOURS = 4
SMOOTHING_ITERATIONS = 4


@dataclass
class MadeShapes:
    deltas: np.ndarray                 # [52, n, 3] in the character's mesh coordinates
    labels: np.ndarray                 # [n] lip / lid side of each character vertex
    scale: float                       # character size / template size
    notes: list = field(default_factory=list)

    def named(self) -> dict:
        return {name: self.deltas[i] for i, name in enumerate(ARKIT_52)}


def character_labels(mesh: Mesh, skin, lm: Landmarks) -> np.ndarray:
    """Lip and lid sides on the character: from the lip slit's two edges along the surface when
    the lips are cut, from the lip line and the eye corners' line otherwise."""
    pc = lm.canonical(mesh.points)
    c = {k: lm.canonical(v) for k, v in lm.points.items()}
    ied = lm.eye_distance
    labels = np.full(len(pc), NONE)
    mouth_w = np.linalg.norm(c["mouthL"] - c["mouthR"])
    mouth_mid = 0.5 * (c["mouthL"] + c["mouthR"])
    zone = skin & (np.linalg.norm((pc - mouth_mid) * [1.0, 1.0, 1.3], axis=1) < 0.75 * mouth_w)
    # The lip line: halfway between the slit's two edges when the lips are cut, else through the
    # corners and the lip landmarks; above it is the upper lip, below it the jaw's side.
    if lm.mouth_loop:
        edge = np.concatenate(lm.mouth_loop)
        xs, zs = pc[edge, 0], pc[edge, 2]
        order = np.argsort(xs)
        knots = np.linspace(xs.min(), xs.max(), 9)
        line_z = [zs[np.abs(xs - k) <= np.abs(xs - k).min() + 0.05 * mouth_w].mean() for k in knots]
        line = np.interp(pc[:, 0], knots, line_z)
        del order
    else:
        line = np.interp(pc[:, 0], [c["mouthR"][0], mouth_mid[0], c["mouthL"][0]],
                         [c["mouthR"][2], 0.5 * (c["lipUpper"][2] + c["lipLower"][2]), c["mouthL"][2]])
    labels[zone] = np.where(pc[zone, 2] >= line[zone], LIP_UPPER, LIP_LOWER)
    for side, up_label, lo_label in (("L", LID_UPPER_L, LID_LOWER_L), ("R", LID_UPPER_R, LID_LOWER_R)):
        inner, outer = c[f"eyeInner{side}"], c[f"eyeOuter{side}"]
        centre = c[f"eye{side}"]
        zone = skin & (np.linalg.norm((pc - centre)[:, [0, 2]], axis=1) < 0.45 * ied) & (pc[:, 1] < centre[1] + 0.2 * ied)
        line = np.interp(pc[:, 0], sorted([inner[0], outer[0]]),
                         [inner[2], outer[2]] if inner[0] < outer[0] else [outer[2], inner[2]])
        labels[zone] = np.where(pc[zone, 2] >= line[zone], up_label, lo_label)
    return labels


def smooth_fields(mesh: Mesh, fields, skin, iterations: int = SMOOTHING_ITERATIONS, amount: float = 0.5):
    """Average each vertex's displacements with its neighbours' a few times: the nearest-vertex
    pick leaves small steps that show as stretched or folded faces. Cut edges (a lip slit, the
    eyelids) are not neighbours, so the two sides never mix."""
    offsets, nbr, _ = mesh.neighbours()
    count = np.diff(offsets)
    src = np.repeat(np.arange(len(count)), count)
    active = skin & (count > 0)
    out = fields.copy()
    for _ in range(iterations):
        acc = np.zeros_like(out)
        np.add.at(acc, (slice(None), src), out[:, nbr, :])
        mean = acc / np.maximum(count, 1)[None, :, None]
        out[:, active] = (1 - amount) * out[:, active] + amount * mean[:, active]
    return out


def transfer(template: Template, mesh: Mesh, skin, lm: Landmarks, smoothing: float = 0.02) -> MadeShapes:
    """The 52 displacement fields on the character's vertices (zero off the skin)."""
    skin = np.asarray(skin, bool)
    tl = template.landmarks
    src = tl.canonical(tl.array(NAMES))
    dst = lm.canonical(lm.array(NAMES))
    warp = Warp(src, dst, smoothing=smoothing * tl.eye_distance)
    t_idx = np.nonzero(template.skin)[0]
    t_canon = tl.canonical(template.mesh.points[t_idx])
    laid = warp(t_canon)
    jac = warp.jacobians(t_canon, step=0.02 * tl.eye_distance)
    # template displacements in canonical space, then through the warp's Jacobian
    d_canon = template.deltas[:, t_idx, :] @ tl.rotation.T                 # [52, m, 3]
    d_mapped = np.einsum("mij,kmj->kmi", jac, d_canon)                     # [52, m, 3]

    labels = character_labels(mesh, skin, lm)
    pc = lm.canonical(mesh.points)
    out = np.zeros((len(ARKIT_52), len(pc), 3))
    t_labels = template.labels[t_idx]
    ied = lm.eye_distance
    for lab in np.unique(labels[skin]):
        rows = np.nonzero(skin & (labels == lab))[0]
        allowed = np.nonzero(t_labels != OPPOSITE.get(int(lab), -1))[0]
        dist, nn = nearest(pc[rows], laid[allowed], k=NEIGHBOURS)
        nn = allowed[nn]
        w = 1.0 / np.maximum(dist, 1e-4 * ied) ** 2
        w /= w.sum(axis=1, keepdims=True)
        # away from the laid-over template (a body, a hat) the motion fades out
        fade = np.clip(1.0 - (dist[:, 0] - 0.08 * ied) / (0.25 * ied), 0.0, 1.0)
        moved = np.einsum("qk,sqkj->sqj", w, d_mapped[:, nn, :])
        out[:, rows, :] = moved * fade[None, :, None]
    out = smooth_fields(mesh, out, skin)
    out = out @ lm.rotation  # canonical -> mesh coordinates (rotation is orthonormal)
    return MadeShapes(out, labels, warp.scale)
