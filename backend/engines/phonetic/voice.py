"""What a recording says about the mouth besides its phones: where someone speaks, and how loudly.

`activity` is a voice-activity check: frames whose speech-band level stands clear of the
recording's own noise floor for long enough to be a syllable. Room noise sits at the floor; a
click is loud but over in a few milliseconds, so neither counts. `loudness` is the level of the
voice per frame relative to the recording's typical speech, for scaling how wide the mouth opens.
Both are sampled at frame k / fps, like the curves.
"""

from __future__ import annotations

import numpy as np

HOP = 0.01  # seconds between analysis windows
WINDOW = 0.025  # analysis window length (seconds)
BAND = (250.0, 4000.0)  # Hz: where voiced speech carries its energy; rumble and hiss left out
CHUNK = 2048  # analysis windows per FFT batch
MIN_SPEECH = 0.07  # a run of loud windows shorter than this is a click or a bump, not speech
BRIDGE = 0.3  # quiet stretches shorter than this inside speech stay speech (stop closures, weak consonants)
ABOVE_FLOOR_DB = 6.0  # speech stands at least this far above the noise floor...
SHARE_OF_RANGE = 0.1  # ...and above this share of the way from the floor to loud speech (in dB)


def _band_levels(samples: np.ndarray, rate: int, band=BAND) -> tuple[np.ndarray, np.ndarray]:
    """(times, level in dB) of a band (default: the speech band) per HOP-spaced window."""
    x = np.asarray(samples, np.float64)
    hop, win = max(1, int(round(HOP * rate))), max(2, int(round(WINDOW * rate)))
    if x.size < win:
        x = np.concatenate([x, np.zeros(win - x.size)])
    count = 1 + (x.size - win) // hop
    frames = np.lib.stride_tricks.as_strided(x, (count, win), (x.strides[0] * hop, x.strides[0]), writeable=False)
    freqs = np.fft.rfftfreq(win, 1.0 / rate)
    band = (freqs >= band[0]) & (freqs <= min(band[1], 0.45 * rate))
    taper = np.hanning(win)
    power = np.empty(count)
    for a in range(0, count, CHUNK):  # a few thousand windows at a time: memory stays small for long recordings
        spectrum = np.abs(np.fft.rfft(frames[a:a + CHUNK] * taper, axis=1)) ** 2
        power[a:a + CHUNK] = spectrum[:, band].sum(axis=1) / win
    times = (np.arange(count) * hop + 0.5 * win) / rate
    return times, 10.0 * np.log10(power + 1e-12)


def _runs(mask: np.ndarray):
    """(start, end) index pairs of the True runs of a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _window_activity(levels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(voice per window, noise floor dB, loud-speech level dB)."""
    floor = float(np.percentile(levels, 10))
    loud = float(np.percentile(levels, 95))
    threshold = floor + max(ABOVE_FLOOR_DB, SHARE_OF_RANGE * (loud - floor))
    active = levels > threshold
    shortest, bridge = int(round(MIN_SPEECH / HOP)), int(round(BRIDGE / HOP))
    for a, b in _runs(~active):  # close short gaps first, so a syllable split by a stop stays one run
        if a > 0 and b < active.size and b - a < bridge:
            active[a:b] = True
    for a, b in _runs(active):
        if b - a < shortest:
            active[a:b] = False
    return active, floor, loud


def analyse(samples: np.ndarray, rate: int, fps: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(activity, loudness) per frame k (time k / fps), from one pass over the recording.

    activity: boolean, someone is speaking. loudness: the voice's level relative to the recording's
    typical speech, in amplitude (1 at its median speaking level, 6 dB louder is 2), 0 where nobody
    speaks, smoothed over ~50 ms."""
    samples = np.asarray(samples)
    if samples.size == 0:
        return np.zeros(frames, bool), np.zeros(frames)
    times, levels = _band_levels(samples, rate)
    active, floor, loud = _window_activity(levels)
    at = np.arange(frames) / float(fps)
    if loud - floor < ABOVE_FLOOR_DB:  # nothing stands above the floor: all noise, or all speech with no pause
        active = np.full(levels.size, bool(np.percentile(levels, 50) > -60.0) and loud - floor > 3.0)
    if not active.any():
        return np.zeros(frames, bool), np.zeros(frames)
    reference = float(np.median(levels[active]))
    amplitude = np.where(active, 10.0 ** ((levels - reference) / 20.0), 0.0)
    kernel = np.hanning(7)
    amplitude = np.convolve(amplitude, kernel / kernel.sum(), mode="same")
    index = np.clip(np.searchsorted(times, at), 0, times.size - 1)
    return active[index], np.interp(at, times, amplitude)


def activity(samples: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """Boolean per frame k (time k / fps): someone is speaking."""
    return analyse(samples, rate, fps, frames)[0]


def loudness(samples: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """Per frame, the voice's level relative to the recording's typical speech (see `analyse`)."""
    return analyse(samples, rate, fps, frames)[1]


def widened(mask: np.ndarray, frames: int) -> np.ndarray:
    """The mask grown by `frames` on each side (a mouth prepares before speech and settles after it)."""
    if frames <= 0 or not mask.any():
        return mask.copy()
    kernel = np.ones(2 * frames + 1)
    return np.convolve(mask.astype(np.float64), kernel, mode="same") > 0
