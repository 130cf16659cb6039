"""A phoneme timeline to ARKit-52 curves: the coarticulated mouth plus the seeded face layers.

`curves_from_phonemes` is the one entry point: the phonetic engine feeds it eSpeak's timeline,
and any other source of timed IPA phonemes (a forced aligner, a recogniser) can feed it too.
"""

from __future__ import annotations

import math
import time
from typing import Optional, Sequence

import numpy as np

from exomni_blender.core import face
from exomni_blender.core.arkit import ARKIT_52, MOUTH_CHANNELS
from . import expression, visemes

_FACE = np.array([i for i, n in enumerate(ARKIT_52) if n not in MOUTH_CHANNELS])
MAX_ASYMMETRY = 0.05


def normalise_phonemes(phonemes) -> list[tuple[str, float, float]]:
    """(symbol, start, end) tuples sorted by start, from Phoneme objects, dicts or tuples."""
    out = []
    for p in phonemes:
        if isinstance(p, dict):
            symbol, start, end = p["symbol"], p["start"], p["end"]
        elif hasattr(p, "symbol"):
            symbol, start, end = p.symbol, p.start, p.end
        else:
            symbol, start, end = p
        start, end = float(start), float(end)
        if not (math.isfinite(start) and math.isfinite(end)) or end < start:
            raise ValueError(f"phoneme {symbol!r} has start {start} and end {end}; "
                             "times must be finite seconds with end >= start")
        out.append((str(symbol), start, end))
    out.sort(key=lambda p: p[1])
    return out


def random_streams(seed: int) -> dict:
    """Independent generators per layer, all from one seed."""
    names = ("mouth", "blink", "brow", "gaze", "head")  # new names go last: earlier streams stay as they were
    children = np.random.SeedSequence(int(seed) & 0xFFFFFFFFFFFFFFFF).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}


def curves_from_phonemes(phonemes, duration: float, fps: float, seed: int = 0, mouth_only: bool = False,
                         emphasis: Optional[Sequence[float]] = None, timings: Optional[dict] = None,
                         mood: str = "neutral", intensity: float = 1.0, heard=None) -> np.ndarray:
    """ARKit-52 weights, float32 [frames, 52] in [0, 1], for timed IPA phonemes.

    phonemes: Phoneme objects, {"symbol", "start", "end"} dicts or (symbol, start, end) tuples,
        in seconds; stress marks (ˈ ˌ) on vowels drive the brows. Gaps between phonemes are pauses.
    duration: seconds the curves cover; frames = round(duration * fps), frame k at k / fps.
    seed: blinks, brow choices, gaze and the face's slight asymmetry follow it; same seed, same curves.
    mouth_only: leave every channel but the mouth (jaw, mouth*, cheekPuff, tongueOut) at zero.
    emphasis: optional 0..1 per phoneme, used instead of stress marks to pick brow raises.
    timings: optional dict that receives seconds spent per stage ("mouth", "expression").
    mood, intensity: the mood's layer (`exomni_blender.core.face.mood_curves`) added on top, and its
        arousal in the blink rate; none of a mood's channels parts the lips. Not with mouth_only.
    heard: optional (samples, sample_rate) of the speech itself (a recording, or the synthesized
        line): the mouth rests where no voice is heard and opens wider on louder syllables.
    """
    face.check_mood(mood)
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}")
    if not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be a non-negative number of seconds, got {duration!r}")
    timeline = normalise_phonemes(phonemes)
    if emphasis is not None:
        if len(emphasis) != len(timeline):
            raise ValueError(f"emphasis has {len(emphasis)} values for {len(timeline)} phonemes; give one per phoneme")
        order = sorted(range(len(timeline)), key=lambda i: float(_start(phonemes[i])))
        emphasis = [float(emphasis[i]) for i in order]
    rngs = random_streams(seed)
    t0 = time.perf_counter()
    asymmetry = float(rngs["mouth"].uniform(-MAX_ASYMMETRY, MAX_ASYMMETRY))
    weights = visemes.to_arkit(visemes.articulators(timeline, duration, fps, heard), asymmetry)
    t1 = time.perf_counter()
    if not mouth_only:
        arousal = face.MOOD_AROUSAL[mood] * float(np.clip(intensity, 0.0, 1.0))
        around = expression.expression_curves(timeline, duration, fps, rngs, emphasis, arousal)
        weights[:, _FACE] = around[:, _FACE]
        weights = face.with_mood(weights, fps, mood, intensity)
    t2 = time.perf_counter()
    if timings is not None:
        timings["mouth"] = timings.get("mouth", 0.0) + (t1 - t0)
        timings["expression"] = timings.get("expression", 0.0) + (t2 - t1)
    return np.clip(weights, 0.0, 1.0).astype(np.float32)


def head_from_phonemes(phonemes, duration: float, fps: float, seed: int = 0, amount: float = 1.0,
                       emphasis: Optional[Sequence[float]] = None) -> np.ndarray:
    """Head (pitch, yaw, roll) in degrees, float32 [frames, 3], frames as `curves_from_phonemes`."""
    timeline = normalise_phonemes(phonemes)
    if emphasis is not None:
        order = sorted(range(len(timeline)), key=lambda i: float(_start(phonemes[i])))
        emphasis = [float(emphasis[i]) for i in order]
    return expression.head_curves(timeline, duration, fps, random_streams(seed)["head"], emphasis, amount)


def performance(phonemes, duration: float, request, emphasis: Optional[Sequence[float]] = None,
                timings: Optional[dict] = None, heard=None) -> tuple[np.ndarray, dict]:
    """(weights [frames, 52], meta) for a take request: the face with the request's mood, and the
    head's rotation in `meta` (`exomni_blender.core.face.HEAD_ROTATION`) unless mouth-only or still.

    One assembly for every phonetic mode (say, lipsync), so each honours mood, intensity and head
    motion the same way; `heard` is the speech's audio (samples, sample_rate) in both."""
    mouth_only = bool(request.mouth_only)
    mood = "neutral" if mouth_only else request.mood
    weights = curves_from_phonemes(phonemes, duration, request.fps, request.seed, mouth_only=mouth_only,
                                   emphasis=emphasis, timings=timings, mood=mood, intensity=request.intensity,
                                   heard=heard)
    meta = face.performance_meta(mood, request.intensity, 0.0 if mouth_only else request.head_motion)
    if not mouth_only and request.head_motion > 0:
        t = time.perf_counter()
        head = head_from_phonemes(phonemes, duration, request.fps, request.seed, request.head_motion, emphasis)
        meta[face.HEAD_ROTATION] = face.head_rotation_json(head[:weights.shape[0]])
        if timings is not None:
            timings["head"] = timings.get("head", 0.0) + (time.perf_counter() - t)
    return weights, meta


def _start(p) -> float:
    if isinstance(p, dict):
        return p["start"]
    if hasattr(p, "start"):
        return p.start
    return p[1]
