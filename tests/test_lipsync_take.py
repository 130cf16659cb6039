"""The `lipsync` take: a recording in any supported format in, its own audio and matching curves out.

Real eSpeak NG speech, encoded with soundfile and the imageio-ffmpeg wheel's ffmpeg, aligned by
the real pocketsphinx and animated by the phonetic engine's viseme model.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from backend.audio_input import ffmpeg_exe, load_recording, resample
from backend.engines.base import Cancelled, EngineError, Progress, TakeRequest
from backend.engines.phonetic.lipsync import emphasis_from_loudness, lipsync_take
from exomni_blender.core import contract as C
from exomni_blender.core.arkit import ARKIT_52, MOUTH_CHANNELS
from exomni_blender.core.take import Phoneme, Take

LINE = "They're coming out of the woodwork! No, everybody we've put away!"
RATE = 44100
LEAD_IN = 0.4  # seconds of room tone before the line
MOUTH = [ARKIT_52.index(n) for n in MOUTH_CHANNELS]
FACE = [i for i in range(len(ARKIT_52)) if i not in MOUTH]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The line after a moment of room tone, as a stereo 44.1 kHz recording in WAV, FLAC, MP3 and M4A;
    with eSpeak's phoneme timeline, moved by the lead-in."""
    from backend.engines.phonetic import espeak

    speech = espeak.synthesize(LINE)
    tone = np.random.default_rng(0).standard_normal(int(LEAD_IN * RATE)).astype(np.float32) * 2e-3
    mono = np.concatenate([tone, resample(speech.audio, speech.sample_rate, RATE)])
    truth = [Phoneme(p.symbol, p.start + LEAD_IN, p.end + LEAD_IN) for p in speech.phonemes]
    folder = tmp_path_factory.mktemp("lipsync")
    files = {"wav": folder / "line.wav", "flac": folder / "line.flac"}
    stereo = np.stack([mono, 0.7 * mono], axis=1)
    sf.write(str(files["wav"]), stereo, RATE, subtype="PCM_16")
    sf.write(str(files["flac"]), stereo, RATE, subtype="PCM_16")
    for ext, codec in (("mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]), ("m4a", ["-c:a", "aac", "-b:a", "128k"])):
        files[ext] = folder / f"line.{ext}"
        subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(files["wav"]), *codec, str(files[ext])],
                       check=True)
    return truth, files


def _take(path, text=LINE, **kw) -> Take:
    request = TakeRequest(engine="phonetic", mode="lipsync", text=text, audio_path=str(path), seed=3, **kw)
    return lipsync_take(request, Progress())


@pytest.fixture(scope="module")
def takes(recordings):
    _, files = recordings
    return {ext: _take(path) for ext, path in files.items()}


def test_take_audio_is_the_recording_itself(recordings, takes):
    _, files = recordings
    take = takes["wav"]
    rec = load_recording(files["wav"])
    assert take.sample_rate == RATE
    assert np.array_equal(take.audio, rec.samples)  # mono mix at the file's own rate, not resampled
    assert take.mode == "lipsync" and take.engine == "phonetic" and take.text == LINE
    assert take.frames == round(rec.duration * 30)
    assert take.meta["alignment"] == "forced"
    assert take.meta["source"] == {"file": "line.wav", "format": "WAV", "sample_rate": RATE, "channels": 2,
                                   "duration": round(rec.duration, 5)}
    assert [w["text"] for w in take.meta["words"]][:3] == ["they're", "coming", "out"]
    assert set(take.timings) >= {"load", "align", "curves"}


def test_phonemes_follow_the_recording(recordings, takes):
    from backend.engines.phonetic.align import phone_boundary_error

    truth, _ = recordings
    take = takes["wav"]
    err = phone_boundary_error(truth, take.phonemes)
    assert err["mean"] < 0.05 and err["matched"] >= 0.9 * err["reference"]
    assert take.meta["words"][0]["start"] == pytest.approx(LEAD_IN, abs=0.05)
    # The mouth opens while the line is spoken and rests before it.
    jaw = take.channel("jawOpen")
    first = int(truth[0].start * take.fps)
    assert jaw[first:].max() > 0.2
    assert jaw[:int(0.2 * take.fps)].max() < 0.05


@pytest.mark.parametrize("ext", ["flac", "mp3", "m4a"])
def test_every_format_gives_the_same_curves(takes, ext):
    ref, other = takes["wav"].weights, takes[ext].weights
    assert abs(len(ref) - len(other)) <= 1
    n = min(len(ref), len(other))
    diff = np.abs(ref[:n] - other[:n])
    assert diff[:, MOUTH].mean() < 0.01, diff[:, MOUTH].mean()
    assert diff[:, MOUTH].max() < 0.25, diff[:, MOUTH].max()
    assert diff.mean() < 0.01
    assert takes[ext].sample_rate == RATE


def test_without_transcript_the_phones_are_recognised(recordings):
    _, files = recordings
    takes = {ext: _take(files[ext], text="") for ext in ("wav", "mp3")}
    wav = takes["wav"]
    assert wav.meta["alignment"] == "recognized" and wav.text == ""
    assert len(wav.meta["words"]) >= 5  # the recognised words, placed in the recording
    assert len(wav.phonemes) > 20
    n = min(wav.frames, takes["mp3"].frames)
    assert np.abs(wav.weights[:n, MOUTH] - takes["mp3"].weights[:n, MOUTH]).mean() < 0.03


def test_frame_rate_and_mouth_only(recordings):
    _, files = recordings
    take = _take(files["flac"], fps=24.0, mouth_only=True)
    assert take.fps == 24.0 and take.frames == round(take.duration * 24)
    assert np.all(take.weights[:, FACE] == 0) and take.weights[:, MOUTH].max() > 0.2


def test_saved_take_keeps_the_recording(tmp_path, takes):
    take = takes["m4a"]
    loaded = Take.load(take.save(tmp_path / "take"))
    assert loaded.sample_rate == RATE and loaded.mode == "lipsync"
    assert np.max(np.abs(loaded.audio - take.audio)) < 1.5 / 32767
    assert loaded.meta["words"] == take.meta["words"]


def test_missing_recording_is_an_error():
    with pytest.raises(EngineError) as info:
        lipsync_take(TakeRequest(engine="phonetic", mode="lipsync", text="hello"), Progress())
    assert info.value.code == C.E_BAD_AUDIO and "audio" in str(info.value)


def test_bad_file_errors_name_the_uploaded_file(tmp_path):
    path = tmp_path / "exomni-upload-123.wav"
    path.write_text("not audio at all, just words", encoding="utf-8")
    request = TakeRequest(engine="phonetic", mode="lipsync", audio_path=str(path),
                          options={"audio_filename": "brick_line.wav"})
    with pytest.raises(EngineError) as info:
        lipsync_take(request, Progress())
    assert info.value.code == C.E_BAD_AUDIO and "brick_line.wav is a text file" in str(info.value)


def test_cancelled_job_stops(recordings):
    _, files = recordings
    request = TakeRequest(engine="phonetic", mode="lipsync", text=LINE, audio_path=str(files["wav"]))
    with pytest.raises(Cancelled):
        lipsync_take(request, Progress(cancelled=lambda: True))


def test_louder_longer_vowels_get_more_emphasis():
    rate = 16000
    t = np.arange(rate) / rate
    x = 0.05 * np.sin(2 * np.pi * 200 * t)
    x[8000:12000] *= 8  # the second vowel is loud
    phones = [Phoneme("ə", 0.1, 0.2), Phoneme("s", 0.2, 0.3), Phoneme("ˈæ", 0.5, 0.75), Phoneme("ɪ", 0.8, 0.85)]
    e = emphasis_from_loudness(x.astype(np.float32), rate, phones)
    assert e[1] == 0.0  # consonants carry none
    assert e[2] == 1.0 and e[2] > e[0] and e[2] > e[3]
    assert all(0.0 <= v <= 1.0 for v in e)


def test_the_phonetic_engine_offers_lipsync(recordings):
    from backend.engines.phonetic.engine import PhoneticEngine

    engine = PhoneticEngine()
    assert "lipsync" in engine.modes
    _, files = recordings
    request = TakeRequest(engine="phonetic", mode="lipsync", text=LINE, audio_path=str(files["mp3"]))
    take = engine.make_take(request, Progress())
    assert take.mode == "lipsync" and take.sample_rate == RATE and take.meta["alignment"] == "forced"
