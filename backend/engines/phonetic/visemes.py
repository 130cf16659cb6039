"""A phoneme timeline as ARKit mouth curves, with coarticulation.

The model works on ten articulators (jaw, lip seal, lip press, pucker, funnel, spread, lower-lip
tuck, lower lip down, upper lip up, tongue tip) and maps them to ARKit channels at the end.

Coarticulation follows Cohen and Massaro's dominance model: every sound pulls each articulator
toward its target with a dominance that is flat over the sound and decays away from it, slower
ahead of the sound (anticipation) than behind it (carry-over); an articulator's value at time t is
the dominance-weighted mean of the targets. A /p/ has an overwhelming dominance over the lip seal,
so the lips close even in fast speech; a /k/ barely cares about the lips, so rounding from a
neighbouring /u/ flows through it.

Pauses are handled by a per-articulator envelope: the mouth relaxes to rest after speech stops and
starts shaping the next sound ahead of its onset (longer ahead for rounding); short gaps only dip.
The continuous model is sampled directly at the requested frame times.
"""

from __future__ import annotations

import numpy as np

from exomni_blender.core.arkit import INDEX
from exomni_blender.core.face import LIPS_TOUCH, lip_gap, lips_closed  # noqa: F401 (re-exported)
from . import ipa
from .ipa import CLOSE, FUNNEL, JAW, LOWER, N_ART, PRESS, PUCKER, SPREAD, TONGUE, TUCK, UPPER

# Dominance decay per articulator. A sound's influence falls off at least at THETA_MIN (1/s)
# ahead of it (anticipation) and after it (carry-over). A strongly dominant sound falls off faster,
# so that it reaches out only about EXTENT seconds with the strength of an ordinary vowel (a /p/
# overwhelms its neighbours' lips but only near the /p/, not 150 ms away). Rounding decays slowly
# and reaches far ahead through consonants that do not care about the lips.
THETA_MIN_AHEAD = np.array([22.0, 30.0, 30.0, 12.0, 12.0, 18.0, 30.0, 25.0, 25.0, 30.0])
THETA_MIN_AFTER = np.array([28.0, 40.0, 40.0, 22.0, 22.0, 25.0, 40.0, 30.0, 30.0, 40.0])
EXTENT_AHEAD = np.array([0.08, 0.035, 0.035, 0.035, 0.035, 0.05, 0.035, 0.05, 0.05, 0.04])
EXTENT_AFTER = np.array([0.06, 0.018, 0.018, 0.03, 0.03, 0.04, 0.02, 0.04, 0.04, 0.03])
# How far each articulator runs ahead of the sound. The jaw and lip shape lead the acoustics
# (seen and heard speech line up best with the mouth slightly early); the lip seal, the tuck and
# the tongue tip do not: the sound of a /p/ starts when the lips meet.
LEAD = np.array([0.035, 0.0, 0.0, 0.025, 0.025, 0.025, 0.0, 0.03, 0.03, 0.0])
SHAPE = 1.5  # exponent of the decay: between exponential (1) and Gaussian (2)
NEIGHBOURS = 10  # sounds on each side that can still matter at a frame
FLOOR = 1e-4  # dominance of rest everywhere, so far from any sound the mouth relaxes

# Pause envelope: relax after speech, prepare before it (seconds), per articulator.
RELAX = np.array([0.09, 0.07, 0.07, 0.10, 0.10, 0.09, 0.07, 0.08, 0.08, 0.07])
PREPARE = np.array([0.11, 0.09, 0.09, 0.16, 0.16, 0.12, 0.09, 0.10, 0.10, 0.09])
PAUSE_SHORT, PAUSE_FULL = 0.06, 0.20  # gaps below SHORT do not relax the mouth; from FULL on it rests
PAUSE_SHARE = 0.3  # relaxing and preparing each take at most this share of a pause

# Whether the lips touch is the shared face helpers' definition, so the exchange formats agree with it.
LIPS_CLOSED_GAP = LIPS_TOUCH


class Timeline:
    """Sounds laid out in time: starts, ends, target and dominance matrices."""

    def __init__(self, phonemes, fps: float):
        starts, ends, targets, dominance = [], [], [], []
        hold = 1.0 / fps + 0.002  # lip seals and tucks last at least one frame so a frame sees them
        self.gaps: list[tuple[float, float]] = []
        previous_end = None
        for symbol, start, end in phonemes:
            if end <= start:
                continue
            if previous_end is not None and start > previous_end + 1e-6:
                self.gaps.append((previous_end, start))
            previous_end = end if previous_end is None else max(previous_end, end)
            t = start
            for share, sound in ipa.sounds(symbol):
                s, e = t, t + share * (end - start)
                t = e
                if sound.lip_critical and e - s < hold:
                    mid = 0.5 * (s + e)
                    s, e = mid - 0.5 * hold, mid + 0.5 * hold
                starts.append(s)
                ends.append(e)
                targets.append(sound.target)
                dominance.append(sound.dominance)
        self.first = phonemes[0][1] if phonemes else None
        self.last = previous_end
        order = np.argsort(np.asarray(starts, np.float64), kind="stable")
        self.starts = np.asarray(starts, np.float64)[order]
        self.ends = np.asarray(ends, np.float64)[order]
        self.targets = np.asarray(targets, np.float64).reshape(-1, N_ART)[order]
        self.dominance = np.asarray(dominance, np.float64).reshape(-1, N_ART)[order]
        reach = np.log(np.maximum(self.dominance, 1.0)) ** (1.0 / SHAPE)
        self.theta_ahead = np.maximum(THETA_MIN_AHEAD, reach / EXTENT_AHEAD)
        self.theta_after = np.maximum(THETA_MIN_AFTER, reach / EXTENT_AFTER)

    def __len__(self):
        return len(self.starts)


def blend(timeline: Timeline, times: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Articulator values [frames, 10] at `times`: dominance-weighted targets of nearby sounds."""
    n = len(timeline)
    out = np.zeros((times.size, N_ART))
    if n == 0:
        return out
    k = NEIGHBOURS
    # Pad with dominance-free sounds so every window of 2k neighbours is a valid slice.
    pad_t = np.full(k, np.inf)
    starts = np.concatenate([-pad_t, timeline.starts, pad_t])
    ends = np.concatenate([-pad_t, timeline.ends, pad_t])
    targets = np.concatenate([np.zeros((k, N_ART)), timeline.targets, np.zeros((k, N_ART))])
    dominance = np.concatenate([np.zeros((k, N_ART)), timeline.dominance, np.zeros((k, N_ART))])
    pad_theta = np.ones((k, N_ART))
    theta_ahead = np.concatenate([pad_theta, timeline.theta_ahead, pad_theta])
    theta_after = np.concatenate([pad_theta, timeline.theta_after, pad_theta])
    offsets = np.arange(-k, k)
    for a in range(0, times.size, chunk):
        t = times[a:a + chunk]
        centre = np.searchsorted(timeline.starts, t) + k  # first sound starting after t, in padded indices
        idx = centre[:, None] + offsets[None, :]  # [F, 2k]
        tt = t[:, None, None] + LEAD  # [F, 1, A]: each articulator runs its lead ahead
        ahead = np.clip(np.nan_to_num(starts[idx], posinf=1e3, neginf=-1e3)[..., None] - tt, 0.0, None)
        after = np.clip(tt - np.nan_to_num(ends[idx], posinf=1e3, neginf=-1e3)[..., None], 0.0, None)
        x = (ahead * theta_ahead[idx]) ** SHAPE + (after * theta_after[idx]) ** SHAPE
        d = dominance[idx] * np.exp(-np.minimum(x, 50.0))  # [F, 2k, A]
        out[a:a + chunk] = (d * targets[idx]).sum(axis=1) / (d.sum(axis=1) + FLOOR)
    return out


def _ramp(x: np.ndarray) -> np.ndarray:
    """0 -> 1 over x in [0, 1], eased (raised cosine)."""
    x = np.clip(x, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _smoothstep(a: float, b: float, x: float) -> float:
    u = min(1.0, max(0.0, (x - a) / (b - a)))
    return u * u * (3.0 - 2.0 * u)


def speech_envelope(timeline: Timeline, times: np.ndarray) -> np.ndarray:
    """[frames, 10] in [0, 1]: 1 while speaking, easing to 0 (rest) in pauses and before/after speech."""
    env = np.ones((times.size, N_ART))
    if timeline.first is None:
        return np.zeros((times.size, N_ART))
    t = times[:, None] + LEAD
    # before the first sound and after the last one the mouth is at rest
    spans = [(-np.inf, timeline.first)] + list(timeline.gaps) + [(timeline.last, np.inf)]
    for g0, g1 in spans:
        length = g1 - g0
        depth = 1.0 if not np.isfinite(length) else _smoothstep(PAUSE_SHORT, PAUSE_FULL, length)
        if depth <= 0.0:
            continue
        # frames whose led times fall in the span: a slice of the sorted frame times
        a = int(np.searchsorted(times, g0 - LEAD.max(), side="right")) if np.isfinite(g0) else 0
        b = int(np.searchsorted(times, g1, side="left")) if np.isfinite(g1) else times.size
        if b <= a:
            continue
        sel = slice(a, b)
        relax = np.minimum(RELAX, PAUSE_SHARE * length) if np.isfinite(length) else RELAX
        prepare = np.minimum(PREPARE, PAUSE_SHARE * length) if np.isfinite(length) else PREPARE
        ts = t[sel]
        inside = (ts > g0) & (ts < g1)
        falling = 1.0 - _ramp((ts - g0) / relax) if np.isfinite(g0) else np.zeros_like(ts)
        rising = _ramp((ts - (g1 - prepare)) / prepare) if np.isfinite(g1) else np.zeros_like(ts)
        level = np.where(inside, np.maximum(falling, rising), 1.0)
        env[sel] = np.minimum(env[sel], 1.0 - depth * (1.0 - level))
    return env


def articulators(phonemes, duration: float, fps: float, heard=None) -> np.ndarray:
    """Articulator values [frames, 10] for a phoneme timeline, sampled at frame k / fps.

    heard: optional (samples, sample_rate) of the speech the phonemes came from: where there is a
    recording, it decides where someone speaks (the mouth rests elsewhere, whatever the phones say)
    and how wide the mouth opens (louder syllables open wider)."""
    frames = frame_count(duration, fps)
    times = np.arange(frames) / float(fps)
    timeline = Timeline(phonemes, fps)
    values = blend(timeline, times)
    envelope = speech_envelope(timeline, times)
    values = values * envelope
    if heard is not None:
        values = values * heard_envelope(heard, fps, frames, speaking=envelope[:, JAW] >= 1.0)
    return values


# Opening follows the voice's level: an articulator that opens the mouth is scaled by the level
# relative to the recording's typical speech to this power, within these bounds (the phone still
# decides the shape; beside a neural peer's curves a stronger scaling lowered the jaw's agreement).
LOUDNESS_POWER = 0.15
LOUDNESS_RANGE = (0.85, 1.15)
_OPENING = np.zeros(N_ART, bool)
_OPENING[[JAW, LOWER, UPPER]] = True
# Where the recording is silent the mouth goes to rest: it starts shaping the speech this long before
# the voice is heard and settles over this long after it (a raised-cosine ramp each way).
VOICE_PREPARE, VOICE_RELAX = 0.15, 0.12


# The voice check decides only when it hears a voice over most of the phones' speech: in noise so loud
# that it cannot tell (it hears silence under VOICE_TRUST of the phones' speaking frames), the phones do.
VOICE_TRUST = 0.6


def heard_envelope(heard, fps: float, frames: int, speaking=None) -> np.ndarray:
    """[frames, 10] factors from a recording: 0 where no voice is heard (easing in before speech and
    out after it), the loudness scale on the opening articulators where it is, and the formants'
    scales (formants.opening_scale on the jaw, formants.rounding_scale on the pucker) on vowels.

    speaking: optional boolean per frame, where the phones say someone speaks (for the trust check)."""
    from . import formants, voice

    samples, rate = heard
    active, level = voice.analyse(samples, rate, fps, frames)
    out = np.ones((frames, N_ART))
    trusted = speaking is None or not speaking.any() or active[speaking].mean() >= VOICE_TRUST
    if trusted and not active.all():
        out *= voice_gate(active, fps)[:, None]
    scale = np.clip(np.maximum(level, 1e-6) ** LOUDNESS_POWER, *LOUDNESS_RANGE)
    scale = np.where(active, scale, 1.0)
    out[:, _OPENING] *= scale[:, None]
    # the vowel's own formants: a higher F1 than the speaker's typical one opens the jaw wider, a
    # lower F2 rounds the lips more (backend/engines/phonetic/formants.py)
    tracks = formants.formant_tracks(samples, rate)
    out[:, JAW] *= formants.opening_scale(samples, rate, fps, frames, tracks)
    out[:, PUCKER] *= formants.rounding_scale(samples, rate, fps, frames, tracks)
    return out


def voice_gate(active: np.ndarray, fps: float) -> np.ndarray:
    """1 while a voice is heard, easing to 0 from VOICE_RELAX after it to VOICE_PREPARE before the next."""
    gate = active.astype(np.float64)
    if not active.any():
        return gate
    times = np.arange(active.size) / float(fps)
    on = np.flatnonzero(active)
    # time to the nearest voiced frame ahead and behind
    nxt = np.searchsorted(on, np.arange(active.size))
    ahead = np.where(nxt < on.size, times[on[np.minimum(nxt, on.size - 1)]] - times, np.inf)
    prv = nxt - 1 + active.astype(np.int64)  # an active frame is its own nearest behind
    behind = np.where(prv >= 0, times - times[on[np.maximum(prv, 0)]], np.inf)
    rising = 1.0 - _ramp(ahead / VOICE_PREPARE)
    falling = 1.0 - _ramp(behind / VOICE_RELAX)
    return np.where(active, 1.0, np.maximum(rising, falling))


def frame_count(duration: float, fps: float) -> int:
    return max(1, int(round(duration * fps)))


JAW_STRETCH = 0.6  # mouthStretch per unit of jawOpen, lips not rounded
JAW_LOWER = 0.8  # mouthLowerDown per unit of jawOpen
JAW_FUNNEL = 0.2  # mouthFunnel per unit of jawOpen: talking lips are a little forward, not only on rounded sounds
SPREAD_STRETCH, SPREAD_SMILE = 0.25, 0.3  # spread lips: the corners pulled apart, and up


def to_arkit(art: np.ndarray, asymmetry: float = 0.0) -> np.ndarray:
    """ARKit-52 weights [frames, 52] (mouth channels only) from articulator values.

    `asymmetry` in [-0.1, 0.1] makes the left side that much stronger than the right (faces are
    not symmetric; a fixed small imbalance per take reads as a person, not a puppet).
    """
    w = np.zeros((art.shape[0], 52), np.float64)
    jaw, close, press = art[:, JAW], art[:, CLOSE], art[:, PRESS]
    pucker, funnel, tuck = art[:, PUCKER], art[:, FUNNEL], art[:, TUCK]
    # rounding and spreading pull the lip corners in opposite directions
    unrounded = 1.0 - np.clip(1.2 * np.maximum(pucker, funnel), 0.0, 1.0)
    spread = art[:, SPREAD] * unrounded
    opening = 1.0 - close  # a lip seal cancels whatever else parts the lips
    # An opening jaw draws the lip corners down and apart and the lower lip with it (unless rounded
    # or tucked): the mouth of an "ah" is wider and shows the lower teeth, not a jaw drop alone.
    jaw_stretch = JAW_STRETCH * jaw * unrounded * opening
    jaw_lower = JAW_LOWER * jaw * opening
    w[:, INDEX["jawOpen"]] = jaw
    w[:, INDEX["mouthClose"]] = close * jaw  # ARKit's lip closure works against jawOpen
    w[:, INDEX["mouthFunnel"]] = (funnel + JAW_FUNNEL * jaw) * opening
    w[:, INDEX["mouthPucker"]] = pucker * (1.0 - 0.3 * close)
    w[:, INDEX["mouthRollLower"]] = 0.55 * tuck + 0.15 * press
    w[:, INDEX["mouthRollUpper"]] = 0.15 * press
    w[:, INDEX["mouthShrugLower"]] = 0.25 * tuck + 0.3 * press
    w[:, INDEX["mouthShrugUpper"]] = 0.12 * press
    w[:, INDEX["tongueOut"]] = art[:, TONGUE]
    sides = {
        "mouthPress": press,
        "mouthStretch": SPREAD_STRETCH * spread + jaw_stretch,
        "mouthSmile": SPREAD_SMILE * spread,
        "mouthDimple": 0.1 * spread,
        "mouthLowerDown": (art[:, LOWER] * opening + jaw_lower) * (1.0 - tuck),
        "mouthUpperUp": art[:, UPPER] * opening + 0.1 * tuck,
    }
    for name, value in sides.items():
        w[:, INDEX[name + "Left"]] = value * (1.0 + asymmetry)
        w[:, INDEX[name + "Right"]] = value * (1.0 - asymmetry)
    return np.clip(w, 0.0, 1.0)


def mouth_curves(phonemes, duration: float, fps: float, asymmetry: float = 0.0) -> np.ndarray:
    """ARKit-52 weights [frames, 52] with only the mouth channels set."""
    return to_arkit(articulators(phonemes, duration, fps), asymmetry).astype(np.float32)
