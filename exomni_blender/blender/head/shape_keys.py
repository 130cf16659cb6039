"""The 52 ARKit shape keys of the procedural head: weight fields over its rest shape, and a
displacement per key (pure numpy)."""

from __future__ import annotations

import numpy as np

from ...core.arkit import ARKIT_52
from .landmarks import (
    BROW, EYE_LEFT, EYE_RIGHT, EYE_X, EYE_Y, EYE_Z, GAZE_DEGREES, HINGE_Y, HINGE_Z, JAW_GLIDE,
    JAW_OPEN_DEGREES, LID_DOWN_DEGREES, LID_UP_DEGREES, MOUTH_Z, TEETH_LOWER, TONGUE)
from .sculpture import _gauss, _rotate_x, _rotate_z, _sdf_normals, _smoothstep

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
