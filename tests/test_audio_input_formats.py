"""Recordings in the formats people have: decoded to the same mono samples at their own rate.

Real soundfile and the real ffmpeg binary from the imageio-ffmpeg wheel encode and decode; the
speech is eSpeak NG's.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from backend.audio_input import ANALYSIS_RATE, ffmpeg_exe, load_recording, resample

RATE = 44100


@pytest.fixture(scope="module")
def stereo_speech(tmp_path_factory):
    """A stereo 44.1 kHz recording (voice louder on the left) written in every supported format."""
    from backend.engines.phonetic import espeak

    speech = espeak.synthesize("Are they cold? Does a bear crap in the woods?")
    mono = resample(speech.audio, speech.sample_rate, RATE)
    stereo = np.stack([0.8 * mono, 0.4 * mono], axis=1).astype(np.float32)
    folder = tmp_path_factory.mktemp("formats")
    files = {}
    for ext, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")):
        files[ext] = folder / f"line.{ext}"
        sf.write(str(files[ext]), stereo, RATE, subtype=subtype)
    for ext, codec in (("mp3", ["-c:a", "libmp3lame", "-b:a", "160k"]), ("m4a", ["-c:a", "aac", "-b:a", "160k"]),
                       ("aac", ["-c:a", "aac", "-b:a", "160k"])):
        files[ext] = folder / f"line.{ext}"
        subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(files["wav"]), *codec, str(files[ext])],
                       check=True)
    return stereo, files


def _best_lag(x: np.ndarray, y: np.ndarray, span: int = 4096) -> int:
    n = min(len(x), len(y), RATE)
    corr = np.correlate(y[:n], x[:n - span], mode="valid")
    return int(np.argmax(corr))


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a", "aac"])
def test_each_format_decodes_to_the_mono_mix_at_its_own_rate(stereo_speech, ext):
    stereo, files = stereo_speech
    rec = load_recording(files[ext])
    expected = stereo.mean(axis=1)
    assert rec.sample_rate == RATE
    assert rec.channels == 2
    assert rec.samples.dtype == np.float32 and rec.samples.ndim == 1
    # Lossy codecs may pad the end (and a raw AAC stream the start) by a frame or two.
    assert abs(rec.duration - len(expected) / RATE) < 0.06
    lag = _best_lag(expected, rec.samples)
    assert lag < 0.03 * RATE
    n = min(len(expected), len(rec.samples) - lag)
    got = rec.samples[lag:lag + n]
    corr = float(np.corrcoef(expected[:n], got)[0, 1])
    assert corr > (0.999 if ext in ("wav", "flac") else 0.95), f"{ext}: correlation {corr:.4f} with the original"


def test_lossless_files_keep_the_original_samples_untouched(stereo_speech):
    stereo, files = stereo_speech
    expected = stereo.mean(axis=1)
    for ext in ("wav", "flac"):
        rec = load_recording(files[ext])
        assert rec.samples.shape == expected.shape
        assert np.max(np.abs(rec.samples - expected)) < 2.0 / 32768  # 16-bit quantisation only


def test_analysis_copy_is_16_khz_and_the_same_length_in_time(stereo_speech):
    _, files = stereo_speech
    rec = load_recording(files["wav"])
    analysis = rec.analysis()
    assert abs(analysis.size - rec.duration * ANALYSIS_RATE) <= 1
    assert rec.sample_rate == RATE  # the recording itself is not resampled
    # Resampling keeps the speech: energy about the same, and a 1 kHz tone stays 1 kHz.
    assert 0.8 < np.sqrt(np.mean(analysis ** 2)) / np.sqrt(np.mean(rec.samples ** 2)) < 1.2
    t = np.arange(RATE) / RATE
    tone = resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), RATE, ANALYSIS_RATE)
    spectrum = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spectrum) * ANALYSIS_RATE / tone.size - 1000) < 2


def test_odd_sample_rates_resample_to_the_right_length():
    for rate in (8000, 11025, 22050, 44056, 48000, 96000):
        x = np.random.default_rng(rate).standard_normal(rate // 2).astype(np.float32) * 0.1
        y = resample(x, rate, ANALYSIS_RATE)
        assert abs(y.size - ANALYSIS_RATE // 2) <= 2, rate
