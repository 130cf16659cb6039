"""Face helpers shared by the engines, the exchange formats and the Blender side: one definition each
(how far apart the lips are in a frame of ARKit weights, when the eyes blink, how intensity scales a
performance), so a formula never drifts between two copies."""

from __future__ import annotations

import numpy as np

from .arkit import ARKIT_52, INDEX

# -- lip gap --------------------------------------------------------------------------------------

LIPS_TOUCH = 0.05  # a lip gap at or below this: the lips touch


def jaw_parting(weights: np.ndarray) -> np.ndarray:
    """Per frame, how far the jaw parts the lips: jawOpen less what mouthClose holds together."""
    w = np.asarray(weights, np.float64)
    return np.clip(w[:, INDEX["jawOpen"]] - w[:, INDEX["mouthClose"]], 0.0, None)


def lip_gap(weights: np.ndarray) -> np.ndarray:
    """How far apart the lips are per frame, from ARKit weights [frames, 52] (0 = lips touching).

    The jaw parts the lips unless mouthClose holds them together; lowering the lower lip, raising
    the upper lip and funnelling open them further; a lower lip rolled in under the upper teeth
    (f, v) closes the gap again.
    """
    w = np.asarray(weights, np.float64)
    lower = 0.5 * (w[:, INDEX["mouthLowerDownLeft"]] + w[:, INDEX["mouthLowerDownRight"]])
    upper = 0.5 * (w[:, INDEX["mouthUpperUpLeft"]] + w[:, INDEX["mouthUpperUpRight"]])
    tucked = np.clip(w[:, INDEX["mouthRollLower"]] / 0.5, 0.0, 1.0)
    return (jaw_parting(w) + 0.5 * lower + 0.5 * upper + 0.3 * w[:, INDEX["mouthFunnel"]]) * (1.0 - 0.8 * tucked)


def lips_closed(weights: np.ndarray) -> np.ndarray:
    """Per frame: the lips touch (lip gap at most LIPS_TOUCH)."""
    return lip_gap(weights) <= LIPS_TOUCH


# -- intensity ------------------------------------------------------------------------------------

# Blinking is not louder when shouting: intensity leaves the eyelids alone.
_UNSCALED = np.array([name.startswith("eyeBlink") for name in ARKIT_52])


def scale_intensity(weights: np.ndarray, intensity: float) -> np.ndarray:
    """ARKit-52 weights [frames, 52] scaled around rest (all zeros) by a delivery's intensity."""
    w = np.asarray(weights, np.float32)
    if abs(intensity - 1.0) < 1e-6:
        return w
    scale = np.where(_UNSCALED, 1.0, float(intensity)).astype(np.float32)
    return np.clip(w * scale, 0.0, 1.0).astype(np.float32)


# -- blinks ---------------------------------------------------------------------------------------
# One blink generator for the engines' takes and the dialogue scene's idle layer. Timings after
# eyelid kinematics: the lid shuts in about 50 ms, stays shut briefly and opens more slowly.

BLINK_CLOSE, BLINK_HOLD, BLINK_OPEN = 0.05, 0.015, 0.085  # seconds
BLINK_INTERVAL = (2.0, 6.0)  # seconds between blinks, at rest
BLINK_MEAN_INTERVAL = 3.6
BLINK_AT_BOUNDARY = 0.6  # chance of a blink in a pause after a phrase
BLINK_REFRACTORY = 1.2  # no boundary blink this soon after the previous one
DOUBLE_BLINK = 0.12  # chance that a blink is followed by a second one


def _ease(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def blink_onsets(duration: float, rng: np.random.Generator, boundaries=(), arousal: float = 0.0) -> list[float]:
    """Onsets (seconds) of blinks over `duration`: a renewal process drawn to phrase `boundaries`.

    arousal 0..1 (stress, fear, anger) shortens the intervals: people blink more under stress."""
    times: list[float] = []
    ends = sorted(boundaries)
    mean = BLINK_MEAN_INTERVAL / (1.0 + 0.8 * float(np.clip(arousal, 0.0, 1.0)))
    low, high = (b * mean / BLINK_MEAN_INTERVAL for b in BLINK_INTERVAL)
    last = -np.inf
    t = rng.uniform(0.4, 2.2) * mean / BLINK_MEAN_INTERVAL
    shape = 6.0
    while t < duration - 0.1:
        for e in ends:
            if last + BLINK_REFRACTORY < e < t and rng.random() < BLINK_AT_BOUNDARY:
                t = e + rng.uniform(0.02, 0.12)
                break
        times.append(t)
        last = t
        if rng.random() < DOUBLE_BLINK:
            last = t + rng.uniform(0.22, 0.32)
            times.append(last)
        t = last + float(np.clip(rng.gamma(shape, mean / shape), low, high))
    return [b for b in times if b < duration]


def blink_curve(times: np.ndarray, onsets, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure in [0, 1] at `times` (seconds); the shut lid lasts at least one frame so it is seen."""
    times = np.asarray(times, np.float64)
    out = np.zeros_like(times)
    hold = max(BLINK_HOLD, 1.0 / fps)
    for onset in onsets:
        amp = rng.uniform(0.92, 1.0)
        close = _ease((times - onset) / BLINK_CLOSE)
        opening = 1.0 - _ease((times - onset - BLINK_CLOSE - hold) / BLINK_OPEN)
        out = np.maximum(out, amp * np.minimum(close, opening))
    return out


# -- eyes -----------------------------------------------------------------------------------------
# One eye generator for both engines: blinks drawn to the ends of phrases, fixations with small
# saccades between them (often one as a phrase starts), and the upper lid following the eye down.
# Every random draw happens in time order (each stream drawn in the order the events occur), so the
# eyes up to a moment depend only on the speech up to a little after it (EYES_LOOKAHEAD): an engine
# that streams its frames can key them before the rest of the line exists.

SACCADE_INTERVAL = (0.6, 4.5)
SACCADE_MEAN_INTERVAL = 1.8
SACCADE_TIME = (0.03, 0.05)
SACCADE_LEAD = (0.05, 0.15)  # how long before a phrase starts the eyes move
SACCADE_MIN_GAP = 0.3
GAZE_SPREAD = (0.06, 0.035)  # horizontal, vertical (ARKit eyeLook* weight)
GAZE_LIMIT = (0.18, 0.1)
DRIFT = 0.003  # fixational tremor only: between saccades the eyes hold still
LID_FOLLOWS_GAZE = 0.35  # the upper lid follows the eye down (blink weight per eyeLookDown)
# How far ahead of a frame the eyes look: a blink is not begun in the last 0.1 s known, a saccade
# leads its phrase by up to SACCADE_LEAD[1]. A frame further than this from the end known is final.
EYES_LOOKAHEAD = 0.2


def _child(rng: np.random.Generator) -> np.random.Generator:
    return np.random.default_rng(int(rng.integers(0, 2**63)))


def saccade_times(duration: float, phrase_starts, rng: np.random.Generator) -> list[float]:
    """Saccade onsets (seconds): a renewal process, plus one just before about half the phrase starts;
    none closer than SACCADE_MIN_GAP to the previous one."""
    renewal, lead = _child(rng), _child(rng)  # two streams, so a later phrase start moves no earlier draw
    times = []
    t = renewal.uniform(0.3, 1.5)
    shape = 3.0
    while t < duration:
        times.append(t)
        t += float(np.clip(renewal.gamma(shape, SACCADE_MEAN_INTERVAL / shape), *SACCADE_INTERVAL))
    for s in sorted(phrase_starts):  # people often look somewhere new as they start a phrase
        chance, early = lead.random(), lead.uniform(*SACCADE_LEAD)
        if chance < 0.5:
            times.append(max(0.0, s - early))
    merged = []
    for t in sorted(times):
        if not merged or t - merged[-1] >= SACCADE_MIN_GAP:
            merged.append(t)
    return merged


def gaze_curves(times: np.ndarray, saccades, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(horizontal, vertical) gaze per frame; + is the subject's left / up."""
    times = np.asarray(times, np.float64)
    phases = rng.uniform(0, 2 * np.pi, size=4)  # drawn first: later saccades leave them alone
    x = np.zeros_like(times)
    y = np.zeros_like(times)
    gx, gy = rng.normal(0, GAZE_SPREAD[0] * 0.5), rng.normal(0, GAZE_SPREAD[1] * 0.5)
    x += gx
    y += gy
    for t in saccades:
        nx = float(np.clip(0.55 * gx + rng.normal(0, GAZE_SPREAD[0]), -GAZE_LIMIT[0], GAZE_LIMIT[0]))
        ny = float(np.clip(0.5 * gy + rng.normal(0, GAZE_SPREAD[1]), -GAZE_LIMIT[1], GAZE_LIMIT[1]))
        step = _ease((times - t) / rng.uniform(*SACCADE_TIME))
        x += (nx - gx) * step
        y += (ny - gy) * step
        gx, gy = nx, ny
    for k, axis in enumerate((x, y)):
        for j, freq in enumerate((0.31, 0.73)):
            axis += DRIFT * np.sin(2 * np.pi * freq * times + phases[2 * k + j])
    return x, y


def eye_curves(frames: int, fps: float, phrase_ends, phrase_starts, blink_rng: np.random.Generator,
               gaze_rng: np.random.Generator, arousal: float = 0.0) -> np.ndarray:
    """ARKit-52 weights [frames, 52] with only the eyes set (eyeBlink*, eyeSquint* with the blink,
    eyeLook*): blinks drawn to `phrase_ends`, saccades (one often just before a `phrase_starts`), the
    lids following the gaze down. `arousal` 0..1 (from the mood) makes the eyes blink more often."""
    frames = max(1, int(frames))
    times = np.arange(frames) / float(fps)
    duration = frames / float(fps)
    w = np.zeros((frames, len(ARKIT_52)))
    depth = _child(blink_rng)  # each blink's depth from its own stream, drawn blink by blink
    blink = blink_curve(times, blink_onsets(duration, blink_rng, phrase_ends, arousal), fps, depth)
    for side in ("Left", "Right"):
        w[:, INDEX[f"eyeBlink{side}"]] = blink
        w[:, INDEX[f"eyeSquint{side}"]] = 0.1 * blink
    x, y = gaze_curves(times, saccade_times(duration, phrase_starts, gaze_rng), gaze_rng)
    left, right = np.clip(x, 0, None), np.clip(-x, 0, None)
    w[:, INDEX["eyeLookOutLeft"]] = left  # looking to the subject's left: left eye out, right eye in
    w[:, INDEX["eyeLookInRight"]] = left
    w[:, INDEX["eyeLookInLeft"]] = right
    w[:, INDEX["eyeLookOutRight"]] = right
    up, down = np.clip(y, 0, None), np.clip(-y, 0, None)
    for side in ("Left", "Right"):
        w[:, INDEX[f"eyeLookUp{side}"]] = up
        w[:, INDEX[f"eyeLookDown{side}"]] = down
        lid = INDEX[f"eyeBlink{side}"]  # the upper lid follows the eye down; a blink still shuts it
        w[:, lid] = np.maximum(w[:, lid], LID_FOLLOWS_GAZE * down)
    return np.clip(w, 0.0, 1.0)


# -- mood -----------------------------------------------------------------------------------------
# Each mood is the few channels people read it from (FACS prototypes: AU6+12 happy, AU1+4+15 sad,
# AU4+5+7+23 angry, AU1+2+5 surprise, AU1+2+4+5+20 fear, AU9+10 disgust), at intensity 1. None of
# them parts the lips (jawOpen, mouthClose, mouthLowerDown*, mouthUpperUp*, mouthFunnel,
# mouthRollLower), so closures on p/b/m and the mouth at rest stay exactly as the mouth made them.

MOODS = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 0.45, "mouthSmileRight": 0.45, "cheekSquintLeft": 0.35, "cheekSquintRight": 0.35,
              "eyeSquintLeft": 0.2, "eyeSquintRight": 0.2, "mouthDimpleLeft": 0.1, "mouthDimpleRight": 0.1},
    "sad": {"browInnerUp": 0.45, "mouthFrownLeft": 0.4, "mouthFrownRight": 0.4, "browDownLeft": 0.12,
            "browDownRight": 0.12, "mouthShrugLower": 0.15},
    "angry": {"browDownLeft": 0.55, "browDownRight": 0.55, "noseSneerLeft": 0.3, "noseSneerRight": 0.3,
              "eyeSquintLeft": 0.25, "eyeSquintRight": 0.25, "mouthPressLeft": 0.2, "mouthPressRight": 0.2,
              "eyeWideLeft": 0.1, "eyeWideRight": 0.1},
    "surprised": {"browInnerUp": 0.5, "browOuterUpLeft": 0.55, "browOuterUpRight": 0.55, "eyeWideLeft": 0.45,
                  "eyeWideRight": 0.45},
    "afraid": {"browInnerUp": 0.55, "browOuterUpLeft": 0.2, "browOuterUpRight": 0.2, "eyeWideLeft": 0.4,
               "eyeWideRight": 0.4, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3, "browDownLeft": 0.1,
               "browDownRight": 0.1},
    "disgusted": {"noseSneerLeft": 0.5, "noseSneerRight": 0.5, "browDownLeft": 0.3, "browDownRight": 0.3,
                  "eyeSquintLeft": 0.2, "eyeSquintRight": 0.2, "cheekSquintLeft": 0.2, "cheekSquintRight": 0.2,
                  "mouthFrownLeft": 0.15, "mouthFrownRight": 0.15},
}
MOOD_NAMES = tuple(MOODS)
# How a mood changes the voice at intensity 1, as multipliers: (rate, pitch). Sad is slower and
# lower; fear, anger and surprise faster and higher (vocal-affect studies agree on these directions).
MOOD_VOICE = {"neutral": (1.0, 1.0), "happy": (1.05, 1.08), "sad": (0.88, 0.92), "angry": (1.08, 1.05),
              "surprised": (1.05, 1.15), "afraid": (1.12, 1.1), "disgusted": (0.95, 0.95)}
# How much a mood raises the blink rate (0..1).
MOOD_AROUSAL = {"neutral": 0.0, "happy": 0.1, "sad": 0.0, "angry": 0.6, "surprised": 0.3, "afraid": 0.8,
                "disgusted": 0.3}
MOOD_EASE = 0.3  # seconds the mood takes to settle in at the start of a take and to leave at its end


def check_mood(mood: str) -> str:
    if mood not in MOODS:
        raise ValueError(f"unknown mood {mood!r}; the moods are {', '.join(MOOD_NAMES)}")
    return mood


def mood_curves(frames: int, fps: float, mood: str, intensity: float = 1.0) -> np.ndarray:
    """The mood's layer: ARKit-52 weights [frames, 52] to add to a neutral performance.

    Steady over the take, easing in over its first MOOD_EASE seconds and out over its last (so a
    take's strip starts and ends at neutral); scaled by intensity 0..1. Depends only on its
    arguments, so the Blender side can key the same layer again, or another mood's, from a take."""
    check_mood(mood)
    out = np.zeros((int(frames), len(ARKIT_52)), np.float32)
    if not MOODS[mood] or frames <= 0 or intensity <= 0:
        return out
    t = np.arange(int(frames)) / float(fps)
    span = (frames - 1) / float(fps)
    ease = min(MOOD_EASE, span / 2) or 1.0
    envelope = _ease(t / ease) * _ease((span - t) / ease) if span > 0 else np.ones(1)
    for name, value in MOODS[mood].items():
        out[:, INDEX[name]] = value * float(np.clip(intensity, 0.0, 1.0)) * envelope
    return out


def mood_voice(mood: str, intensity: float = 1.0) -> tuple[float, float]:
    """(rate, pitch) multipliers for a mood at an intensity."""
    rate, pitch = MOOD_VOICE[check_mood(mood)]
    k = float(np.clip(intensity, 0.0, 1.0))
    return 1.0 + (rate - 1.0) * k, 1.0 + (pitch - 1.0) * k


def with_mood(weights: np.ndarray, fps: float, mood: str, intensity: float = 1.0) -> np.ndarray:
    """A neutral performance [frames, 52] with the mood's layer added (in [0, 1])."""
    w = np.asarray(weights, np.float32)
    return np.clip(w + mood_curves(w.shape[0], fps, mood, intensity), 0.0, 1.0).astype(np.float32)


# -- head motion ----------------------------------------------------------------------------------
# Head rotation in degrees: pitch (+ nods down), yaw (+ turns to the subject's left), roll (+ tilts to
# the subject's left). People nod on accented syllables, tilt at phrase ends and sway a little in
# pauses, within a few degrees.

HEAD_LIMIT_DEG = 10.0
NOD_DEG = (1.2, 3.0)  # a nod on an accented syllable, for accent strength 0.4 .. 1
NOD_RISE, NOD_FALL = 0.12, 0.28  # seconds
TILT_DEG = 2.0
SWAY_DEG = 0.8


def head_motion(duration: float, fps: float, accents, phrase_ends, rng: np.random.Generator,
                amount: float = 1.0) -> np.ndarray:
    """(pitch, yaw, roll) in degrees, [frames, 3], from the speech's accents [(seconds, strength 0..1)]
    and phrase ends (seconds). Smooth, seeded, within +-HEAD_LIMIT_DEG; `amount` scales it (0 = still)."""
    frames = max(1, int(round(duration * fps)))
    t = np.arange(frames) / float(fps)
    out = np.zeros((frames, 3))
    for at, strength in accents:  # a nod: down fast to a peak on the vowel, back slowly
        if strength <= 0:
            continue
        depth = np.interp(strength, (0.4, 1.0), NOD_DEG) * rng.uniform(0.8, 1.2)
        rise = _ease((t - (at - NOD_RISE)) / NOD_RISE)
        fall = 1.0 - _ease((t - at) / NOD_FALL)
        out[:, 0] += depth * np.minimum(rise, fall)
        out[:, 1] += 0.3 * depth * rng.uniform(-1, 1) * np.minimum(rise, fall)
    level = 0.0  # a tilt set at a phrase end, held until the next
    for end in sorted(phrase_ends):
        new = float(np.clip(0.6 * level + rng.normal(0, TILT_DEG), -2 * TILT_DEG, 2 * TILT_DEG))
        out[:, 2] += (new - level) * _ease((t - end) / 0.5)
        level = new
    for axis, scale in ((0, 0.5), (1, 1.0), (2, 0.5)):  # slow sway, two incommensurate sines
        for freq in (0.17, 0.29):
            out[:, axis] += SWAY_DEG * scale * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    out *= max(0.0, float(amount))
    ease = _ease(t / 0.3) * _ease((t[-1] - t) / 0.3) if frames > 1 else np.ones(1)
    return np.clip(out * ease[:, None], -HEAD_LIMIT_DEG, HEAD_LIMIT_DEG).astype(np.float32)


def speech_marks(weights: np.ndarray, fps: float, pause: float = 0.25) -> tuple[list, list]:
    """(accents [(seconds, strength 0..1)], phrase ends [seconds]) read from a performance's mouth,
    for engines without a phoneme timeline: accents are the widest openings (a local maximum of the
    jaw's parting, at least 0.4 of the take's widest, 0.3 s apart), phrase ends the starts of pauses
    (the lips near rest for at least `pause` seconds) after speech has begun."""
    opening = jaw_parting(weights)
    if opening.size == 0 or opening.max() <= LIPS_TOUCH:
        return [], []
    kernel = np.ones(max(1, int(round(0.08 * fps))))
    smooth = np.convolve(opening, kernel / kernel.size, mode="same")
    top = float(smooth.max())
    accents: list = []
    for i in range(1, smooth.size - 1):
        if smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1] and smooth[i] >= 0.4 * top:
            t, strength = i / float(fps), float(smooth[i] / top)
            if accents and t - accents[-1][0] < 0.3:
                if strength > accents[-1][1]:
                    accents[-1] = (t, strength)
                continue
            accents.append((t, strength))
    quiet = opening <= LIPS_TOUCH
    ends, run_start, spoken = [], None, False
    for i, q in enumerate(np.append(quiet, False)):
        if q and run_start is None:
            run_start = i
        elif not q:
            if run_start is not None and spoken and (i - run_start) / float(fps) >= pause:
                ends.append(run_start / float(fps))
            run_start, spoken = None, True
    return accents, ends


def pause_marks(weights: np.ndarray, fps: float, pause: float = 0.25) -> tuple[list, list]:
    """(pauses, phrase starts) in seconds, read from a performance's mouth as it goes, for engines
    without a phoneme timeline: a pause is marked when the lips have been near rest for `pause`
    seconds after speech began (at that moment, not where it started), a phrase start where the lips
    part again after a pause. Each mark depends only on the frames up to it (a streamed take can
    place its eyes before the rest of the line exists)."""
    quiet = jaw_parting(weights) <= LIPS_TOUCH
    need = max(1, int(np.ceil(pause * fps - 1e-9)))
    pauses, starts, run, spoken, paused = [], [], 0, False, False
    for i, q in enumerate(quiet):
        if q:
            run += 1
            if spoken and run == need:
                pauses.append(i / float(fps))
                paused = True
        else:
            if paused:
                starts.append(i / float(fps))
            run, spoken, paused = 0, True, False
    return pauses, starts


def speech_eyes(weights: np.ndarray, fps: float, seed: int, arousal: float = 0.0) -> np.ndarray:
    """The eyes (`eye_curves`) for a performance without a phoneme timeline, from its mouth's pauses
    (`pause_marks`), seeded. Row i is the same for any prefix of `weights` that reaches
    EYES_LOOKAHEAD seconds past it: what a streaming engine relies on."""
    frames = np.asarray(weights).shape[0]
    if frames == 0:
        return np.zeros((0, len(ARKIT_52)))
    pauses, starts = pause_marks(weights, fps)
    blink_seed, gaze_seed = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, 5]).spawn(2)
    return eye_curves(frames, fps, pauses, starts, np.random.default_rng(blink_seed),
                      np.random.default_rng(gaze_seed), arousal)


def mood_arousal(mood: str, intensity: float = 1.0) -> float:
    """How much a mood at an intensity raises the blink rate (0..1)."""
    return MOOD_AROUSAL[check_mood(mood)] * float(np.clip(intensity, 0.0, 1.0))


# -- what a take records about its performance ------------------------------------------------------
# Keys of Take.meta: the mood and its intensity (so the Blender side can lay the mood out as its own
# layer and replace it), and the head's rotation per frame at the take's fps, [pitch, yaw, roll] in
# degrees (the Blender side keys it on the head; Live Link Face carries it as HeadPitch/Yaw/Roll).

MOOD, INTENSITY, HEAD_MOTION, HEAD_ROTATION = "mood", "intensity", "head_motion", "head_rotation"


def performance_meta(mood: str, intensity: float, head_motion: float) -> dict:
    return {MOOD: check_mood(mood), INTENSITY: round(float(intensity), 4), HEAD_MOTION: round(float(head_motion), 4)}


def head_rotation_json(rotation: np.ndarray) -> list:
    return np.round(np.asarray(rotation, np.float64), 3).tolist()


def head_rotation(meta: dict, frames: int | None = None) -> np.ndarray | None:
    """The head rotation [frames, 3] (pitch, yaw, roll; degrees) a take's meta holds, or None."""
    rows = (meta or {}).get(HEAD_ROTATION)
    if not rows:
        return None
    rotation = np.asarray(rows, np.float32).reshape(-1, 3)
    if frames is not None and rotation.shape[0] != frames:  # a take trimmed or padded after the fact
        rotation = rotation[:frames] if rotation.shape[0] > frames else np.vstack(
            [rotation, np.repeat(rotation[-1:], frames - rotation.shape[0], axis=0)])
    return rotation


def mood_of(meta: dict) -> tuple[str, float]:
    """(mood, intensity) a take's meta records; neutral when it records none."""
    meta = meta or {}
    mood = meta.get(MOOD, "neutral")
    return (mood if mood in MOODS else "neutral"), float(meta.get(INTENSITY, 1.0))
