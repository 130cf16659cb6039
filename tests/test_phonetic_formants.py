"""The first formant as a measure of mouth opening: right on vowels of known height, silent on silence.

Vowels from eSpeak NG (their F1 follows the textbook order: /ɑ/ and /æ/ high, /i/ and /u/ low), a
real recording (tests/data/aligned_speech), and synthetic signals with known resonances.
"""

from pathlib import Path

import numpy as np
import pytest

from backend.engines.phonetic import formants

DATA = Path(__file__).resolve().parent / "data"


def _resonant(f1: float, f2: float, rate: int, seconds: float, f0: float = 120.0) -> np.ndarray:
    """A glottal pulse train through two resonators: a vowel with formants f1, f2 (bandwidth 80 Hz)."""
    n = int(seconds * rate)
    x = np.zeros(n)
    x[:: int(rate / f0)] = 1.0
    for f in (f1, f2):
        r = np.exp(-np.pi * 80.0 / rate)
        a1, a2 = -2 * r * np.cos(2 * np.pi * f / rate), r * r
        y = np.zeros(n)
        for i in range(n):
            y[i] = x[i] - a1 * y[i - 1] - a2 * y[i - 2] if i >= 2 else x[i]
        x = y
    return x / np.abs(x).max() * 0.5


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_first_formant_of_a_synthetic_vowel(rate):
    for f1, f2 in ((300.0, 2300.0), (500.0, 1500.0), (750.0, 1200.0)):
        _, track = formants.first_formant(_resonant(f1, f2, rate, 0.4), rate)
        found = np.nanmedian(track)
        assert abs(found - f1) < 0.12 * f1, (rate, f1, found)


def test_silence_and_noise_leave_the_jaw_alone():
    rate = 16000
    assert np.all(formants.opening_scale(np.zeros(rate), rate, 30, 30) == 1.0)
    assert np.all(formants.opening_scale(np.zeros(10), rate, 30, 3) == 1.0)
    quiet = np.random.default_rng(0).standard_normal(rate) * 1e-4
    speech = np.concatenate([quiet, _resonant(750.0, 1200.0, rate, 0.3), quiet])
    scale = formants.opening_scale(speech, rate, 30, int(round(speech.size / rate * 30)))
    times = np.arange(scale.size) / 30
    far = (times < 0.8) | (times > 1.5)
    assert np.all(scale[far] == 1.0)
    assert scale.min() >= formants.SCALE_RANGE[0] and scale.max() <= formants.SCALE_RANGE[1]


def test_open_vowels_open_wider_than_close_ones_in_espeak_speech():
    from backend.engines.phonetic import espeak

    ok, reason = espeak.is_available()
    if not ok:
        pytest.skip(reason)
    speech = espeak.synthesize("pa pee pa pee pa poo pa pee")
    fps = 100.0
    frames = int(round(speech.duration * fps))
    scale = formants.opening_scale(speech.audio, speech.sample_rate, fps, frames)
    times = np.arange(frames) / fps
    by_vowel = {}
    for p in speech.phonemes:
        base = p.symbol.strip("ˈˌː")
        if base in ("ɑ", "a", "i", "u"):
            inside = (times >= p.start + 0.25 * (p.end - p.start)) & (times <= p.end - 0.25 * (p.end - p.start))
            by_vowel.setdefault(base, []).append(float(np.mean(scale[inside])))
    open_ = [v for k in ("ɑ", "a") for v in by_vowel.get(k, [])]
    close = [v for k in ("i", "u") for v in by_vowel.get(k, [])]
    assert open_ and close, by_vowel
    assert min(open_) > 1.0 > max(close), by_vowel


@pytest.mark.parametrize("name", ["acoustic_corpus", "cold_corpus"])
def test_real_recording_tracked_on_vowels_not_in_pauses(name):
    """Against the recording's independent alignment: F1 is found on most vowel frames (0.59 and 0.63
    when written), on few frames outside speech (0.06, 0.05), and fast."""
    import time

    from backend.audio_input import load_recording
    from backend.engines.phonetic import ipa
    from backend.engines.phonetic.textgrid import reference_phones

    samples = load_recording(DATA / "aligned_speech" / f"{name}.flac").analysis()
    t = time.perf_counter()
    times, f1 = formants.first_formant(samples, 16000)
    elapsed = time.perf_counter() - t
    assert elapsed < 0.05 * samples.size / 16000  # under 3 s per minute even on a busy machine
    vowel, speech = np.zeros(times.size, bool), np.zeros(times.size, bool)
    for p in reference_phones(DATA / "aligned_speech" / f"{name}.TextGrid"):
        inside = (times >= p.start) & (times < p.end)
        speech |= inside
        if ipa.is_vowel(p.symbol):
            vowel |= inside
    tracked = np.isfinite(f1)
    assert tracked[vowel].mean() > 0.5
    assert tracked[~speech].mean() < 0.15
    assert 250.0 < np.median(f1[tracked & vowel]) < 800.0


def test_rounded_vowels_pucker_more_than_spread_ones_in_espeak_speech():
    from backend.engines.phonetic import espeak

    ok, reason = espeak.is_available()
    if not ok:
        pytest.skip(reason)
    speech = espeak.synthesize("tee too tee too tee too")
    fps = 100.0
    frames = int(round(speech.duration * fps))
    tracks = formants.formant_tracks(speech.audio, speech.sample_rate)
    scale = formants.rounding_scale(speech.audio, speech.sample_rate, fps, frames, tracks)
    times = np.arange(frames) / fps
    by_vowel = {}
    for p in speech.phonemes:
        base = p.symbol.strip("ˈˌː")
        if base in ("i", "u"):
            inside = (times >= p.start + 0.25 * (p.end - p.start)) & (times <= p.end - 0.25 * (p.end - p.start))
            by_vowel.setdefault(base, []).append(float(np.mean(scale[inside])))
    assert by_vowel.get("i") and by_vowel.get("u"), by_vowel
    assert min(by_vowel["u"]) > 1.0 > max(by_vowel["i"]), by_vowel
    assert np.all(scale >= formants.ROUNDING_RANGE[0]) and np.all(scale <= formants.ROUNDING_RANGE[1])


def test_room_noise_and_clicks_barely_change_the_scales():
    """The real recording with pink-ish room noise 30 dB below its speech, 1 s of that noise in front
    and six 4 ms clicks: the jaw scale on the speech stays close to what it was (correlation > 0.75 with the clean
    one, where it differs from 1), and stays 1 over the noise-only second."""
    from backend.audio_input import load_recording

    rate, fps = 16000, 30.0
    clean = load_recording(DATA / "aligned_speech" / "cold_corpus.flac").analysis().astype(np.float64)
    rng = np.random.default_rng(3)
    x = np.concatenate([np.zeros(rate), clean])
    noise = np.convolve(rng.standard_normal(x.size), np.ones(8) / 8.0, mode="same")
    x += noise / noise.std() * np.sqrt(np.mean(clean ** 2)) * 10 ** (-30 / 20)
    for at in [int(0.3 * rate)] + rng.integers(rate, x.size - rate, 5).tolist():
        x[at:at + 64] += 0.5 * np.sign(rng.standard_normal(64)) * np.exp(-np.arange(64) / 16.0)
    frames = int(round(clean.size / rate * fps))
    lead = int(fps)
    before = formants.opening_scale(clean, rate, fps, frames)
    after = formants.opening_scale(x, rate, fps, frames + lead)
    assert np.all(after[: int(0.9 * fps)] == 1.0)
    moved = (before != 1.0) | (after[lead:] != 1.0)
    assert np.corrcoef(before[moved], after[lead:][moved])[0, 1] > 0.75  # 0.82 when written
