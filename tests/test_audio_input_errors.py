"""Every unusable file gets an EngineError saying what is wrong with it and what to do."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
import soundfile as sf

from backend.audio_input import ffmpeg_exe, load_recording
from backend.engines.base import EngineError
from exomni_blender.core import contract as C

RATE = 16000


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _error(path, **limits) -> EngineError:
    with pytest.raises(EngineError) as info:
        load_recording(path, **limits)
    return info.value


def test_empty_file(tmp_path):
    path = tmp_path / "line.wav"
    path.write_bytes(b"")
    err = _error(path)
    assert (err.code, err.status) == (C.E_BAD_AUDIO, 422)
    assert "line.wav is empty" in str(err) and "again" in str(err)


def test_silent_recording(tmp_path):
    path = tmp_path / "room_tone.wav"
    sf.write(str(path), np.zeros(RATE * 2, np.float32), RATE)
    err = _error(path)
    assert err.code == C.E_BAD_AUDIO
    assert "silent" in str(err) and "microphone" in str(err)


def test_nearly_silent_recording_gives_its_level(tmp_path):
    path = tmp_path / "hiss.flac"
    noise = np.random.default_rng(1).standard_normal(RATE).astype(np.float32) * 1e-4
    sf.write(str(path), noise, RATE)
    err = _error(path)
    assert "silent" in str(err) and "dBFS" in str(err)


@pytest.mark.parametrize("name", ["take.wav", "take.mp3", "take.m4a", "take.flac"])
def test_corrupt_bytes(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    err = _error(path)
    assert (err.code, err.status) == (C.E_BAD_AUDIO, 422)
    message = str(err)
    assert name in message and ("corrupt" in message or "damaged" in message) and "export it again" in message


def test_truncated_wav(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(str(whole), _tone(2.0), RATE, subtype="PCM_16")
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    err = _error(cut)
    assert err.code == C.E_BAD_AUDIO
    assert "truncated" in str(err) and "2.00 s" in str(err) and "1.00 s" in str(err)


def test_wav_header_only(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(str(whole), _tone(1.0), RATE, subtype="PCM_16")
    stub = tmp_path / "stub.wav"
    stub.write_bytes(whole.read_bytes()[:30])  # cut inside the fmt chunk
    err = _error(stub)
    assert err.code == C.E_BAD_AUDIO and "truncated" in str(err)


def test_text_file_renamed_wav(tmp_path):
    path = tmp_path / "scene.wav"
    path.write_text("INT. BRICK'S PATIO - DAY\n\nBRICK\nHey steel.\n", encoding="utf-8")
    err = _error(path)
    assert err.code == C.E_BAD_AUDIO
    assert "text file, not audio" in str(err)


def test_video_without_sound(tmp_path):
    path = tmp_path / "reference.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x32:rate=5",
                    "-t", "0.4", "-pix_fmt", "yuv420p", str(path)], check=True)
    err = _error(path)
    assert err.code == C.E_BAD_AUDIO and "no audio track" in str(err)


@pytest.mark.parametrize("name", ["line.pcm", "line.raw", "line.wav"])
def test_headerless_pcm_is_named_for_what_it_is(tmp_path, name):
    path = tmp_path / name
    path.write_bytes((_tone(1.0) * 32767).astype("<i2").tobytes())  # 16-bit samples, no header
    err = _error(path)
    assert err.code == C.E_BAD_AUDIO and "no audio header" in str(err) and "raw PCM" in str(err)
    assert "video" not in str(err) and "ffmpeg -f s16le" in str(err)


def test_too_long(tmp_path):
    path = tmp_path / "monologue.flac"
    sf.write(str(path), _tone(3.0), RATE)
    err = _error(path, max_seconds=2.0)
    assert (err.code, err.status) == (C.E_TOO_LARGE, 413)
    assert "3.0 s long" in str(err) and "limit of 2 s" in str(err)


def test_too_long_compressed_is_refused_before_decoding(tmp_path):
    wav, mp3 = tmp_path / "a.wav", tmp_path / "monologue.mp3"
    sf.write(str(wav), _tone(3.0), RATE)
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(wav), str(mp3)], check=True)
    err = _error(mp3, max_seconds=2.0)
    assert (err.code, err.status) == (C.E_TOO_LARGE, 413)


def test_too_big(tmp_path):
    path = tmp_path / "big.wav"
    sf.write(str(path), _tone(1.0), RATE)
    err = _error(path, max_bytes=10_000)
    assert (err.code, err.status) == (C.E_TOO_LARGE, 413)
    assert "MB" in str(err)


def test_too_short(tmp_path):
    path = tmp_path / "click.wav"
    sf.write(str(path), _tone(0.03), RATE)
    err = _error(path)
    assert err.code == C.E_BAD_AUDIO and "too short" in str(err)


def test_missing_file(tmp_path):
    err = _error(tmp_path / "nowhere.wav")
    assert err.code == C.E_BAD_AUDIO and "no such file" in str(err)


def test_default_limits_are_the_contract_ones(tmp_path):
    # A file just over the contract's byte limit is refused without reading it.
    path = tmp_path / "huge.wav"
    with open(path, "wb") as fh:
        fh.truncate(C.MAX_AUDIO_BYTES + 1)
    err = _error(path)
    assert (err.code, err.status) == (C.E_TOO_LARGE, 413)
    os.remove(path)
