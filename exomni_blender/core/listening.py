"""Listening in a dialogue scene: who looks at whom when, and how listeners react.

A dialogue reads as a conversation when the others watch whoever speaks and answer with their
faces. From the lines of a scene (who speaks, when, to whom, where their phrases end and which
syllables they stress) and where each character sits, `plan_listening` makes, per character, one
layer over the whole scene that is added to what the character already does:

- gaze: while a line is spoken each listener looks at the speaker's head (a saccade REACT_LATENCY
  after the line starts; the eyes move in SACCADE_TIME, the head follows in HEAD_TURN_TIME and
  takes a share of the turn: HEAD_SHARE of it, more only where the eyes cannot reach). The speaker
  looks at the one addressed, glancing away (down and to the side) in the pauses of a long line, as
  people do while they think of what comes next. Between lines everyone keeps looking where they did.
- reactions at the speaker's rhythm: a nod just after most of the speaker's phrase ends, a smaller
  one on some strongly stressed syllables, a blink after some phrase ends, and slow breathing; none of
  it during the listener's own lines.
- turn-taking: a moment before their line the next speaker looks at the one they will address, lifts
  the head a little and parts the lips for a breath (closed again as the line starts).

Angles are degrees in the character's own frame (it faces -Y, up is +Z): yaw + towards the
character's left, pitch + up for the eyes; the head's rotation is (pitch + nods down, yaw, roll), as
`core.face.head_motion`. The eyes become ARKit eyeLook* weights (1 = EYE_SIDE_DEG to the side,
EYE_UP_DEG up, EYE_DOWN_DEG down: the eye's comfortable range, as the Blender side's eye bones).
Everything is seeded: the same scene and seed give the same layer. numpy only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .arkit import ARKIT_52, INDEX
from .face import _ease, speech_marks

EYE_SIDE_DEG, EYE_UP_DEG, EYE_DOWN_DEG = 25.0, 20.0, 25.0
HEAD_SHARE = (0.35, 0.25)  # the share of a look's yaw and pitch the head takes
# The most the head turns (yaw) and tips (pitch) to look, degrees: with the eyes' 25, a neighbour side
# by side (90 degrees away) is reached.
HEAD_LIMIT = (65.0, 15.0)
EYE_REACH = 0.9  # the eyes keep this share of their range; the head takes what lies beyond
REACT_LATENCY = (0.12, 0.3)  # seconds from a line's start to a listener's look at the speaker
SACCADE_TIME = 0.06
HEAD_TURN_TIME = 0.35
PREPARE = (0.45, 0.7)  # seconds before their line the next speaker prepares (look, breath)
BREATH_LIFT_DEG = 1.5
BREATH_JAW = 0.06
GLANCE = (0.5, 0.9)  # seconds a speaker's glance away lasts
GLANCE_YAW, GLANCE_PITCH = (10.0, 18.0), (-10.0, -4.0)  # degrees, the yaw to either side
GLANCE_MIN_LINE = 2.0  # only in lines this long, at pauses not too near either end
NOD_AT_PHRASE_END = 0.75  # chance of a nod after a phrase end of the speaker
NOD_AT_ACCENT = 0.2  # chance of a small nod on a stressed syllable (strength >= ACCENT_STRONG)
ACCENT_STRONG = 0.85
NOD_DELAY = (0.08, 0.3)  # seconds after the phrase end that the nod peaks
NOD_DEG = (2.0, 4.0)
SMALL_NOD_DEG = (0.8, 1.5)
NOD_RISE, NOD_FALL = 0.18, 0.4
NOD_GAP = 0.9  # seconds at least between two nods
BLINK_AT_PHRASE_END = 0.5
BREATH_HZ, BREATH_DEG = 0.23, 0.4
OWN_LINE_EASE = 0.25  # seconds the listening reactions take to fade out before and in after a line


@dataclass
class Seat:
    """Where a character is: its head's point (world) and its rotation (world 3x3; the character
    faces its local -Y)."""
    head: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))


@dataclass
class Line:
    """A spoken line: scene seconds, the character addressed, and its speech marks (seconds from
    the line's start): accents [(t, strength)] and phrase ends [t]."""
    character: str
    start: float
    end: float
    addressee: str | None = None
    accents: list = field(default_factory=list)
    phrase_ends: list = field(default_factory=list)
    head: np.ndarray | None = None  # the take's own head rotation [k, 3] (pitch, yaw, roll), or None
    head_fps: float = 0.0


@dataclass
class Listening:
    """One character's layer: per frame (`times`, seconds from the scene's start) ARKit weights to
    add [n, 52] and head rotation [n, 3] (pitch, yaw, roll; degrees) to combine; and what it does:
    looks [(seconds, whom or "away")], nods, blinks and breaths [seconds], the look [n, 2] (yaw,
    pitch), the share of it the head takes [n, 2] and the eyes' turn in the head [n, 2], which holds
    the look while the head nods, breathes or moves with the character's own line."""
    character: str
    times: np.ndarray
    weights: np.ndarray
    head: np.ndarray
    look: np.ndarray
    head_look: np.ndarray
    eyes: np.ndarray
    looks: list = field(default_factory=list)
    nods: list = field(default_factory=list)
    blinks: list = field(default_factory=list)
    breaths: list = field(default_factory=list)


# -- who is addressed --------------------------------------------------------------------------------

def addressees(speakers: list, parentheticals: list, cast: list) -> list:
    """Whom each line addresses: a character of `cast` named in its parentheticals ("(to MARY)",
    "(turning to Bob)"), else the previous line's speaker when another, else the next other speaker,
    else the first other character of the cast; None for a character alone."""
    out = []
    for i, (who, notes) in enumerate(zip(speakers, parentheticals)):
        named = _named_in(" ".join(notes or ()), cast, who)
        if named is None:
            before = [s for s in speakers[:i][::-1] if s != who]
            after = [s for s in speakers[i + 1:] if s != who]
            others = [c for c in cast if c != who]
            named = (before or after or others or [None])[0]
        out.append(named)
    return out


def _named_in(text: str, cast: list, who: str):
    words = text.lower()
    for name in sorted(cast, key=len, reverse=True):
        if name != who and re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", words):
            return name
    return None


# -- angles -------------------------------------------------------------------------------------------

def look_angles(seat: Seat, point) -> tuple[float, float]:
    """(yaw, pitch) in degrees from `seat`'s head to `point`, in the character's frame."""
    rot = np.asarray(seat.rotation, np.float64)
    rot = rot / np.linalg.norm(rot, axis=0, keepdims=True)
    d = rot.T @ (np.asarray(point, np.float64) - np.asarray(seat.head, np.float64))
    return float(np.degrees(np.arctan2(d[0], -d[1]))), float(np.degrees(np.arctan2(d[2], np.hypot(d[0], d[1]))))


def split_look(yaw, pitch):
    """(head yaw, head pitch-up) and (eye yaw, eye pitch) for a look: the head takes HEAD_SHARE, and
    what the eyes cannot reach (beyond EYE_REACH of their range), within HEAD_LIMIT."""
    yaw, pitch = np.asarray(yaw, np.float64), np.asarray(pitch, np.float64)
    eye_pitch_reach = np.where(pitch > 0, EYE_UP_DEG, EYE_DOWN_DEG) * EYE_REACH
    head_yaw = np.sign(yaw) * np.maximum(np.abs(yaw) * HEAD_SHARE[0], np.abs(yaw) - EYE_SIDE_DEG * EYE_REACH)
    head_pitch = np.sign(pitch) * np.maximum(np.abs(pitch) * HEAD_SHARE[1], np.abs(pitch) - eye_pitch_reach)
    head_yaw = np.clip(head_yaw, -HEAD_LIMIT[0], HEAD_LIMIT[0])
    head_pitch = np.clip(head_pitch, -HEAD_LIMIT[1], HEAD_LIMIT[1])
    return (head_yaw, head_pitch), (yaw - head_yaw, pitch - head_pitch)


def eye_weights(eye_yaw, eye_pitch) -> np.ndarray:
    """ARKit weights [n, 52] turning both eyes by (yaw, pitch) degrees, within their range; the upper
    lids follow the eyes down a little."""
    yaw = np.atleast_1d(np.asarray(eye_yaw, np.float64))
    pitch = np.atleast_1d(np.asarray(eye_pitch, np.float64))
    w = np.zeros((yaw.size, len(ARKIT_52)), np.float32)
    side = np.clip(yaw / EYE_SIDE_DEG, -1.0, 1.0)
    to_left, to_right = np.clip(side, 0, None), np.clip(-side, 0, None)
    w[:, INDEX["eyeLookOutLeft"]] = to_left
    w[:, INDEX["eyeLookInRight"]] = to_left
    w[:, INDEX["eyeLookInLeft"]] = to_right
    w[:, INDEX["eyeLookOutRight"]] = to_right
    up = np.clip(pitch / EYE_UP_DEG, 0.0, 1.0)
    down = np.clip(-pitch / EYE_DOWN_DEG, 0.0, 1.0)
    for s in ("Left", "Right"):
        w[:, INDEX[f"eyeLookUp{s}"]] = up
        w[:, INDEX[f"eyeLookDown{s}"]] = down
        w[:, INDEX[f"eyeBlink{s}"]] = 0.35 * down
    return w


def gaze_of(weights) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) in degrees that ARKit weights [n, 52] turn the eyes (both eyes' mean): the
    inverse of `eye_weights`, for checking a layer."""
    w = np.asarray(weights, np.float64)
    left = (w[:, INDEX["eyeLookOutLeft"]] - w[:, INDEX["eyeLookInLeft"]]
            + w[:, INDEX["eyeLookInRight"]] - w[:, INDEX["eyeLookOutRight"]]) / 2
    lift = (w[:, INDEX["eyeLookUpLeft"]] + w[:, INDEX["eyeLookUpRight"]]) / 2
    drop = (w[:, INDEX["eyeLookDownLeft"]] + w[:, INDEX["eyeLookDownRight"]]) / 2
    return left * EYE_SIDE_DEG, lift * EYE_UP_DEG - drop * EYE_DOWN_DEG


def angle_between(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def direction(yaw_deg, pitch_deg) -> np.ndarray:
    """The unit vector of a look, in the character's frame (forward is -Y)."""
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    return np.array([np.sin(y) * np.cos(p), -np.cos(y) * np.cos(p), np.sin(p)])


# -- a scene's listening ------------------------------------------------------------------------------

def marks_of(weights, fps: float) -> tuple[list, list]:
    """(accents, phrase ends) of a take's performance (seconds from its start), the end of its speech
    counted as a phrase end."""
    weights = np.asarray(weights, np.float32)
    accents, ends = speech_marks(weights, fps)
    from .face import jaw_parting, LIPS_TOUCH

    spoken = np.nonzero(jaw_parting(weights) > LIPS_TOUCH)[0]
    if spoken.size:
        last = (spoken[-1] + 1) / float(fps)
        if not ends or last - ends[-1] > 0.3:
            ends = [*ends, last]
    return accents, ends


def plan_listening(lines: list, seats: dict, duration: float, fps: float, seeds: dict | int = 0) -> dict:
    """{character: Listening} for every seated character over `duration` seconds at `fps`.

    lines  Line per spoken line, any order (scene seconds).
    seats  {character: Seat}.
    seeds  {character: seed} or one seed for all."""
    n = max(1, int(round(duration * fps)) + 1)
    t = np.arange(n) / float(fps)
    lines = sorted(lines, key=lambda ln: (ln.start, ln.character))
    out = {}
    for who in seats:
        seed = seeds.get(who, 0) if isinstance(seeds, dict) else int(seeds)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 25, _stable(who)]))
        out[who] = _character(who, lines, seats, t, float(fps), rng)
    return out


def _stable(name: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) & 0xFFFFFFFF


def _character(who, lines, seats, t, fps, rng) -> Listening:
    own = [ln for ln in lines if ln.character == who]
    looks = _looks(who, lines, seats, rng)
    look, head_look = _gaze_curves(who, looks, seats, t)
    (head_yaw, head_pitch) = head_look[:, 0], head_look[:, 1]

    listening = _listening_weight(own, t)
    nods, blinks = _reactions(who, lines, own, rng)
    head = np.zeros((t.size, 3))
    head[:, 1] = head_yaw
    head[:, 0] = -head_pitch  # the head's pitch is + down
    for at, depth in nods:
        rise = _ease((t - (at - NOD_RISE)) / NOD_RISE)
        fall = 1.0 - _ease((t - at) / NOD_FALL)
        head[:, 0] += depth * np.minimum(rise, fall)
    phase = rng.uniform(0, 2 * np.pi)
    head[:, 0] += BREATH_DEG * np.sin(2 * np.pi * BREATH_HZ * t + phase) * listening
    blink = np.zeros(t.size)
    for at in blinks:
        close = _ease((t - at) / 0.05)
        opening = 1.0 - _ease((t - at - 0.05 - max(0.015, 1.0 / fps)) / 0.085)
        blink = np.maximum(blink, np.minimum(close, opening))

    breaths = []
    jaw = np.zeros(t.size)
    for ln in own:  # the breath before speaking: head up a little, lips parted, closed as the line starts
        lead = rng.uniform(*PREPARE)
        begin = max(0.0, ln.start - lead)
        if any(o.start < ln.start and o.end > begin for o in own if o is not ln):
            continue
        breaths.append(begin)
        inhale = np.minimum(_ease((t - begin) / (0.6 * lead)), 1.0 - _ease((t - ln.start + 0.15) / 0.15))
        head[:, 0] -= BREATH_LIFT_DEG * np.minimum(inhale, 1.0 - _ease((t - ln.start) / 0.3))
        jaw = np.maximum(jaw, BREATH_JAW * inhale)
    # The eyes hold the look while the head nods, breathes or moves with the character's own line.
    turned = head + _own_head(own, t)
    in_head = np.stack([look[:, 0] - turned[:, 1], look[:, 1] + turned[:, 0]], axis=1)
    eyes = eye_weights(in_head[:, 0], in_head[:, 1])
    eyes[:, INDEX["eyeBlinkLeft"]] += blink.astype(np.float32)
    eyes[:, INDEX["eyeBlinkRight"]] += blink.astype(np.float32)
    eyes[:, INDEX["jawOpen"]] = jaw.astype(np.float32)
    eyes = np.clip(eyes, 0.0, 1.0)
    return Listening(who, t, eyes, head.astype(np.float32), look, head_look, in_head, looks,
                     [a for a, _ in nods], blinks, breaths)


def _looks(who, lines, seats, rng) -> list:
    """[(seconds, target, ease-in seconds)]: a character's name or ("away", yaw, pitch) relative to
    whom the character was looking at."""
    events = []
    first = next(iter(lines), None)
    if first is not None:
        events.append((0.0, first.character if first.character != who else first.addressee))
    for ln in lines:
        if ln.character == who:
            target = ln.addressee if ln.addressee in seats else None
            lead = rng.uniform(*PREPARE)
            # not before the line being listened to is nearly over
            heard = [o.end for o in lines
                     if o.character != who and o.start < ln.start - 0.05 and o.end > ln.start - lead]
            begin = max([ln.start - lead, *(e - 0.1 for e in heard)])
            events.append((max(0.0, min(begin, ln.start - 0.1)), target))
            if ln.end - ln.start >= GLANCE_MIN_LINE:
                for pe in ln.phrase_ends:
                    at = ln.start + pe
                    if pe < 0.6 or at > ln.end - 1.0 or rng.random() > 0.7:
                        continue
                    side = rng.choice((-1.0, 1.0))
                    events.append((at - 0.05, ("away", side * rng.uniform(*GLANCE_YAW), rng.uniform(*GLANCE_PITCH))))
                    events.append((at - 0.05 + rng.uniform(*GLANCE), target))
        elif ln.character in seats:
            events.append((ln.start + rng.uniform(*REACT_LATENCY), ln.character))
    events.sort(key=lambda e: e[0])
    return [e for e in events if e[1] is not None]


def _gaze_curves(who, looks, seats, t):
    """The look (yaw, pitch) [n, 2] and the head's share of it [n, 2], eased per event."""
    seat = seats[who]
    look = np.zeros((t.size, 2))
    head = np.zeros((t.size, 2))
    current = np.zeros(2)
    for at, target in looks:
        if isinstance(target, tuple):
            aim = current + np.array(target[1:], np.float64)
        else:
            aim = np.array(look_angles(seat, seats[target].head))
        (hy, hp), _ = split_look(aim[0], aim[1])
        hit = t >= at
        if not hit.any():
            continue
        i = int(np.argmax(hit))
        eyes_from, head_from = look[i].copy() if i else aim, head[i].copy() if i else np.array([hy, hp])
        k = _ease((t[hit] - at) / SACCADE_TIME)[:, None]
        look[hit] = eyes_from + (aim - eyes_from) * k
        kh = _ease((t[hit] - at) / HEAD_TURN_TIME)[:, None]
        head[hit] = head_from + (np.array([hy, hp]) - head_from) * kh
        if not isinstance(target, tuple):
            current = aim
    # Before the first look: already looking.
    return look, head


def _own_head(own, t) -> np.ndarray:
    """The head rotation the character's own lines key (their takes'), at `t`."""
    out = np.zeros((t.size, 3))
    for ln in own:
        if ln.head is None or not ln.head_fps or len(ln.head) == 0:
            continue
        rows = np.asarray(ln.head, np.float64)
        local = (t - ln.start) * ln.head_fps
        inside = (local >= 0) & (local <= rows.shape[0] - 1)
        for axis in range(3):
            out[inside, axis] += np.interp(local[inside], np.arange(rows.shape[0]), rows[:, axis])
    return out


def _listening_weight(own, t) -> np.ndarray:
    w = np.ones(t.size)
    for ln in own:
        inside = np.minimum(_ease((t - ln.start + OWN_LINE_EASE) / OWN_LINE_EASE),
                            1.0 - _ease((t - ln.end) / OWN_LINE_EASE))
        w = np.minimum(w, 1.0 - inside)
    return w


def _reactions(who, lines, own, rng) -> tuple[list, list]:
    """Nods [(peak seconds, degrees)] and blinks [onset seconds] at other speakers' phrase ends and
    stresses, none within OWN_LINE_EASE + a nod of the character's own lines."""
    def free(at):
        return all(at + NOD_FALL + OWN_LINE_EASE < ln.start - 0.3 or at - NOD_RISE > ln.end + OWN_LINE_EASE
                   for ln in own)

    nods, blinks = [], []
    for ln in lines:
        if ln.character == who:
            continue
        cues = [(ln.start + pe, "end") for pe in ln.phrase_ends]
        cues += [(ln.start + at, "accent") for at, s in ln.accents if s >= ACCENT_STRONG]
        for at, kind in sorted(cues):
            r = rng.random()
            if kind == "end":
                peak = at + rng.uniform(*NOD_DELAY)
                depth = rng.uniform(*NOD_DEG)
                # a phrase end's nod wins over a small one on a stress just before it
                kept = [(p, d) for p, d in nods if not (p > peak - NOD_GAP and d < NOD_DEG[0])]
                if r < NOD_AT_PHRASE_END and free(peak) and all(abs(peak - p) >= NOD_GAP for p, _ in kept):
                    nods = kept + [(peak, depth)]
                onset = at + rng.uniform(0.05, 0.2)
                if rng.random() < BLINK_AT_PHRASE_END and free(onset):
                    blinks.append(onset)
            else:
                peak = at + rng.uniform(0.0, 0.12)
                depth = rng.uniform(*SMALL_NOD_DEG)
                if r < NOD_AT_ACCENT and free(peak) and all(abs(peak - p) >= NOD_GAP for p, _ in nods):
                    nods.append((peak, depth))
    nods.sort()
    return nods, sorted(blinks)
