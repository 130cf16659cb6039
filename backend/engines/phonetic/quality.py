"""Measures of lip-sync quality on a take: does the mouth follow the sound, rest in pauses, close on p/b/m?

Used by the tests and the benchmark; they work on any take with audio and a phoneme timeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import visemes
from .ipa import split_stress

BILABIALS = ("p", "b", "m")
REST_LEVEL = 0.05  # every mouth channel at or below this: the mouth is at rest
REST_PAUSE = 0.2  # pauses at least this long must show the mouth at rest
REST_MARGIN = 0.3  # ...over their middle: this share of the pause is allowed at each end for easing


def audio_envelope(audio: np.ndarray, sample_rate: int, fps: float, frames: int) -> np.ndarray:
    """RMS of the audio over each frame's interval [k - 1/2, k + 1/2) / fps."""
    audio = np.asarray(audio, np.float64)
    edges = np.clip(np.round((np.arange(frames + 1) - 0.5) / fps * sample_rate).astype(np.int64), 0, audio.size)
    power = np.concatenate([[0.0], np.cumsum(audio ** 2)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    return np.sqrt((power[edges[1:]] - power[edges[:-1]]) / counts)


def mouth_opening(weights: np.ndarray) -> np.ndarray:
    """How open the mouth looks per frame (the lip gap: jaw less lip closure, plus lip raising)."""
    return visemes.lip_gap(weights)


def cross_correlation(envelope: np.ndarray, opening: np.ndarray, max_lag: int = 8) -> dict:
    """Normalised correlation per lag in frames; a positive lag means the mouth comes after the sound."""
    x = (envelope - envelope.mean()) / (envelope.std() + 1e-12)
    y = (opening - opening.mean()) / (opening.std() + 1e-12)
    n = min(x.size, y.size)
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            out[lag] = float(np.dot(x[:n - lag], y[lag:n]) / n)
        else:
            out[lag] = float(np.dot(x[-lag:n], y[:n + lag]) / n)
    return out


@dataclass
class Lag:
    frames: int  # best lag, whole frames (positive: mouth late)
    refined: float  # with parabolic interpolation between frames
    correlation: float


def best_lag(envelope: np.ndarray, opening: np.ndarray, max_lag: int = 8) -> Lag:
    c = cross_correlation(envelope, opening, max_lag)
    lag = max(c, key=c.get)
    refined = float(lag)
    if -max_lag < lag < max_lag:
        a, b, d = c[lag - 1], c[lag], c[lag + 1]
        denom = a - 2 * b + d
        if denom < 0:
            refined = lag + 0.5 * (a - d) / denom
    return Lag(lag, refined, c[lag])


def bilabial_closures(phonemes, weights: np.ndarray, fps: float) -> list[tuple[str, float, float, bool]]:
    """For each p/b/m: (symbol, start, smallest lip gap, closed) over the frames inside the phoneme.

    A phoneme shorter than a frame interval is judged on the frame nearest its middle.
    """
    gap = visemes.lip_gap(weights)
    times = np.arange(weights.shape[0]) / fps
    out = []
    for p in phonemes:
        symbol, start, end = (p.symbol, p.start, p.end) if hasattr(p, "symbol") else p
        base, _ = split_stress(symbol)
        if base not in BILABIALS:
            continue
        inside = (times >= start) & (times < end)
        g = float(gap[inside].min()) if inside.any() else float(gap[np.argmin(np.abs(times - 0.5 * (start + end)))])
        out.append((base, start, g, g <= visemes.LIPS_CLOSED_GAP))
    return out


def pause_rest(phonemes, weights: np.ndarray, fps: float, duration: float) -> list[tuple[float, float, float]]:
    """For each pause of REST_PAUSE or more: (start, end, highest mouth channel over its middle).

    The middle is the pause less REST_MARGIN of its length at each end (at least the frame
    nearest its centre); includes the pause after the last phoneme.
    """
    from exomni_blender.core.arkit import INDEX, MOUTH_CHANNELS

    mouth = weights[:, [INDEX[n] for n in MOUTH_CHANNELS]]
    times = np.arange(weights.shape[0]) / fps
    spans = []
    items = [(p.symbol, p.start, p.end) if hasattr(p, "symbol") else tuple(p) for p in phonemes]
    for (_, _, e0), (_, s1, _) in zip(items, items[1:]):
        spans.append((e0, s1))
    if items:
        spans.append((items[-1][2], duration))
    out = []
    for g0, g1 in spans:
        length = g1 - g0
        if length < REST_PAUSE:
            continue
        inside = (times >= g0 + REST_MARGIN * length) & (times <= g1 - REST_MARGIN * length)
        if not inside.any():
            inside = np.zeros_like(times, bool)
            inside[np.argmin(np.abs(times - 0.5 * (g0 + g1)))] = True
        out.append((g0, g1, float(mouth[inside].max())))
    return out
