"""The first formant of a recording, as a measure of how open the mouth is on each vowel.

A phone says which vowel is spoken, not how wide this speaker opens for it: the same /ɛ/ is nearly
an /e/ in one mouth and nearly an /æ/ in another, and a recogniser may pick the wrong neighbour. The
first formant (F1) rises with the opening of the jaw and lips (about 250-350 Hz for /i u/, 700-900 Hz
for /a ɑ/), so where there is a recording its F1, relative to the speaker's own typical F1, scales
the jaw the phones ask for: up on vowels opened wider than usual, down on closer ones. The second
formant (F2) falls when the lips round and protrude (a longer front cavity): an F2 below the
speaker's typical one scales the pucker up, above it down.

F1 comes from linear prediction (autocorrelation method, Levinson-Durbin) on 8 kHz audio: the
resonances are the angles of the predictor's poles, the lowest narrow one above 150 Hz is F1, the
next F2.
numpy only; about 0.2 s per minute of speech (only frames loud enough to hold a vowel are solved).
"""

from __future__ import annotations

import numpy as np

RATE = 8000  # Hz: F1 and F2 lie below 4 kHz, so the analysis runs at 8 kHz
HOP, WINDOW = 0.01, 0.03  # seconds
ORDER = 10  # poles: five resonances in 4 kHz
PRE_EMPHASIS = 0.63
MIN_FREQUENCY, MAX_BANDWIDTH = 150.0, 400.0  # Hz: a resonance below this, or broader, is not a formant
F1_RANGE = (200.0, 1100.0)  # Hz: an F1 outside this is a mistracked frame
F2_MAX = 3000.0  # Hz: an F2 above this is a mistracked frame (F3 taken for F2)
VOICED_DB = 12.0  # frames this far below the loudest tenth carry no vowel
# How the jaw follows F1: scale = 1 + STRENGTH * log2(F1 / typical F1), within SCALE_RANGE.
# An F1 an octave above the speaker's typical one (an /a/ where the median vowel is a schwa) opens
# the jaw 20% wider than the phone's target. Measured against NeuroSync's jawOpen for the same two
# recordings (tests/data/peers), on the phone jaw alone: correlation 0.698/0.678 -> 0.722/0.695;
# in takes, with the voice check's loudness scale as well (visemes.heard_envelope), 0.770/0.690 ->
# 0.783/0.704. The range is narrow because the two scales multiply: wider only raised the amplitude
# (jaw peak 1.45x NeuroSync's at 0.7-1.4 with strength 0.25; 1.27x/1.08x here).
STRENGTH = 0.2
EASE = 0.1  # seconds: away from the nearest measured vowel the scale returns to 1 over this
SCALE_RANGE = (0.75, 1.2)
# How the pucker follows F2: scale = 1 - ROUNDING_STRENGTH * log2(F2 / typical F2), within
# ROUNDING_RANGE. Against NeuroSync's mouthPucker: correlation 0.475/0.384 -> 0.519/0.430 at 0.6 on
# the phones alone, 0.482/0.395 -> 0.496/0.419 in takes (its mouthFunnel does not follow F2:
# 0.355/0.395 -> 0.31/0.40, so the funnel is left alone). Up to 1.15 only: a /w/'s low F2 on top of
# its phone target already near full rounding put the pucker at 1.0 (NeuroSync: 0.17); up to 1.3
# gained 0.006/0.009 of correlation for a peak of 0.90 instead of 0.83.
ROUNDING_STRENGTH = 0.6
ROUNDING_RANGE = (0.5, 1.15)
# The jaw opens before the vowel is heard: the scale at frame t is read from the sound at t + LEAD.
LEAD = 0.03


def _lowpass_kernel(cutoff: float, rate: float, taps: int = 63) -> np.ndarray:
    """Windowed-sinc low-pass FIR, unit gain at 0 Hz."""
    n = np.arange(taps) - (taps - 1) / 2.0
    h = np.sinc(2.0 * cutoff / rate * n) * np.blackman(taps)
    return h / h.sum()


def to_analysis_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """The recording at RATE Hz (low-passed below 3.8 kHz first when it is faster)."""
    x = np.asarray(samples, np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if rate == RATE or x.size == 0:
        return x
    if rate > RATE and rate % RATE == 0:  # filter only the samples kept
        h = _lowpass_kernel(0.475 * RATE, rate)
        half = h.size // 2
        padded = np.concatenate([np.zeros(half), x, np.zeros(half)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, h.size)[:: rate // RATE]
        return windows @ h[::-1]
    if rate > RATE:
        x = np.convolve(x, _lowpass_kernel(0.475 * RATE, rate), mode="same")
    count = int(x.size * RATE / rate)
    return np.interp(np.arange(count) * (rate / RATE), np.arange(x.size), x)


def lpc(frames: np.ndarray, order: int = ORDER) -> np.ndarray:
    """Predictor coefficients [frames, order + 1] (a[0] = 1) of windowed frames [frames, n]."""
    count, n = frames.shape
    ac = np.stack([np.einsum("fj,fj->f", frames[:, : n - k], frames[:, k:]) for k in range(order + 1)], axis=1)
    ac[:, 0] = ac[:, 0] * (1.0 + 1e-4) + 1e-12  # a little white noise: the recursion stays stable
    a = np.zeros((count, order + 1))
    a[:, 0] = 1.0
    err = ac[:, 0].copy()
    for i in range(1, order + 1):
        k = -np.einsum("fj,fj->f", a[:, :i], ac[:, i:0:-1]) / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]
        a[:, i] = k
        err = err * (1.0 - k * k)
    return a


def resonances(a: np.ndarray, rate: float = RATE) -> tuple[np.ndarray, np.ndarray]:
    """(frequency Hz, bandwidth Hz) of the poles in the upper half-plane, [frames, order] each
    (NaN where a pole is real or in the lower half), from predictor coefficients [frames, order + 1]."""
    count, order = a.shape[0], a.shape[1] - 1
    companion = np.zeros((count, order, order))
    companion[:, 0, :] = -a[:, 1:]
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(companion)
    freq = np.angle(roots) * rate / (2.0 * np.pi)
    bandwidth = -np.log(np.maximum(np.abs(roots), 1e-12)) * rate / np.pi
    keep = freq > 0.0
    return np.where(keep, freq, np.nan), np.where(keep, bandwidth, np.nan)


def formant_tracks(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times s, F1 Hz, F2 Hz) every HOP seconds; both NaN where the frame is quiet or mistracked."""
    x = to_analysis_rate(samples, rate)
    hop, win = int(round(HOP * RATE)), int(round(WINDOW * RATE))
    if x.size < win:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    x = np.append(x[0], x[1:] - PRE_EMPHASIS * x[:-1])
    count = 1 + (x.size - win) // hop
    frames = np.lib.stride_tricks.as_strided(x, (count, win), (x.strides[0] * hop, x.strides[0]), writeable=False)
    frames = frames * np.hamming(win)
    level = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level >= np.percentile(level, 90) - VOICED_DB)  # only these can hold a vowel
    f1, f2 = np.full(count, np.nan), np.full(count, np.nan)
    freq, bandwidth = resonances(lpc(frames[loud]))
    formant = np.sort(np.where((freq >= MIN_FREQUENCY) & (bandwidth <= MAX_BANDWIDTH), freq, np.inf), axis=1)
    good = (formant[:, 0] >= F1_RANGE[0]) & (formant[:, 0] <= F1_RANGE[1])
    f1[loud[good]] = formant[good, 0]
    second = good & (formant[:, 1] <= F2_MAX)
    f2[loud[second]] = formant[second, 1]
    times = (np.arange(count) * hop + 0.5 * win) / RATE
    return times, f1, f2


def first_formant(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(times s, F1 Hz) every HOP seconds; F1 is NaN where the frame is quiet or mistracked."""
    times, f1, _ = formant_tracks(samples, rate)
    return times, f1


def _relative_scale(times, track, strength, bounds, fps: float, frames: int) -> np.ndarray:
    """Per frame: 1 + strength * log2(track / its median), within bounds, read LEAD ahead, easing to 1
    within EASE of the nearest measured frame; 1 everywhere when fewer than 5 frames were measured."""
    valid = np.isfinite(track)
    if valid.sum() < 5:
        return np.ones(frames)
    typical = float(np.median(track[valid]))
    scale = np.clip(1.0 + strength * np.log2(track[valid] / typical), *bounds)
    t = np.arange(frames) / float(fps) + LEAD
    value = np.interp(t, times[valid], scale)
    weight = np.clip(1.0 - (_distance_to_nearest(t, times[valid]) - HOP) / EASE, 0.0, 1.0)
    return 1.0 + weight * (value - 1.0)


def opening_scale(samples: np.ndarray, rate: int, fps: float, frames: int, tracks=None) -> np.ndarray:
    """Per frame k (time k / fps): how much wider (> 1) or closer (< 1) than the phone's target the jaw
    opens, from F1 against the recording's median F1; 1 where no vowel is heard.
    tracks: formant_tracks() of the samples, when already made."""
    times, f1, _ = tracks if tracks is not None else formant_tracks(samples, rate)
    return _relative_scale(times, f1, STRENGTH, SCALE_RANGE, fps, frames)


def rounding_scale(samples: np.ndarray, rate: int, fps: float, frames: int, tracks=None) -> np.ndarray:
    """Per frame: how much more (> 1) or less (< 1) the lips pucker than the phone's target, from F2
    against the recording's median F2 (lower F2: rounder lips); 1 where no vowel is heard."""
    times, _, f2 = tracks if tracks is not None else formant_tracks(samples, rate)
    return _relative_scale(times, f2, -ROUNDING_STRENGTH, ROUNDING_RANGE, fps, frames)


def _distance_to_nearest(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from each t to the nearest of the sorted points."""
    i = np.clip(np.searchsorted(points, t), 1, points.size - 1)
    return np.minimum(np.abs(t - points[i - 1]), np.abs(points[i] - t))
