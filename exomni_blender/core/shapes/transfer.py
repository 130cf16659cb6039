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
from .mesh import Mesh, graph_distance, nearest
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
    the lips are cut, from the lips' front faces on either side of the lip line along the surface
    when they are closed, and from the eye corners' line for the lids."""
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
    if not lm.mouth_loop:
        front = np.interp(pc[:, 0], [c["mouthR"][0], mouth_mid[0], c["mouthL"][0]],
                          [c["mouthR"][1], 0.5 * (c["lipUpper"][1] + c["lipLower"][1]), c["mouthL"][1]])
        labels[zone] = _closed_lip_sides(mesh, zone, pc, line, front, lm.rotation, ied)[zone]
    for side, up_label, lo_label in (("L", LID_UPPER_L, LID_LOWER_L), ("R", LID_UPPER_R, LID_LOWER_R)):
        inner, outer = c[f"eyeInner{side}"], c[f"eyeOuter{side}"]
        centre = c[f"eye{side}"]
        zone = skin & (np.linalg.norm((pc - centre)[:, [0, 2]], axis=1) < 0.45 * ied) & (pc[:, 1] < centre[1] + 0.2 * ied)
        line = np.interp(pc[:, 0], sorted([inner[0], outer[0]]),
                         [inner[2], outer[2]] if inner[0] < outer[0] else [outer[2], inner[2]])
        labels[zone] = np.where(pc[zone, 2] >= line[zone], up_label, lo_label)
    return labels


CREASE_MARGIN = 0.01  # of the eye distance: lip vertices this near the lip line are not seeds
FACING_FRONT = 0.3    # a seed's normal points at least this much toward the front (-Y)
LIP_DEPTH = 0.1       # of the eye distance: deeper in the mouth the flat cut stays (a mouth bag)


def _closed_lip_sides(mesh: Mesh, zone, pc, line, front, rotation, ied) -> np.ndarray:
    """Upper or lower lip for each `zone` vertex of a closed mouth (no slit): the lips' front
    faces above and below the lip line (`line`: its height, `front`: its depth, per vertex) and
    not behind it are seeds, and every other lip vertex takes the side it is nearer along the
    surface. A flat cut at the crease's height gives the lower lip's inner face, which rises
    behind the upper lip, to the upper lip: the step between a still and a moving side then
    falls on the mouth's inside edges, and the smoothing, which crosses a closed crease, pulls
    the lower lip's motion into the upper lip's front (mouthClose squashed an edge 17x)."""
    ny = (mesh.vertex_normals() @ rotation.T)[:, 1]
    seed = zone & (ny < -FACING_FRONT) & (np.abs(pc[:, 2] - line) > CREASE_MARGIN * ied) \
        & (pc[:, 1] < front + CREASE_MARGIN * ied)
    upper = np.nonzero(seed & (pc[:, 2] > line))[0]
    lower = np.nonzero(seed & (pc[:, 2] < line))[0]
    flat = np.where(pc[:, 2] >= line, LIP_UPPER, LIP_LOWER)
    if not len(upper) or not len(lower):
        return flat
    _, side = graph_distance(mesh.neighbours(), {LIP_UPPER: upper, LIP_LOWER: lower}, np.inf)
    near = (side >= 0) & (pc[:, 1] < front + LIP_DEPTH * ied)
    return np.where(near, side, flat)


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


LID_SHAPES = ("eyeBlink", "eyeWide", "eyeSquint")
LID_GAIN_LIMITS = (0.5, 5.0)


def _lid_peak(deltas, canon_points, centre, radius) -> float:
    """The farthest a vertex near one eye moves in a shape (a blink: the upper lid's margin)."""
    near = np.linalg.norm(canon_points - centre, axis=1) < radius
    return float(np.linalg.norm(deltas[near], axis=1).max(initial=0.0))


def scale_lids(template: Template, out, pc, skin, lm: Landmarks) -> list:
    """Lid shapes sized by the character's own eye opening (the distance between its lid lines at
    the eye's middle): a blink brings the upper lid down at least that far, so it closes this eye
    whatever the warp and the smoothing did to the lids' travel. `out`: canonical fields, changed
    in place."""
    tl = template.landmarks
    t_idx = np.nonzero(template.skin)[0]
    t_canon = tl.canonical(template.mesh.points[t_idx])
    ied = lm.eye_distance
    notes = []
    for side, s in (("Left", "L"), ("Right", "R")):
        blink = ARKIT_52.index(f"eyeBlink{side}")
        t_open = np.linalg.norm(tl.points[f"eyeUpper{s}"] - tl.points[f"eyeLower{s}"])
        t_peak = _lid_peak(template.deltas[blink][t_idx], t_canon, tl.canonical(tl.points[f"eye{s}"]),
                           0.5 * tl.eye_distance)
        c_open = np.linalg.norm(lm.points[f"eyeUpper{s}"] - lm.points[f"eyeLower{s}"])
        centre = lm.canonical(lm.points[f"eye{s}"])
        now = _lid_peak(out[blink][skin], pc[skin], centre, 0.5 * ied)
        if now <= 0 or t_open <= 0:
            continue
        want = c_open * max(1.0, t_peak / t_open)
        gain = float(np.clip(want / now, *LID_GAIN_LIMITS))
        # full gain on the lids, none beyond the eye's surroundings (cheeks, brows keep theirs)
        d = np.linalg.norm(pc - centre, axis=1)
        w = 1.0 + (gain - 1.0) * np.clip(1.0 - (d - 0.3 * ied) / (0.3 * ied), 0.0, 1.0)
        for name in LID_SHAPES:
            out[ARKIT_52.index(f"{name}{side}")] *= w[:, None]
        notes.append(f"{side.lower()} lid shapes x{gain:.2f} for this eye's opening")
    return notes


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
    notes = scale_lids(template, out, pc, skin, lm)
    out = out @ lm.rotation  # canonical -> mesh coordinates (rotation is orthonormal)
    return MadeShapes(out, labels, warp.scale, notes)
