"""The face around the mouth: blinks, brows that follow emphasis, eyes that fixate and jump, and the
head's nods and tilts.

Each layer draws from its own seeded random stream, so a take is reproducible for its seed and a
change to one layer leaves the others as they were. Everything is a smooth function of time
sampled at the frame times, so the layers look the same at any frame rate. The eyes (blinks, gaze,
lids), the moods and the head motion model are the shared ones in `exomni_blender.core.face`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exomni_blender.core import face
from exomni_blender.core.arkit import INDEX
from . import ipa

SENTENCE_PAUSE = 0.25  # a pause at least this long ends a sentence (or a clause spoken like one)
PHRASE_PAUSE = 0.2

# Brows: raised on the most prominent syllable of a phrase, sometimes on other strong ones.
BROW_NUCLEUS_CHANCE = 0.3  # plus 0.35 x emphasis: about two phrases in three for a stressed nucleus
BROW_OTHER_CHANCE = 0.15  # times emphasis, for syllables almost as prominent as the nucleus
BROW_SPACING = 0.6
BROW_ATTACK, BROW_LEAD, BROW_RELEASE = 0.15, 0.12, 0.35

@dataclass
class Syllable:
    start: float
    end: float
    emphasis: float


def _ease(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def pauses(phonemes, duration: float) -> list[tuple[float, float]]:
    """Silent gaps between phonemes (and after the last one), as (start, end)."""
    out = []
    for (_, _, e0), (_, s1, _) in zip(phonemes, phonemes[1:]):
        if s1 > e0 + 1e-6:
            out.append((e0, s1))
    if phonemes and duration > phonemes[-1][2]:
        out.append((phonemes[-1][2], duration))
    return out


def syllables(phonemes, emphasis=None) -> list[Syllable]:
    """Vowel nuclei with their emphasis: given per phoneme, or from eSpeak's stress marks."""
    out = []
    for i, (symbol, start, end) in enumerate(phonemes):
        if not ipa.is_vowel(symbol):
            continue
        if emphasis is not None:
            e = float(emphasis[i])
        else:
            e = {2: 1.0, 1: 0.4}.get(ipa.split_stress(symbol)[1], 0.0)
        out.append(Syllable(start, end, e))
    return out


# -- brows ------------------------------------------------------------------------------------

def brow_raises(syls: list[Syllable], phrase_breaks, rng: np.random.Generator) -> list[tuple[Syllable, float]]:
    """The syllables that raise the brows, with how high (0..1)."""
    stressed = [s for s in syls if s.emphasis > 0]
    if not stressed:
        return []
    typical = float(np.median([s.end - s.start for s in syls]))
    prominence = {id(s): s.emphasis * ((s.end - s.start) / max(typical, 1e-3)) ** 0.7 for s in stressed}
    phrases: list[list[Syllable]] = [[]]
    breaks = sorted(phrase_breaks)
    b = 0
    for s in stressed:
        while b < len(breaks) and s.start >= breaks[b]:
            b += 1
            phrases.append([])
        phrases[-1].append(s)
    chosen: list[tuple[Syllable, float]] = []
    for phrase in phrases:
        if not phrase:
            continue
        top = max(phrase, key=lambda s: prominence[id(s)])
        best = prominence[id(top)]
        for s in phrase:
            p = prominence[id(s)]
            chance = BROW_NUCLEUS_CHANCE + 0.35 * s.emphasis if s is top else (
                BROW_OTHER_CHANCE * s.emphasis if p >= 0.85 * best else 0.0)
            draw = rng.random()
            height = rng.uniform(0.25, 0.45) * min(1.0, p / max(best, 1e-6)) ** 0.5
            pace = rng.uniform(0.8, 1.25)  # no two raises move quite alike
            if draw < chance and all(abs(s.start - c.start) >= BROW_SPACING for c, _, _ in chosen):
                chosen.append((s, height, pace))
    return chosen


def brow_curve(times: np.ndarray, raises) -> np.ndarray:
    out = np.zeros_like(times)
    for syl, height, pace in raises:
        up = _ease((times - (syl.start - BROW_LEAD * pace)) / (BROW_ATTACK * pace))
        down = 1.0 - _ease((times - syl.end) / (BROW_RELEASE * pace))
        out = np.maximum(out, height * np.minimum(up, down))
    return out


# -- all layers -------------------------------------------------------------------------------

def boundaries(phonemes, duration: float) -> tuple[list[float], list[float]]:
    """(sentence ends, phrase starts after a pause), in seconds."""
    gaps = pauses(phonemes, duration)
    return ([g0 for g0, g1 in gaps if g1 - g0 >= SENTENCE_PAUSE],
            [g1 for g0, g1 in gaps if g1 - g0 >= PHRASE_PAUSE])


def expression_curves(phonemes, duration: float, fps: float, rngs, emphasis=None, arousal: float = 0.0) -> np.ndarray:
    """ARKit-52 weights [frames, 52] with eyes and brows set, mouth channels left at zero.

    `rngs` is a dict of numpy Generators: "blink", "brow", "gaze". `arousal` 0..1 (from the mood)
    makes the eyes blink more often.
    """
    frames = max(1, int(round(duration * fps)))
    times = np.arange(frames) / float(fps)
    w = np.zeros((frames, 52))
    sentence_ends, phrase_breaks = boundaries(phonemes, duration)

    phrase_starts = [phonemes[0][1]] + phrase_breaks if phonemes else []
    w[:] = face.eye_curves(frames, fps, sentence_ends, phrase_starts, rngs["blink"], rngs["gaze"], arousal)

    raises = brow_raises(syllables(phonemes, emphasis), phrase_breaks, rngs["brow"])
    brow = brow_curve(times, raises)
    tilt = rngs["brow"].uniform(-0.1, 0.1)  # one brow a little livelier than the other
    w[:, INDEX["browInnerUp"]] = brow
    w[:, INDEX["browOuterUpLeft"]] = 0.75 * brow * (1 + tilt)
    w[:, INDEX["browOuterUpRight"]] = 0.75 * brow * (1 - tilt)
    w[:, INDEX["eyeWideLeft"]] = 0.15 * brow
    w[:, INDEX["eyeWideRight"]] = 0.15 * brow

    return np.clip(w, 0.0, 1.0)


# -- head -------------------------------------------------------------------------------------

ACCENT_MIN = 0.4  # syllables at least this emphasised get a nod


def head_curves(phonemes, duration: float, fps: float, rng: np.random.Generator, emphasis=None,
                amount: float = 1.0) -> np.ndarray:
    """Head (pitch, yaw, roll) in degrees, [frames, 3]: nods on accented syllables, a tilt at each
    phrase end, slow sway between (the shared model in `exomni_blender.core.face`)."""
    accents = [(s.start + 0.35 * (s.end - s.start), s.emphasis)
               for s in syllables(phonemes, emphasis) if s.emphasis >= ACCENT_MIN]
    sentence_ends, _ = boundaries(phonemes, duration)
    return face.head_motion(duration, fps, accents, sentence_ends, rng, amount)
