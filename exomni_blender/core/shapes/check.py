"""What made shapes must do, measured on the result: lips that part, lids that close, edges that
hold. Pure numpy, on any head (the artist's shapes are measured the same way in the bench).

Everything is measured by looking at the surface, not at vertex labels, so a mouth whose lips meet
at a seam, one with a gap, one with a mouth bag or none is measured alike:

- the lip opening: down the mouth's middle, rays from the front; where a ray passes the lips (hits
  nothing, or only something far behind their front: the mouth bag, the throat) the mouth is open.
  Its height in metres at jawOpen=1 and mouthFunnel=1, less the opening at rest.
- the lid gap: rays out of the eyeball across its opening; at eyeBlink=1 no ray may escape past
  the lids. The widest escaping band, in metres at the eyeball's surface.
- edge stretch: the worst ratio of an edge's length in the shape to its rest length (or inverse).

`self_check` turns these into failures, each naming the landmarks to move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmarks import Eyeball, Landmarks, _ray_hits, _triangles
from .mesh import Mesh, edge_stretch

OPEN_DEPTH = 0.1         # of the eye distance: a ray reaching this far behind the lip edges is through
JAW_OPENING_MIN = 0.12   # of the eye distance: jawOpen=1 parts the lips at least this much (the
                         # artists' heads: 0.3 to 0.5)
FUNNEL_OPENING_MIN = 0.03  # of the eye distance: mouthFunnel=1 opens the lips into an O
LID_GAP_MAX = 0.001      # metres: eyeBlink=1 leaves no more than this of the eye showing
EYE_FIT_SLACK = 0.15     # of the eyeball's radius: a closed lid this far behind the fitted sphere still
                         # covers the eye (an eyeball island with a cornea bulge pokes out of its sphere);
                         # eye meshes beside the head are hit as they are
STRETCH_MAX = 6.0        # no edge of any shape longer or shorter than this many times its rest length
                         # (artists' own shapes reach 4.8 at a lid's or the mouth's corner)


def main_component(mesh: Mesh, skin) -> np.ndarray:
    """The skin's largest island (teeth, tongue or eyeball islands of the same mesh left out)."""
    comp = mesh.components()
    ids, counts = np.unique(comp[skin], return_counts=True)
    return skin & (comp == ids[np.argmax(counts)])


def _front_profile(pc, tris, x, zs):
    """Per height z (canonical), how far forward (-Y) the first surface a ray from the front meets
    at (x, z) is; -inf where the ray meets nothing."""
    a, b, c = pc[tris[:, 0]], pc[tris[:, 1]], pc[tris[:, 2]]
    near = (np.minimum(np.minimum(a[:, 0], b[:, 0]), c[:, 0]) <= x) & (np.maximum(np.maximum(a[:, 0], b[:, 0]), c[:, 0]) >= x)
    a, b, c = a[near], b[near], c[near]
    if not len(a):
        return np.full(len(zs), -np.inf)
    d = (b[:, 0] - a[:, 0]) * (c[:, 2] - a[:, 2]) - (c[:, 0] - a[:, 0]) * (b[:, 2] - a[:, 2])
    d = np.where(np.abs(d) > 1e-18, d, np.nan)
    px, pz = x - a[:, 0], zs[:, None] - a[:, 2]
    u = (px * (c[:, 2] - a[:, 2]) - pz * (c[:, 0] - a[:, 0])) / d
    v = (pz * (b[:, 0] - a[:, 0]) - px * (b[:, 2] - a[:, 2])) / d
    inside = (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9)
    y = a[:, 1] + u * (b[:, 1] - a[:, 1]) + v * (c[:, 1] - a[:, 1])
    return np.where(inside, -y, -np.inf).max(axis=1)


@dataclass
class MouthProbe:
    """Where to look for the lip opening, fixed on the rest shape."""
    tris: np.ndarray
    rotation: np.ndarray
    xs: np.ndarray          # canonical x of the middle column and two columns off it
    edges: list             # per column: (upper lip edge ids, lower lip edge ids)
    ied: float


def _lip_edges(pc, labels, x, lip_z, front_y, ied):
    """The upper lip's lowest and the lower lip's highest front vertices near column x (rest)."""
    from .template import LIP_LOWER, LIP_UPPER

    near = (np.abs(pc[:, 0] - x) < 0.05 * ied) & (np.abs(pc[:, 2] - lip_z) < 0.2 * ied) \
        & (pc[:, 1] < front_y + 0.12 * ied)
    up = np.nonzero(near & (labels == LIP_UPPER))[0]
    lo = np.nonzero(near & (labels == LIP_LOWER))[0]
    if not len(up) or not len(lo):
        return None
    return up[np.argsort(pc[up, 2])[:3]], lo[np.argsort(-pc[lo, 2])[:3]]


def mouth_probe(mesh: Mesh, skin, lm: Landmarks, labels) -> MouthProbe:
    """`labels`: each vertex's lip side (transfer.character_labels)."""
    c = {k: lm.canonical(v) for k, v in lm.points.items()}
    ied = lm.eye_distance
    mid = 0.5 * (c["mouthL"] + c["mouthR"])
    width = abs(c["mouthL"][0] - c["mouthR"][0])
    lip_z = 0.5 * (c["lipUpper"][2] + c["lipLower"][2])
    front_y = min(c["lipUpper"][1], c["lipLower"][1])
    xs = np.array([c["lipUpper"][0], mid[0] + 0.25 * width, mid[0] - 0.25 * width])
    pc = lm.canonical(mesh.points)
    edges = [_lip_edges(pc, np.asarray(labels), x, np.interp(x, [c["mouthR"][0], c["lipUpper"][0], c["mouthL"][0]],
                                                             [c["mouthR"][2], lip_z, c["mouthL"][2]]), front_y, ied)
             for x in xs]
    return MouthProbe(_triangles(mesh, main_component(mesh, skin)), lm.rotation, xs, edges, ied)


def lip_opening(probe: MouthProbe, points, column: int = 0) -> float:
    """The height (metres) of the mouth's opening down one column: between the upper lip's edge
    and the lower lip's, the heights where rays from the front pass between the lips (meeting
    nothing, or only the mouth's inside well behind them). Lips that swell shut count as shut."""
    if probe.edges[column] is None:
        return 0.0
    pc = np.asarray(points, float) @ probe.rotation.T
    up, lo = probe.edges[column]
    top, bottom = pc[up, 2].mean(), pc[lo, 2].mean()
    if top <= bottom:
        return 0.0
    step = 0.002 * probe.ied
    zs = np.arange(top, bottom, -step)
    if not len(zs):
        return 0.0
    lips_front = -max(pc[up, 1].max(), pc[lo, 1].max())  # the lip edges' depth, the further back
    front = _front_profile(pc, probe.tris, probe.xs[column], zs)
    through = front < lips_front - OPEN_DEPTH * probe.ied
    return float(through.sum() * step)


@dataclass
class EyeProbe:
    tris: np.ndarray
    eye: Eyeball
    origins: np.ndarray     # [columns, rows, 3] ray starts in front of the eye, on a grid
    direction: np.ndarray   # [3] the rays' way: straight back into the face
    step: float             # metres between rows


def _showing(probe: EyeProbe, points) -> np.ndarray:
    """[columns, rows]: where a ray from the front meets the eyeball before any skin."""
    p = np.asarray(points, float)
    a, b, c = (p[probe.tris[:, i]] for i in range(3))
    o = probe.origins.reshape(-1, 3)
    d = probe.direction
    # the eyeball: the nearer crossing of each ray with its sphere
    surface = getattr(probe.eye, "surface", None)
    if surface is not None:
        # the eye mesh itself (an eye with a cornea or an iris cone is no sphere)
        t_ball = np.array([_ray_hits(q, d[None, :], surface[:, 0], surface[:, 1], surface[:, 2], np.inf)[0]
                           for q in o])
        slack = 0.0
    else:
        rel = o - probe.eye.centre
        half_b = rel @ d
        disc = half_b ** 2 - (np.einsum("ij,ij->i", rel, rel) - probe.eye.radius ** 2)
        t_ball = np.where(disc > 0, -half_b - np.sqrt(np.maximum(disc, 0.0)), np.inf)
        slack = EYE_FIT_SLACK * probe.eye.radius
    t_skin = np.full(len(o), np.inf)
    for k in range(len(o)):  # one origin each: the rays are parallel, the triangles few
        if np.isfinite(t_ball[k]):
            t_skin[k] = _ray_hits(o[k], d[None, :], a, b, c, t_ball[k] + slack)[0]
    shape = probe.origins.shape[:2]
    return (np.isfinite(t_ball) & ~np.isfinite(t_skin)).reshape(shape)


def eye_probe(mesh: Mesh, skin, lm: Landmarks, eye: Eyeball, side: str) -> EyeProbe:
    """Rays straight back from in front of one eye, on a grid over the middle 80% of its width,
    from well below its lower lid to well above its upper lid: what the viewer sees of it."""
    left, back, up = lm.rotation
    c = eye.centre
    inner, outer = lm.points[f"eyeInner{side}"], lm.points[f"eyeOuter{side}"]
    x0, x1 = sorted(((inner - c) @ left, (outer - c) @ left))
    mid, half = 0.5 * (x0 + x1), 0.4 * (x1 - x0)
    top = (lm.points[f"eyeUpper{side}"] - c) @ up
    bottom = (lm.points[f"eyeLower{side}"] - c) @ up
    step = eye.radius / 200.0
    xs = np.linspace(mid - half, mid + half, 11)
    zs = np.arange(bottom - 0.3 * eye.radius, top + 0.3 * eye.radius, step)
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    origins = c + X[..., None] * left + Z[..., None] * up - 3.0 * eye.radius * back
    near = skin & (np.linalg.norm(mesh.points - c, axis=1) < 3.0 * eye.radius)
    return EyeProbe(_triangles(mesh, near), eye, origins, back.copy(), step)


def lid_gap(probe: EyeProbe, points) -> float:
    """The widest band of the eyeball the viewer sees past the lids, straight on (metres)."""
    worst = 0
    for col in _showing(probe, points):
        run = best = 0
        for f in col:
            run = run + 1 if f else 0
            best = max(best, run)
        worst = max(worst, best)
    return float(worst * probe.step)


@dataclass
class Failure:
    shape: str
    measured: str       # what was measured, in words with numbers
    landmarks: tuple    # which landmarks to move (check) to mend it
    kind: str = "does not work"  # or "stretches": the shape works but tears or squashes an edge

    def __str__(self):
        return f"{self.shape}: {self.measured}; check the {', '.join(self.landmarks)} landmark" \
               + ("s" if len(self.landmarks) > 1 else "")


def _nearest_landmarks(lm: Landmarks, point, k=2) -> tuple:
    names = list(lm.points)
    d = [np.linalg.norm(lm.points[n] - point) for n in names]
    return tuple(names[i] for i in np.argsort(d)[:k])


def measure(mesh: Mesh, skin, lm: Landmarks, eyes, deltas: dict, labels) -> dict:
    """The measures of the key shapes (metres, ratios): lip openings, lid gaps, stretch per shape."""
    rest = mesh.points
    mp = mouth_probe(mesh, skin, lm, labels)
    out = {"lip opening at rest": lip_opening(mp, rest)}
    if "jawOpen" in deltas:
        out["jawOpen lip opening"] = lip_opening(mp, rest + deltas["jawOpen"]) - out["lip opening at rest"]
    if "mouthFunnel" in deltas:
        moved = rest + deltas["mouthFunnel"]
        out["mouthFunnel lip opening"] = lip_opening(mp, moved) - out["lip opening at rest"]
        side = [lip_opening(mp, moved, k) - lip_opening(mp, rest, k) for k in (1, 2)]
        out["mouthFunnel opening off the middle"] = float(min(side))
    for eye, side, name in zip(eyes, ("L", "R"), ("Left", "Right")):
        if f"eyeBlink{name}" not in deltas:
            continue
        ep = eye_probe(mesh, skin, lm, eye, side)
        out[f"eye{side} lid gap at rest"] = lid_gap(ep, rest)
        out[f"eyeBlink{name} lid gap"] = lid_gap(ep, rest + deltas[f"eyeBlink{name}"])
    edges = mesh.edges()
    out["stretch"] = {n: edge_stretch(rest, rest + d, edges) for n, d in deltas.items()}
    return out


def _eye_side(lm: Landmarks, eyes):
    """The eyeballs in (left, right) order."""
    e0, e1 = eyes
    if np.linalg.norm(e0.centre - lm.points["eyeL"]) > np.linalg.norm(e1.centre - lm.points["eyeL"]):
        e0, e1 = e1, e0
    return e0, e1


def self_check(mesh: Mesh, skin, lm: Landmarks, eyes, deltas: dict, labels) -> tuple:
    """(failures, measures) of made shapes: jawOpen must part the lips, mouthFunnel open them into
    an O, eyeBlink close each eye, and no shape stretch an edge past STRETCH_MAX."""
    skin = np.asarray(skin, bool)
    eyes = _eye_side(lm, eyes)
    m = measure(mesh, skin, lm, eyes, deltas, labels)
    ied = lm.eye_distance
    mm = lambda v: f"{v * 1000:.1f} mm"
    lips = ("lipUpper", "lipLower", "mouthL", "mouthR")
    fails = []
    if "jawOpen lip opening" in m and m["jawOpen lip opening"] < JAW_OPENING_MIN * ied:
        fails.append(Failure("jawOpen", f"parts the lips by {mm(m['jawOpen lip opening'])} "
                             f"(at least {mm(JAW_OPENING_MIN * ied)} for this face)", lips))
    if "mouthFunnel lip opening" in m:
        o, off = m["mouthFunnel lip opening"], m["mouthFunnel opening off the middle"]
        if o < FUNNEL_OPENING_MIN * ied:
            fails.append(Failure("mouthFunnel", f"opens the lips by {mm(o)} (at least "
                                 f"{mm(FUNNEL_OPENING_MIN * ied)})", lips))
    for side, name in (("L", "Left"), ("R", "Right")):
        key = f"eyeBlink{name} lid gap"
        if key in m and m[key] > LID_GAP_MAX:
            fails.append(Failure(f"eyeBlink{name}", f"leaves the eye open by {mm(m[key])} (at most "
                                 f"{mm(LID_GAP_MAX)})", (f"eyeUpper{side}", f"eyeLower{side}")))
    edges = mesh.edges()
    for name, s in m["stretch"].items():
        if s > STRETCH_MAX:
            d = deltas[name]
            rest = mesh.points
            ratio = np.linalg.norm((rest + d)[edges[:, 0]] - (rest + d)[edges[:, 1]], axis=1) \
                / np.maximum(np.linalg.norm(rest[edges[:, 0]] - rest[edges[:, 1]], axis=1), 1e-12)
            worst = edges[np.argmax(np.maximum(ratio, 1 / np.maximum(ratio, 1e-12)))]
            fails.append(Failure(name, f"stretches an edge {s:.1f}x (at most {STRETCH_MAX:.1f}x)",
                                 _nearest_landmarks(lm, rest[worst[0]]), "stretches"))
    return fails, m


LID_CLOSING_GAIN_MAX = 1.8  # the upper lid's blink travel is lengthened at most this much


def close_lids(mesh: Mesh, skin, lm: Landmarks, eyes, made) -> list:
    """Lengthen each eyeBlink's upper-lid travel until, seen from the front, no eye shows between
    the lids (a few passes; the lid opening and the lid loops of this head decide how far, not a
    fixed angle). `made`: MadeShapes, changed in place. Returns notes."""
    from ..arkit import ARKIT_52
    from .template import LID_UPPER_L, LID_UPPER_R

    skin = np.asarray(skin, bool)
    notes = []
    for eye, side, name, label in zip(_eye_side(lm, eyes), ("L", "R"), ("Left", "Right"),
                                      (LID_UPPER_L, LID_UPPER_R)):
        i = ARKIT_52.index(f"eyeBlink{name}")
        probe = eye_probe(mesh, skin, lm, eye, side)
        opening = lid_gap(probe, mesh.points)
        upper = np.asarray(made.labels) == label
        if opening <= 0 or not upper.any():
            continue
        total = 1.0
        for _ in range(4):
            gap = lid_gap(probe, mesh.points + made.deltas[i])
            if gap <= 0.5 * LID_GAP_MAX or total >= LID_CLOSING_GAIN_MAX:
                break
            gain = min(1.0 + (gap + 0.25 * LID_GAP_MAX) / opening, LID_CLOSING_GAIN_MAX / total)
            made.deltas[i][upper] *= gain
            total *= gain
        if total > 1.0:
            notes.append(f"{name.lower()} upper lid's blink lengthened x{total:.2f} to close the eye")
    return notes
