"""Streaming decoding: same length as offline, close to it away from the seams, no jumps at the seams."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from backend.models.audio_decoder import StreamSettings, random_decoder, tiny_config  # noqa: E402
from backend.models.audio_decoder.streaming import FlowStream, VocoderStream, resolve, stream_mel  # noqa: E402

N_UNITS = 64  # 64 units = 441 mel frames exactly, so the nominal unit rate equals the reference's stretch
SETTINGS = dict(first_chunk_units=10, chunk_units=20, history_units=30)


@pytest.fixture(scope="module")
def decoder():
    return random_decoder(tiny_config(), seed=7)


@pytest.fixture(scope="module")
def units():
    return np.random.default_rng(3).integers(0, 300, N_UNITS).tolist()


def arriving(units, size=3):
    """Units in small pieces, as a speech generator hands them over."""
    return [units[i:i + size] for i in range(0, len(units), size)]


def jumps_ok(x: np.ndarray, seams, half: int) -> list[float]:
    """For each seam s (between x[s-1] and x[s]): |jump| / largest |jump| in the neighbourhood around it."""
    dx = np.abs(np.diff(x, axis=-1))
    if dx.ndim > 1:
        dx = dx.mean(axis=0)
    ratios = []
    for s in seams:
        neighbourhood = np.concatenate([dx[max(0, s - 1 - half):s - 2], dx[s + 1:s + half]])
        ratios.append(float(dx[s - 1] / neighbourhood.max()))
    return ratios


@pytest.mark.parametrize("deterministic", [True, False])
def test_streamed_vocoder_equals_offline_vocoder(decoder, units, deterministic):
    mel = decoder.units_to_mel(units, deterministic=deterministic, seed=2)
    offline = decoder.mel_to_audio(mel, deterministic=deterministic, seed=2).numpy()
    vocoder = VocoderStream(decoder, decoder.hift.context_frames(), deterministic, seed=2)
    pieces, start = [], 0
    for size in (5, 40, 1, 90, 37, 1000):
        pieces.append(vocoder.push(mel[0, :, start:start + size]))
        start += size
    pieces.append(vocoder.push(None, final=True))
    streamed = np.concatenate(pieces)
    assert streamed.shape == offline.shape
    # the source cache and the carried phase leave only float rounding (the phase sums in float64 here)
    np.testing.assert_allclose(streamed, offline, atol=1e-4, rtol=0)


def test_stream_has_the_offline_length_and_agrees_away_from_the_seams(decoder, units):
    offline, sr = decoder.decode(units, seed=5)
    chunks = list(decoder.stream(arriving(units), seed=5, **SETTINGS))
    assert len(chunks) >= 3 and all(c.dtype == np.float32 and c.ndim == 1 and c.size for c in chunks)
    streamed = np.concatenate(chunks)
    assert streamed.shape == offline.shape == (decoder.mel_frames(N_UNITS) * 256,)

    # the audio is the vocoder's output for the streamed mel, exactly (see the vocoder test) ...
    settings = StreamSettings(**SETTINGS)
    mel = torch.cat(list(stream_mel(decoder, arriving(units), settings, seed=5)), dim=-1)
    np.testing.assert_allclose(streamed, decoder.mel_to_audio(mel[None], seed=5).numpy(), atol=1e-4, rtol=0)

    # ... and the streamed mel is close to the offline mel away from the seams (where cross-fades end)
    s = resolve(decoder, settings)
    seam_frames = [decoder.mel_frames(n) for n in range(s.first_chunk_units, N_UNITS, s.chunk_units)]
    away = np.ones(mel.shape[-1], bool)
    for f in seam_frames:
        away[max(0, f - 2 * s.mel_overlap_frames):f + s.mel_overlap_frames] = False
    assert away.sum() > mel.shape[-1] // 4

    def rel(a, b):
        return float((a[:, away] - b[:, away]).norm() / b[:, away].norm())

    offline_mel = decoder.units_to_mel(units, seed=5)[0]
    other_seed = decoder.units_to_mel(units, seed=6)[0]
    agreement, baseline = rel(mel, offline_mel), rel(other_seed, offline_mel)
    # the stream misses only the units that have not arrived yet; another noise seed changes everything
    assert agreement < 0.1 and agreement < 0.1 * baseline, (agreement, baseline)


def test_no_jump_at_the_seams_of_the_stream(decoder, units):
    chunks = list(decoder.stream(arriving(units, 5), seed=1, **SETTINGS))
    audio = np.concatenate(chunks)
    seams = np.cumsum([len(c) for c in chunks])[:-1]
    assert len(seams) >= 2
    ratios = jumps_ok(audio, seams, half=2048)
    assert max(ratios) <= 1.0, ratios


@pytest.mark.parametrize("n_units", [N_UNITS, 37])
def test_a_window_spanning_the_utterance_is_offline_decoding(decoder, units, n_units):
    offline, _ = decoder.decode(units[:n_units], deterministic=True)
    streamed = np.concatenate(list(decoder.stream([units[:n_units]], deterministic=True, first_chunk_units=N_UNITS)))
    np.testing.assert_allclose(streamed, offline, atol=1e-4, rtol=0)


def test_streams_are_reproducible_per_seed(decoder, units):
    units = units[:32]
    a = np.concatenate(list(decoder.stream(arriving(units), seed=9, **SETTINGS)))
    b = np.concatenate(list(decoder.stream(arriving(units, 7), seed=9, **SETTINGS)))
    c = np.concatenate(list(decoder.stream(arriving(units), seed=10, **SETTINGS)))
    np.testing.assert_array_equal(a, b)  # how the units arrive does not matter
    assert np.abs(a - c).max() > 1e-3


class SmoothFlowWithWindowBias:
    """A stand-in flow whose mel is smooth in time but shifted by an amount that depends on the window it
    was computed in, like the real flow's utterance-wide normalisation. Pure logic check of the seams."""

    class config:
        class flow:
            class encoder:
                block_size = 10

            class estimator:
                channels = (8, 8)

            input_frame_rate = 12.5

    n_mels = 4
    sample_rate, hop_length = 22050, 256

    def mel_frames(self, n):
        return int(np.float32(n) / np.float32(12.5) * 22050 / 256)

    def units_to_mel(self, units, deterministic, seed, n_frames, first_frame, first_unit):
        t = torch.arange(first_frame, first_frame + n_frames, dtype=torch.float32)
        smooth = torch.sin(2 * math.pi * t / 180).unsqueeze(0) + torch.arange(self.n_mels).unsqueeze(1)
        bias = 0.8 * math.sin(first_frame * 0.37 + n_frames * 0.11)
        return (smooth + bias).unsqueeze(0)


@pytest.mark.parametrize("overlap,expect_smooth", [(24, True), (0, False)])
def test_crossfade_removes_the_step_between_windows(overlap, expect_smooth):
    flow_stand_in = SmoothFlowWithWindowBias()
    s = StreamSettings(first_chunk_units=10, chunk_units=20, history_units=20,
                       mel_overlap_frames=overlap).resolved(10, 22050 / 256 / 12.5, 10, 2)
    stream = FlowStream(flow_stand_in, s, True, 0)
    pieces = list(stream.push(list(range(100)))) + list(stream.finish())
    mel = torch.cat(pieces, dim=-1).numpy()
    assert mel.shape[-1] == flow_stand_in.mel_frames(100)
    ends = np.cumsum([p.shape[-1] for p in pieces])[:-1]
    seams = sorted(set(ends.tolist()) | set((ends + overlap).tolist()))
    ratios = jumps_ok(mel, seams, half=30)
    # with the cross-fade every seam is as smooth as its surroundings; without it the window's bias jumps
    assert (max(ratios) <= 1.0) == expect_smooth, ratios
