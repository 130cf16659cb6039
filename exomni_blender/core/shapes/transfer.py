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
# Shapes the procedural template makes too small on real faces, and by how much: the geometric mean
# of artist size / made size over three artists' heads of different families (MakeHuman, Ready
# Player Me, ICT-FaceKit; `exomni bench shapes`), for the shapes all three found small. The
# template's head has thin lips and flat cheeks; these carry its motions to a real face's size.
# mouthUpperUp and mouthLeft/Right stay below that mean (2.7, 1.75): more stretched the ICT face's
# lip-corner edges past the self-check's 6x; cheekPuff too (5.4): its region sits low on the cheek,
# and more creased the jaw line on the Ready Player Me head.
SIZE_GAINS = {"mouthUpperUpLeft": 2.0, "mouthUpperUpRight": 2.0, "mouthLowerDownLeft": 2.0,
              "mouthLowerDownRight": 2.0, "mouthSmileLeft": 1.7, "mouthSmileRight": 1.7, "mouthLeft": 1.3,
              "mouthRight": 1.3, "cheekPuff": 3.0, "mouthRollUpper": 2.0, "eyeWideLeft": 1.7,
              "eyeWideRight": 1.7, "browOuterUpLeft": 1.4, "browOuterUpRight": 1.4}


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
    if lm.mouth_loop:
        labels[zone] = _slit_lip_sides(mesh, zone, lm.mouth_loop, labels)[zone]
    else:
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


def _slit_lip_sides(mesh: Mesh, zone, mouth_loop, flat) -> np.ndarray:
    """Upper or lower lip for each `zone` vertex of a cut mouth: the side of the slit whose edge is
    nearer along the surface, the slit's edges kept apart even where they touch or share
    positions. A flat cut by height gives a lower lip whose inside rises behind the upper lip's
    edge (lips that meet along the slit, as Ready Player Me heads' do) to the upper lip, which then
    holds the mouth shut when the jaw opens."""
    upper, lower = (np.asarray(c) for c in mouth_loop)
    corners = np.intersect1d(upper, lower)
    upper, lower = np.setdiff1d(upper, corners), np.setdiff1d(lower, corners)
    if not len(upper) or not len(lower):
        return flat
    # A lip's edge may be stored twice (the mouth's inside a separate piece stitched on at the
    # slit): its twins are the same lip. Only where the two edges share positions (lips that
    # touch) are the twins kept apart.
    tw_up = np.nonzero(np.isin(mesh.weld, mesh.weld[upper]))[0]
    tw_lo = np.nonzero(np.isin(mesh.weld, mesh.weld[lower]))[0]
    both = np.intersect1d(tw_up, tw_lo)
    tw_up, tw_lo = np.setdiff1d(tw_up, both), np.setdiff1d(tw_lo, both)
    apart = np.concatenate([both, np.nonzero(np.isin(mesh.weld, mesh.weld[corners]))[0]])
    _, side = graph_distance(mesh.neighbours(keep_apart=apart), {LIP_UPPER: tw_up, LIP_LOWER: tw_lo}, np.inf)
    return np.where(zone & (side >= 0), side, flat)


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


def smooth_fields(mesh: Mesh, fields, skin, iterations: int = SMOOTHING_ITERATIONS, amount: float = 0.5,
                  labels=None):
    """Average each vertex's displacements with its neighbours' a few times: the nearest-vertex
    pick leaves small steps that show as stretched or folded faces. Cut edges (a lip slit, the
    eyelids) are not neighbours, and with `labels` neither are the two sides of the lips or lids
    where they touch (a seam stored twice), so the two sides never mix."""
    offsets, nbr, _ = mesh.neighbours()
    count = np.diff(offsets)
    src = np.repeat(np.arange(len(count)), count)
    if labels is not None:
        opposite = np.array([OPPOSITE.get(int(x), -2) for x in range(max(OPPOSITE) + 1)] + [-2])
        lab = np.asarray(labels)
        keep = opposite[np.clip(lab[src], 0, len(opposite) - 1)] != lab[nbr]
        src, nbr = src[keep], nbr[keep]
        count = np.bincount(src, minlength=len(count))
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


JAW_LIP_OPENING = 0.32    # of the eye distance: how far jawOpen=1 drops the lower lip's middle (the
                          # artists' heads drop it 0.3 to 0.5)
FUNNEL_OPENING = 0.06     # of the eye distance: how far mouthFunnel=1 parts each lip's edge
FUNNEL_LEAST = 0.6        # at least this share of it is added: lips the carried field parts may still
                          # touch in front (a closed mouth's crease, lips that overlap)
LIP_EASING = 10          # smoothing passes over the lips' remade motions
LIP_BAND = 0.12           # of the eye distance: the opening motions fade over this from the lip line


def jaw_turn(lm: Landmarks, angle: float) -> tuple:
    """(rotation, hinge) of the lower jaw opening by `angle` radians, in the canonical frame: about
    a hinge in front of the ears at about the nose's height; the chin goes down and back."""
    eyes = 0.5 * (lm.canonical(lm.points["eyeL"]) + lm.canonical(lm.points["eyeR"]))
    ied = lm.eye_distance
    hinge = eyes + np.array([0.0, 1.3 * ied, -0.6 * ied])
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]]), hinge


def lip_lowerness(mesh: Mesh, pc, labels, lm: Landmarks) -> np.ndarray:
    """How much each lip vertex belongs to the lower lip, 0..1: 1 on the lower lip's front, 0 on
    the upper's, and in between inside the mouth (a bag, a stitched-on inner piece) by how far
    along the surface it is from either lip's front: a mouth's inside stretches evenly as it
    opens instead of tearing where the two sides' labels meet."""
    ied = lm.eye_distance
    labels = np.asarray(labels)
    c = {k: lm.canonical(v) for k, v in lm.points.items()}
    front = min(c["lipUpper"][1], c["lipLower"][1]) + 0.06 * ied
    lips = (labels == LIP_UPPER) | (labels == LIP_LOWER)
    seeds = {LIP_UPPER: np.nonzero((labels == LIP_UPPER) & (pc[:, 1] < front))[0],
             LIP_LOWER: np.nonzero((labels == LIP_LOWER) & (pc[:, 1] < front))[0]}
    low = (labels == LIP_LOWER).astype(float)
    if not len(seeds[LIP_UPPER]) or not len(seeds[LIP_LOWER]):
        return low
    apart = ()
    if lm.mouth_loop:
        tw = [np.nonzero(np.isin(mesh.weld, mesh.weld[np.asarray(ch)]))[0] for ch in lm.mouth_loop]
        apart = np.intersect1d(*tw)
    nbrs = mesh.neighbours(keep_apart=apart)
    d_up, _ = graph_distance(nbrs, {0: seeds[LIP_UPPER]}, np.inf)
    d_lo, _ = graph_distance(nbrs, {0: seeds[LIP_LOWER]}, np.inf)
    ok = lips & np.isfinite(d_up) & np.isfinite(d_lo) & (d_up + d_lo > 0)
    t = np.where(ok, d_up / np.where(ok, d_up + d_lo, 1.0), low)
    # the lips themselves stay crisp, the inside ramps
    return np.where(lips, np.clip((t - 0.25) / 0.5, 0.0, 1.0), 0.0)


def part_the_lips(out, pc, labels, lm: Landmarks, lowerness=None) -> list:
    """jawOpen, mouthClose and mouthFunnel made to do what ARKit says at the lips, whatever the
    mouth's topology: with the jaw open the lower lip turns with the jaw and the upper lip stays
    with the skull (they part along the slit or crease); mouthClose brings the lower lip back up
    to the upper; mouthFunnel parts the lips' edges into an O. The carried-over fields give the
    chin and cheeks; near the lips they are replaced, as the template's lips, which meet apart,
    cannot say how lips that touch or overlap part. `out`: canonical fields, changed in place."""
    c = {k: lm.canonical(v) for k, v in lm.points.items()}
    ied = lm.eye_distance
    labels = np.asarray(labels)
    upper, lower = labels == LIP_UPPER, labels == LIP_LOWER
    if not upper.any() or not lower.any():
        return []
    mid = 0.5 * (c["mouthL"] + c["mouthR"])
    half = 0.5 * abs(c["mouthL"][0] - c["mouthR"][0])
    line = np.interp(pc[:, 0], [c["mouthR"][0], c["lipUpper"][0], c["mouthL"][0]],
                     [c["mouthR"][2], 0.5 * (c["lipUpper"][2] + c["lipLower"][2]), c["mouthL"][2]])
    across = np.clip(1.0 - ((pc[:, 0] - mid[0]) / half) ** 2, 0.0, 1.0)
    profile = np.sqrt(np.sqrt(across))          # 1 in the middle, 0 at the corners
    band = np.exp(-((pc[:, 2] - line) / (LIP_BAND * ied)) ** 2)
    reach = np.linalg.norm((pc - mid) * [1.0, 1.0, 1.3], axis=1)
    rim = np.clip((0.75 * 2 * half - reach) / (0.3 * 2 * half), 0.0, 1.0)  # fades out at the zone's edge
    jaw, close, funnel = (ARKIT_52.index(n) for n in ("jawOpen", "mouthClose", "mouthFunnel"))
    # the jaw's turn: as far as the carried-over chin goes, and at least JAW_LIP_OPENING at the lip
    chin = int(np.argmin(np.linalg.norm(pc - c["chin"], axis=1)))
    _, hinge = jaw_turn(lm, 0.0)
    angle = max(float(np.linalg.norm(out[jaw, chin])) / max(np.linalg.norm(c["chin"] - hinge), 1e-9),
                JAW_LIP_OPENING * ied / max(np.linalg.norm(c["lipLower"] - hinge), 1e-9))
    turn, hinge = jaw_turn(lm, angle)
    rigid = (pc - hinge) @ turn.T + hinge - pc
    # how much of the jaw's turn each lip takes: the lower lip all of it in the middle, the upper
    # none; toward the corners both meet at half, so the corners do not tear
    low = lower.astype(float) if lowerness is None else np.asarray(lowerness, float)
    share = 0.5 + (low - 0.5) * profile
    lips = upper | lower
    w = np.where(lips, rim * (low + (1 - low) * band), 0.0)[:, None]
    out[jaw] = (1 - w) * out[jaw] + w * share[:, None] * rigid
    # mouthClose: the lower lip back up to the upper one (the chin stays with the open jaw)
    wc = np.where(lips, rim * band, 0.0)[:, None]
    out[close] = (1 - wc) * out[close] - wc * share[:, None] * rigid
    # mouthFunnel: the lips' edges part, most in the middle, into a rounded opening
    # (only what the carried-over field lacks: lips that met apart already open)
    middle = (np.abs(pc[:, 0] - mid[0]) < 0.2 * half) & (np.abs(pc[:, 2] - line) < 0.05 * ied)
    tops, bottoms = middle & upper & (low < 0.5), middle & lower & (low > 0.5)
    now = (out[funnel][tops, 2].mean() - out[funnel][bottoms, 2].mean()) if tops.any() and bottoms.any() else 0.0
    missing = float(np.clip(1.0 - now / (2 * FUNNEL_OPENING * ied), FUNNEL_LEAST, 1.0))
    edge = (rim * band * np.sqrt(across) * missing)[:, None]
    out[funnel] += np.where(upper[:, None], edge, 0.0) * [0.0, 0.0, FUNNEL_OPENING * ied]
    out[funnel] -= np.where(lower[:, None], edge, 0.0) * [0.0, 0.0, FUNNEL_OPENING * ied]
    return [f"jaw opens {np.degrees(angle):.1f} deg at the lips"]


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
    for name, gain in SIZE_GAINS.items():
        out[ARKIT_52.index(name)] *= gain
    notes = scale_lids(template, out, pc, skin, lm)
    notes += part_the_lips(out, pc, labels, lm, lip_lowerness(mesh, pc, labels, lm))
    # the lips' new motions eased into their surroundings and toward the corners, each side alone
    lips = ARKIT_52.index("jawOpen"), ARKIT_52.index("mouthClose"), ARKIT_52.index("mouthFunnel")
    out[list(lips)] = smooth_fields(mesh, out[list(lips)], skin, iterations=LIP_EASING, labels=labels)
    out = out @ lm.rotation  # canonical -> mesh coordinates (rotation is orthonormal)
    return MadeShapes(out, labels, warp.scale, notes)
